"""The KEEPALIVE message (RFC 4271 §4.4): the header alone."""

from __future__ import annotations

from typing import Self

import attrs

from pybgp.wire.capabilities import json_check_type
from pybgp.wire.constants import HEADER_LEN, ErrorCode, HeaderError, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.header import frame

KEEPALIVE_MESSAGE = frame(MessageType.KEEPALIVE, b"")  # the same 19 octets every time


@attrs.frozen(kw_only=True)
class Keepalive:
    @classmethod
    def decode(cls, body: bytes, ctx: CodecContext) -> Self:
        if body:
            # RFC 4271 §6.1: a KEEPALIVE longer than 19 octets; data is the Length field.
            length = min(HEADER_LEN + len(body), 0xFFFF).to_bytes(2, "big")
            raise BGPError(
                ErrorCode.MESSAGE_HEADER,
                HeaderError.BAD_MESSAGE_LENGTH,
                length,
                f"KEEPALIVE with a {len(body)}-octet body",
            )
        return cls()

    def encode(self, ctx: CodecContext) -> bytes:
        return KEEPALIVE_MESSAGE

    def to_json(self) -> dict[str, object]:
        return {"type": "KEEPALIVE"}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        json_check_type(obj, "KEEPALIVE")
        return cls()
