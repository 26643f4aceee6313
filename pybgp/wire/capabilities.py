"""Capabilities carried in the OPEN message (RFC 5492) and the value of each.

Each class decodes and encodes only its Capability Value; `decode_capability` and
`encode_capability` add the code and length octets. A value that cannot be parsed is an OPEN
Message Error with subcode 0 (Unspecific): RFC 5492 names no subcode, and RFC 4271 §6.2 uses 0
for a recognized optional parameter that is malformed. Unknown capabilities, and a few known
ones we never act on (Cisco's pre-standard route refresh, 128), are kept as UnknownCapability
with their raw value, so every OPEN re-encodes byte for byte.

The per-family capabilities live in capability_families, FQDN and BGP Role in capability_speaker,
the shared base in capability_base; all are re-exported here with the registry.
"""

from __future__ import annotations

from typing import ClassVar, Self

import attrs
from attrs.validators import in_

from pybgp.wire.capability_base import (
    SAFI_OCTET,
    UINT8,
    UNSPECIFIC,
    CapabilityBase,
    CapabilityCode,
    family_validator,
    malformed,
)
from pybgp.wire.capability_families import (
    AddPath,
    AddPathFamily,
    AddPathMode,
    ExtendedNextHop,
    ExtendedNextHopFamily,
    GracefulRestart,
    GracefulRestartFamily,
)
from pybgp.wire.capability_speaker import FQDN, BGPRole, Role, fqdn_fields
from pybgp.wire.constants import ErrorCode, Family
from pybgp.wire.errors import BGPError
from pybgp.wire.jsonfields import json_family, json_hex, json_int, json_str

__all__ = [
    "FQDN",
    "UNSPECIFIC",
    "AddPath",
    "AddPathFamily",
    "AddPathMode",
    "BGPRole",
    "Capability",
    "CapabilityCode",
    "EnhancedRouteRefresh",
    "ExtendedMessage",
    "ExtendedNextHop",
    "ExtendedNextHopFamily",
    "FourOctetAS",
    "GracefulRestart",
    "GracefulRestartFamily",
    "KnownCapability",
    "Multiprotocol",
    "Role",
    "RouteRefresh",
    "UnknownCapability",
    "capability_from_json",
    "capability_name",
    "decode_capabilities",
    "decode_capability",
    "encode_capability",
    "family_validator",
    "malformed",
]


@attrs.frozen(kw_only=True)
class Multiprotocol(CapabilityBase):
    """RFC 4760 §8: AFI (2), Reserved (1), SAFI (1)."""

    code: ClassVar[int] = CapabilityCode.MULTIPROTOCOL.value
    name: ClassVar[str] = "multiprotocol"
    family: Family = attrs.field(validator=SAFI_OCTET)
    reserved: int = attrs.field(default=0, validator=UINT8)  # sent as 0; kept to re-encode exactly

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if len(value) != 4:
            raise malformed(cls.name, f"length {len(value)}, expected 4")
        return cls(family=Family(int.from_bytes(value[:2], "big"), value[3]), reserved=value[2])

    def encode(self) -> bytes:
        return self.family.afi.to_bytes(2, "big") + bytes((self.reserved, self.family.safi))

    def to_json(self) -> dict[str, object]:
        out = self._json_head() | {"family": self.family.name}
        if self.reserved:
            out["reserved"] = self.reserved
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(family=json_family(obj, "family"), reserved=json_int(obj, "reserved", 0))


class _Empty(CapabilityBase):
    """A capability whose value is empty: its presence is the whole message."""

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if value:
            raise malformed(cls.name, f"length {len(value)}, expected 0")
        return cls()

    def encode(self) -> bytes:
        return b""

    def to_json(self) -> dict[str, object]:
        return self._json_head()

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls()


@attrs.frozen(kw_only=True)
class RouteRefresh(_Empty):
    """RFC 2918 §2: the peer accepts ROUTE-REFRESH messages."""

    code: ClassVar[int] = CapabilityCode.ROUTE_REFRESH.value
    name: ClassVar[str] = "route-refresh"


@attrs.frozen(kw_only=True)
class EnhancedRouteRefresh(_Empty):
    """RFC 7313 §3.1: the peer brackets refreshes with BoRR/EoRR."""

    code: ClassVar[int] = CapabilityCode.ENHANCED_ROUTE_REFRESH.value
    name: ClassVar[str] = "enhanced-route-refresh"


@attrs.frozen(kw_only=True)
class ExtendedMessage(_Empty):
    """RFC 8654 §3: the peer accepts messages up to 65535 octets."""

    code: ClassVar[int] = CapabilityCode.EXTENDED_MESSAGE.value
    name: ClassVar[str] = "extended-message"


@attrs.frozen(kw_only=True)
class FourOctetAS(CapabilityBase):
    """RFC 6793 §3: the speaker's AS number in 4 octets."""

    code: ClassVar[int] = CapabilityCode.FOUR_OCTET_AS.value
    name: ClassVar[str] = "four-octet-as"
    asn: int = attrs.field(validator=in_(range(1 << 32)))

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if len(value) != 4:
            raise malformed(cls.name, f"length {len(value)}, expected 4")
        return cls(asn=int.from_bytes(value, "big"))

    def encode(self) -> bytes:
        return self.asn.to_bytes(4, "big")

    def to_json(self) -> dict[str, object]:
        return self._json_head() | {"asn": self.asn}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(asn=json_int(obj, "asn"))


_OTHER_NAMES = {
    3: "outbound-route-filtering",
    71: "long-lived-graceful-restart",
    75: "software-version",
    CapabilityCode.ROUTE_REFRESH_OLD: "route-refresh-old",
}


@attrs.frozen(kw_only=True)
class UnknownCapability:
    """A capability we do not interpret (RFC 5492 §3: ignore it), kept as raw octets."""

    code: int = attrs.field(validator=UINT8)
    value: bytes = b""

    @property
    def name(self) -> str | None:
        return capability_name(self.code)

    def encode(self) -> bytes:
        return self.value

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code}
        if self.name:
            out["name"] = self.name
        return out | {"value": self.value.hex()}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(code=json_int(obj, "code"), value=json_hex(obj, "value"))


KnownCapability = (
    Multiprotocol
    | RouteRefresh
    | EnhancedRouteRefresh
    | ExtendedMessage
    | FourOctetAS
    | GracefulRestart
    | AddPath
    | ExtendedNextHop
    | FQDN
    | BGPRole
)
Capability = KnownCapability | UnknownCapability

_KNOWN: tuple[type[KnownCapability], ...] = (
    Multiprotocol,
    RouteRefresh,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAS,
    GracefulRestart,
    AddPath,
    ExtendedNextHop,
    FQDN,
    BGPRole,
)
_BY_CODE: dict[int, type[KnownCapability]] = {cls.code: cls for cls in _KNOWN}
_BY_NAME: dict[str, type[KnownCapability]] = {cls.name: cls for cls in _KNOWN}


def capability_name(code: int) -> str | None:
    known = _BY_CODE.get(code)
    return known.name if known else _OTHER_NAMES.get(code)


def decode_capability(code: int, value: bytes) -> Capability:
    known = _BY_CODE.get(code)
    if known is None:
        return UnknownCapability(code=code, value=value)
    if known is FQDN:
        return _decode_fqdn(value)
    return known.decode(value)


def _decode_fqdn(value: bytes) -> Capability:
    host, domain = fqdn_fields(value)
    try:
        return FQDN(hostname=host.decode("utf-8"), domain=domain.decode("utf-8"))
    except UnicodeDecodeError:
        # The hostname is for display only: one we cannot read is not understood, not fatal.
        return UnknownCapability(code=FQDN.code, value=value)


def encode_capability(cap: Capability) -> bytes:
    """Code, length and value (RFC 5492 §4)."""
    value = cap.encode()
    if len(value) > 255:
        raise ValueError(f"capability {cap.code} value is {len(value)} octets, over 255")
    return bytes((cap.code, len(value))) + value


def decode_capabilities(data: bytes) -> tuple[Capability, ...]:
    """The <code, length, value> triples filling one Capabilities optional parameter."""
    out: list[Capability] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise BGPError(ErrorCode.OPEN_MESSAGE, UNSPECIFIC, reason="capability header truncated")
        code, length = data[pos], data[pos + 1]
        if pos + 2 + length > len(data):
            raise BGPError(
                ErrorCode.OPEN_MESSAGE,
                UNSPECIFIC,
                reason=f"capability {code} overruns its parameter",
            )
        out.append(decode_capability(code, data[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return tuple(out)


def capability_from_json(obj: dict[str, object]) -> Capability:
    """A capability from its JSON: raw when it has "value", else by "code" or by "name"."""
    if "value" in obj:
        return UnknownCapability.from_json(obj)
    if "code" in obj:
        code = json_int(obj, "code")
        known = _BY_CODE.get(code)
        if known is None:
            raise ValueError(f'code: capability {code} is unknown; give its raw "value" in hex')
    else:
        name = json_str(obj, "name")
        known = _BY_NAME.get(name)
        if known is None:
            raise ValueError(f"name: unknown capability {name!r}")
    return known.from_json(obj)
