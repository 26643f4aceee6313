"""The KEEPALIVE message (RFC 4271 §4.4): the header alone."""

from __future__ import annotations

from typing import Self

import attrs

from pybgp.wire.constants import HEADER_LEN, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.header import bad_length, frame
from pybgp.wire.jsonfields import json_check_type

KEEPALIVE_MESSAGE = frame(MessageType.KEEPALIVE, b"")  # the same 19 octets every time


@attrs.frozen(kw_only=True)
class Keepalive:
    @classmethod
    def decode(cls, body: bytes, ctx: CodecContext) -> Self:
        if body:
            # RFC 4271 §6.1: a KEEPALIVE longer than 19 octets; data is the Length field.
            raise bad_length(HEADER_LEN + len(body), f"KEEPALIVE with a {len(body)}-octet body")
        return cls()

    def encode(self, ctx: CodecContext) -> bytes:
        return KEEPALIVE_MESSAGE

    def to_json(self) -> dict[str, object]:
        return {"type": "KEEPALIVE"}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        json_check_type(obj, "KEEPALIVE")
        return cls()
