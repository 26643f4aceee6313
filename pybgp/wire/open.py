"""The OPEN message (RFC 4271 §4.2, §6.2), its capabilities (RFC 5492) and RFC 9072's extended
optional-parameters format.

The optional parameters are kept as they arrived: one tuple of capabilities per Capabilities
parameter, in order, plus whether the RFC 9072 format was used, so an OPEN re-encodes byte for
byte. Other parameter types are rejected (2/4): type 1, authentication, was deprecated long ago.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Self, TypeVar

import attrs
from attrs.validators import in_

from pybgp.wire.capabilities import (
    BGPRole,
    Capability,
    FourOctetAS,
    Multiprotocol,
    capability_from_json,
    decode_capabilities,
    encode_capability,
)
from pybgp.wire.capability_base import UNSPECIFIC
from pybgp.wire.constants import (
    AS_TRANS,
    BGP_VERSION,
    HEADER_LEN,
    MAX_MESSAGE_LEN,
    ErrorCode,
    Family,
    MessageType,
    OpenError,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.header import bad_length, frame
from pybgp.wire.jsonfields import json_bool, json_check_type, json_int, json_objects, json_str

CAPABILITIES_PARAMETER = 2  # RFC 5492 §4
EXTENDED_FORMAT_MARKER = 255  # RFC 9072 §2: the Non-Ext OP Type that announces the format
_FIXED_LEN = 10  # Version, My AS, Hold Time, BGP Identifier, Opt Parm Len (RFC 4271 §4.2)
_MAX_BODY = MAX_MESSAGE_LEN - HEADER_LEN  # an OPEN is never extended (RFC 8654 §4)

CapabilityGroup = tuple[Capability, ...]
C = TypeVar("C", bound=Capability)


def _ipv4_text(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        if not isinstance(value, str):
            raise ValueError
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{attribute.name}: not an IPv4 address: {value!r}") from None


@attrs.frozen(kw_only=True)
class Open:
    """An OPEN message. `my_as` is the 2-octet field; `asn` is the speaker's real AS number."""

    my_as: int = attrs.field(validator=in_(range(0x10000)))
    hold_time: int = attrs.field(validator=in_(range(0x10000)))
    bgp_id: str = attrs.field(validator=_ipv4_text)
    parameters: tuple[CapabilityGroup, ...] = ()  # one group per Capabilities parameter
    extended_params: bool = False  # RFC 9072 format; chosen anyway when over 255 octets
    non_ext_op_len: int = attrs.field(default=255, validator=in_(range(1, 256)))  # RFC 9072 §3

    @classmethod
    def build(
        cls, *, asn: int, hold_time: int, bgp_id: str, capabilities: Iterable[Capability] = ()
    ) -> Self:
        """An OPEN with all `capabilities` in one parameter; AS_TRANS in My AS when `asn` needs
        4 octets (RFC 6793 §4.1), which then must be announced in a FourOctetAS capability."""
        caps = tuple(capabilities)
        if asn > 0xFFFF and FourOctetAS(asn=asn) not in caps:
            raise ValueError(f"asn: {asn} needs a FourOctetAS capability carrying it")
        my_as = asn if asn <= 0xFFFF else AS_TRANS
        return cls(
            my_as=my_as, hold_time=hold_time, bgp_id=bgp_id, parameters=(caps,) if caps else ()
        )

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """All capabilities in wire order, whatever parameter carried them (RFC 5492 §4)."""
        return tuple(cap for group in self.parameters for cap in group)

    def capability(self, kind: type[C]) -> C | None:
        """The first capability of class `kind`, or None."""
        return next(iter(self.capabilities_of(kind)), None)

    def capabilities_of(self, kind: type[C]) -> tuple[C, ...]:
        """Every instance of `kind`: some capabilities may be repeated (RFC 5492 §4)."""
        return tuple(cap for cap in self.capabilities if isinstance(cap, kind))

    @property
    def families(self) -> tuple[Family, ...]:
        """Families announced with Multiprotocol capabilities (RFC 4760 §8), without repeats."""
        return tuple(dict.fromkeys(cap.family for cap in self.capabilities_of(Multiprotocol)))

    @property
    def asn(self) -> int:
        """The 4-octet AS from the FourOctetAS capability when present, else My AS (RFC 6793)."""
        four = self.capability(FourOctetAS)
        return four.asn if four else self.my_as

    @property
    def bgp_id_int(self) -> int:
        """The BGP Identifier as the integer RFC 4271 §6.8 compares on a collision."""
        return int(ipaddress.IPv4Address(self.bgp_id))

    @classmethod
    def decode(cls, body: bytes, ctx: CodecContext) -> Self:
        if not _FIXED_LEN <= len(body) <= _MAX_BODY:
            raise bad_length(HEADER_LEN + len(body), "bad OPEN length")
        _check_fixed_fields(body)
        groups, extended, non_ext_len = _decode_parameters(body[9:])
        message = cls(
            my_as=int.from_bytes(body[1:3], "big"),
            hold_time=int.from_bytes(body[3:5], "big"),
            bgp_id=str(ipaddress.IPv4Address(body[5:9])),
            parameters=groups,
            extended_params=extended,
            non_ext_op_len=non_ext_len,
        )
        _check_capabilities(message)
        return message

    def encode(self, ctx: CodecContext) -> bytes:
        values = [b"".join(encode_capability(cap) for cap in group) for group in self.parameters]
        extended = self.extended_params or sum(2 + len(v) for v in values) > 255
        # Checked before packing, so no length overflows its field: the extended format costs
        # 3 more octets up front and 3 per parameter, and needs more room than the classic one.
        if _FIXED_LEN + 3 + sum(3 + len(v) for v in values) > _MAX_BODY:
            raise ValueError("optional_parameters: the OPEN would exceed 4096 octets")
        if extended:
            params = b"".join(bytes((CAPABILITIES_PARAMETER,)) + _u16(len(v)) + v for v in values)
            opt = bytes((self.non_ext_op_len, EXTENDED_FORMAT_MARKER)) + _u16(len(params)) + params
        else:
            params = b"".join(bytes((CAPABILITIES_PARAMETER, len(v))) + v for v in values)
            opt = bytes((len(params),)) + params
        fixed = bytes((BGP_VERSION,)) + _u16(self.my_as) + _u16(self.hold_time)
        body = fixed + ipaddress.IPv4Address(self.bgp_id).packed + opt
        return frame(MessageType.OPEN, body)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": "OPEN",
            "version": BGP_VERSION,
            "my_as": self.my_as,
            "asn": self.asn,
            "hold_time": self.hold_time,
            "bgp_id": self.bgp_id,
            "extended_params": self.extended_params,
        }
        if self.extended_params and self.non_ext_op_len != 255:
            out["non_ext_op_len"] = self.non_ext_op_len
        out["optional_parameters"] = [
            {"capabilities": [cap.to_json() for cap in group]} for group in self.parameters
        ]
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        """The JSON of to_json. "asn" is derived and ignored, unless "my_as" is missing."""
        json_check_type(obj, "OPEN")
        if json_int(obj, "version", BGP_VERSION) != BGP_VERSION:
            raise ValueError(f"version: only {BGP_VERSION} is supported")
        groups = tuple(
            tuple(capability_from_json(cap) for cap in json_objects(param, "capabilities"))
            for param in json_objects(obj, "optional_parameters", [])
        )
        return cls(
            my_as=_my_as_from_json(obj),
            hold_time=json_int(obj, "hold_time"),
            bgp_id=json_str(obj, "bgp_id"),
            parameters=groups,
            extended_params=json_bool(obj, "extended_params", False),
            non_ext_op_len=json_int(obj, "non_ext_op_len", 255),
        )


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _my_as_from_json(obj: dict[str, object]) -> int:
    if "my_as" in obj or "asn" not in obj:
        return json_int(obj, "my_as")
    asn = json_int(obj, "asn")
    return asn if asn <= 0xFFFF else AS_TRANS


def _open_error(subcode: int, reason: str, data: bytes = b"") -> BGPError:
    return BGPError(ErrorCode.OPEN_MESSAGE, subcode, data, reason)


def _check_fixed_fields(body: bytes) -> None:
    """RFC 4271 §6.2, in its order: version, My AS, Hold Time, BGP Identifier."""
    if body[0] != BGP_VERSION:
        # Data: the largest version we support below the bid, else our smallest: 4 either way.
        raise _open_error(OpenError.UNSUPPORTED_VERSION, f"version {body[0]}", _u16(BGP_VERSION))
    if body[1:3] == b"\0\0":
        raise _open_error(OpenError.BAD_PEER_AS, "My AS is 0 (RFC 7607 §2)")
    hold_time = int.from_bytes(body[3:5], "big")
    if hold_time in (1, 2):
        raise _open_error(OpenError.UNACCEPTABLE_HOLD_TIME, f"hold time {hold_time}")
    if body[5:9] == b"\0\0\0\0":
        # RFC 6286 §2.2: any non-zero 4-octet value is a valid BGP Identifier.
        raise _open_error(OpenError.BAD_BGP_ID, "BGP Identifier is 0")


def _decode_parameters(data: bytes) -> tuple[tuple[CapabilityGroup, ...], bool, int]:
    """(capability groups, extended format used, Non-Ext OP Len) from the Opt Parm Len octet on.

    RFC 9072 §2: a non-zero first octet followed by type 255 announces the extended format; the
    first octet is then ignored (§3 accepts any non-zero value) but kept for re-encoding.
    """
    non_ext_len = data[0]
    extended = non_ext_len != 0 and len(data) > 1 and data[1] == EXTENDED_FORMAT_MARKER
    if extended:
        if len(data) < 4:
            raise _open_error(UNSPECIFIC, "extended optional parameters length truncated")
        declared, params = int.from_bytes(data[2:4], "big"), data[4:]
    else:
        declared, params = non_ext_len, data[1:]
    if declared != len(params):
        raise _open_error(
            UNSPECIFIC, f"optional parameters length {declared}, but {len(params)} octets follow"
        )
    groups = _split_parameters(params, 2 if extended else 1)
    return groups, extended, non_ext_len if extended else 255


def _split_parameters(params: bytes, length_octets: int) -> tuple[CapabilityGroup, ...]:
    """<type, length, value> parameters; the length is 2 octets in the RFC 9072 format."""
    groups: list[CapabilityGroup] = []
    pos = 0
    while pos < len(params):
        value_at = pos + 1 + length_octets
        if value_at > len(params):
            raise _open_error(UNSPECIFIC, "optional parameter header truncated")
        param_type = params[pos]
        end = value_at + int.from_bytes(params[pos + 1 : value_at], "big")
        if end > len(params):
            raise _open_error(UNSPECIFIC, f"optional parameter {param_type} overruns the OPEN")
        if param_type != CAPABILITIES_PARAMETER:
            raise _open_error(
                OpenError.UNSUPPORTED_OPTIONAL_PARAMETER, f"optional parameter type {param_type}"
            )
        groups.append(decode_capabilities(params[value_at:end]))
        pos = end
    return tuple(groups)


def _check_capabilities(message: Open) -> None:
    """Rules that look across capabilities: AS 0 (RFC 7607 §2), one role (RFC 9234 §4.2)."""
    if any(cap.asn == 0 for cap in message.capabilities_of(FourOctetAS)):
        raise _open_error(OpenError.BAD_PEER_AS, "4-octet AS capability carries AS 0 (RFC 7607)")
    if len({cap.role for cap in message.capabilities_of(BGPRole)}) > 1:
        raise _open_error(OpenError.ROLE_MISMATCH, "BGP Role capabilities disagree")
