"""The ROUTE-REFRESH message (RFC 2918 §3) with RFC 7313's BoRR/EoRR subtypes.

Body: AFI (2), Message Subtype (1; "Reserved" in RFC 2918), SAFI (1). A normal request may be
followed by ORF entries (RFC 5291); we keep such octets raw. A subtype other than 0, 1, 2 is
decoded too: RFC 7313 §5 says to ignore that message, which is the caller's part.
"""

from __future__ import annotations

import enum
from typing import Self

import attrs
from attrs.validators import in_

from pybgp.wire.capability_base import family_validator
from pybgp.wire.constants import HEADER_LEN, ErrorCode, Family, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.header import bad_length, frame
from pybgp.wire.jsonfields import json_check_type, json_family, json_hex, json_name_or_int

INVALID_MESSAGE_LENGTH = 1  # ROUTE-REFRESH Message Error subcode (RFC 7313 §5)


class RefreshSubtype(enum.IntEnum):
    NORMAL = 0  # RFC 2918 request
    BORR = 1  # Beginning of Route Refresh (RFC 7313 §3.2)
    EORR = 2  # End of Route Refresh


_SUBTYPE_NAMES: dict[int, str] = {subtype.value: subtype.name.lower() for subtype in RefreshSubtype}


@attrs.frozen(kw_only=True)
class RouteRefresh:
    family: Family = attrs.field(validator=family_validator(0xFF))
    subtype: int = attrs.field(default=0, validator=in_(range(0x100)))
    extra: bytes = b""  # octets after the 4-octet body (ORF entries, RFC 5291), uninterpreted

    @property
    def subtype_name(self) -> str | None:
        return _SUBTYPE_NAMES.get(self.subtype)

    @classmethod
    def decode(cls, body: bytes, ctx: CodecContext) -> Self:
        if len(body) < 4 or HEADER_LEN + len(body) > ctx.max_message_len:
            length = HEADER_LEN + len(body)
            raise bad_length(length, f"ROUTE-REFRESH of {length} octets")
        subtype = body[2]
        if subtype in (RefreshSubtype.BORR, RefreshSubtype.EORR) and len(body) != 4:
            # RFC 7313 §5: the data is the complete ROUTE-REFRESH message (header included).
            raise BGPError(
                ErrorCode.ROUTE_REFRESH,
                INVALID_MESSAGE_LENGTH,
                frame(MessageType.ROUTE_REFRESH, body),
                f"{_SUBTYPE_NAMES[subtype]} ROUTE-REFRESH with a {len(body)}-octet body",
            )
        family = Family(int.from_bytes(body[:2], "big"), body[3])
        return cls(family=family, subtype=subtype, extra=body[4:])

    def encode(self, ctx: CodecContext) -> bytes:
        body = self.family.afi.to_bytes(2, "big") + bytes((self.subtype, self.family.safi))
        if HEADER_LEN + len(body) + len(self.extra) > ctx.max_message_len:
            raise ValueError("extra: the ROUTE-REFRESH would exceed the maximum message length")
        return frame(MessageType.ROUTE_REFRESH, body + self.extra)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": "ROUTE_REFRESH",
            "family": self.family.name,
            "subtype": self.subtype,
            "subtype_name": self.subtype_name,
        }
        if self.extra:
            out["extra"] = self.extra.hex()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        json_check_type(obj, "ROUTE_REFRESH")
        subtype = json_name_or_int(obj, "subtype", _SUBTYPE_NAMES) if "subtype" in obj else 0
        return cls(
            family=json_family(obj, "family"), subtype=subtype, extra=json_hex(obj, "extra", "")
        )
