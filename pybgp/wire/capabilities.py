"""Capabilities carried in the OPEN message (RFC 5492) and the value of each.

Each class decodes and encodes only its Capability Value; `decode_capability` and
`encode_capability` add the code and length octets. A value that cannot be parsed is an OPEN
Message Error with subcode 0 (Unspecific): RFC 5492 names no subcode, and RFC 4271 §6.2 uses 0
for a recognized optional parameter that is malformed. Unknown capabilities, and a few known
ones we never act on (Cisco's pre-standard route refresh, 128), are kept as UnknownCapability
with their raw value, so every OPEN re-encodes byte for byte.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import ClassVar, Self

import attrs
from attrs.validators import in_

from pybgp.wire.constants import AFI_IPV4, AFI_IPV6, ErrorCode, Family
from pybgp.wire.errors import BGPError

UNSPECIFIC = 0  # OPEN Message Error subcode "Unspecific" (RFC 4271 §6.2)

# JSON field readers, shared by the OPEN-side messages: each raises ValueError naming the field.
_MISSING = object()


def json_value(obj: dict[str, object], key: str, default: object = _MISSING) -> object:
    if not isinstance(obj, dict):
        raise ValueError(f"{key}: expected a JSON object around it, got {obj!r}")
    if key in obj:
        return obj[key]
    if default is _MISSING:
        raise ValueError(f"{key}: missing")
    return default


def json_int(obj: dict[str, object], key: str, default: object = _MISSING) -> int:
    value = json_value(obj, key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    return value


def json_bool(obj: dict[str, object], key: str, default: object = _MISSING) -> bool:
    value = json_value(obj, key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    return value


def json_str(obj: dict[str, object], key: str, default: object = _MISSING) -> str:
    value = json_value(obj, key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value


def json_hex(obj: dict[str, object], key: str, default: object = _MISSING) -> bytes:
    text = json_str(obj, key, default)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{key}: not hexadecimal: {text!r}") from None


def json_objects(
    obj: dict[str, object], key: str, default: object = _MISSING
) -> list[dict[str, object]]:
    value = json_value(obj, key, default)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{key}: expected a list of JSON objects, got {value!r}")
    return value


def json_name_or_int(obj: dict[str, object], key: str, names: Mapping[int, str]) -> int:
    """A number written as one of `names` or as an integer (for values without a name)."""
    value = json_value(obj, key)
    if isinstance(value, str):
        for number, name in names.items():
            if name == value:
                return int(number)
        raise ValueError(f"{key}: unknown name {value!r} (known: {', '.join(names.values())})")
    return json_int(obj, key)


def json_family(obj: dict[str, object], key: str) -> Family:
    """A family by name: "ipv4-unicast", or "afiN-safiM" as Family.name writes unnamed ones."""
    text = json_str(obj, key)
    match = re.fullmatch(r"afi(\d{1,5})-safi(\d{1,5})", text)
    if match:
        return Family(int(match[1]), int(match[2]))
    try:
        return Family.from_name(text)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def json_check_type(obj: dict[str, object], expected: str) -> None:
    """A message's "type" must name its class when present (the dispatcher reads it first)."""
    value = json_value(obj, "type", expected)
    if value != expected:
        raise ValueError(f"type: expected {expected!r}, got {value!r}")


class CapabilityCode(enum.IntEnum):
    MULTIPROTOCOL = 1  # RFC 4760
    ROUTE_REFRESH = 2  # RFC 2918
    EXTENDED_NEXT_HOP = 5  # RFC 8950
    EXTENDED_MESSAGE = 6  # RFC 8654
    BGP_ROLE = 9  # RFC 9234
    GRACEFUL_RESTART = 64  # RFC 4724
    FOUR_OCTET_AS = 65  # RFC 6793
    ADD_PATH = 69  # RFC 7911
    ENHANCED_ROUTE_REFRESH = 70  # RFC 7313
    FQDN = 73  # draft-walton-bgp-hostname-capability
    ROUTE_REFRESH_OLD = 128  # Cisco's pre-standard route refresh, kept as unknown


def malformed(name: str, reason: str) -> BGPError:
    return BGPError(
        ErrorCode.OPEN_MESSAGE, UNSPECIFIC, b"", f"malformed {name} capability: {reason}"
    )


def family_validator(max_safi: int) -> Callable[[object, attrs.Attribute[Family], Family], None]:
    def check(_instance: object, attribute: attrs.Attribute[Family], value: Family) -> None:
        if not (
            isinstance(value, Family) and 0 <= value.afi <= 0xFFFF and 0 <= value.safi <= max_safi
        ):
            raise ValueError(f"{attribute.name}: {value!r} does not fit AFI (16 bits) / SAFI")

    return check


_SAFI_OCTET = family_validator(0xFF)
_SAFI_TWO_OCTETS = family_validator(0xFFFF)  # RFC 8950 §3 carries a 2-octet SAFI
_UINT8 = in_(range(0x100))
_AFI_NAMES: dict[int, str] = {AFI_IPV4: "ipv4", AFI_IPV6: "ipv6"}


def _family_at(value: bytes, offset: int) -> Family:
    """AFI (2 octets) + SAFI (1 octet) at `offset`, the layout of RFC 4760 §8, 4724, 7911."""
    return Family(int.from_bytes(value[offset : offset + 2], "big"), value[offset + 2])


def _family_bytes(family: Family) -> bytes:
    return family.afi.to_bytes(2, "big") + bytes((family.safi,))


class _Base:
    code: ClassVar[int]
    name: ClassVar[str]

    def _json_head(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name}


@attrs.frozen(kw_only=True)
class Multiprotocol(_Base):
    """RFC 4760 §8: AFI (2), Reserved (1), SAFI (1)."""

    code: ClassVar[int] = CapabilityCode.MULTIPROTOCOL.value
    name: ClassVar[str] = "multiprotocol"
    family: Family = attrs.field(validator=_SAFI_OCTET)
    reserved: int = attrs.field(default=0, validator=_UINT8)  # sent as 0; kept to re-encode exactly

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


class _Empty(_Base):
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
class FourOctetAS(_Base):
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


@attrs.frozen(kw_only=True)
class GracefulRestartFamily:
    """One <AFI, SAFI, Flags> tuple of RFC 4724 §3."""

    family: Family = attrs.field(validator=_SAFI_OCTET)
    forwarding_state: bool = False  # F bit: forwarding was preserved across the restart
    reserved_flags: int = attrs.field(default=0, validator=in_(range(0x80)))  # the other 7 bits

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "family": self.family.name,
            "forwarding_state": self.forwarding_state,
        }
        if self.reserved_flags:
            out["reserved_flags"] = self.reserved_flags
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(
            family=json_family(obj, "family"),
            forwarding_state=json_bool(obj, "forwarding_state", False),
            reserved_flags=json_int(obj, "reserved_flags", 0),
        )


_RESTART_STATE = 0x8  # R bit of the 4-bit Restart Flags (RFC 4724 §3)
_NOTIFICATION = 0x4  # N bit (RFC 8538 §2): graceful restart also after a NOTIFICATION
_FORWARDING_STATE = 0x80  # F bit of the per-family flags


@attrs.frozen(kw_only=True)
class GracefulRestart(_Base):
    """RFC 4724 §3: Restart Flags (4 bits), Restart Time (12 bits), then 4-octet tuples."""

    code: ClassVar[int] = CapabilityCode.GRACEFUL_RESTART.value
    name: ClassVar[str] = "graceful-restart"
    restart_state: bool = False
    notification: bool = False
    restart_time: int = attrs.field(validator=in_(range(0x1000)))
    families: tuple[GracefulRestartFamily, ...] = ()
    reserved_flags: int = attrs.field(default=0, validator=in_(range(4)))  # the 2 unassigned bits

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if len(value) < 2 or len(value) % 4 != 2:
            raise malformed(cls.name, f"length {len(value)} is not 2 + 4n")
        flags, restart_time = value[0] >> 4, int.from_bytes(value[:2], "big") & 0xFFF
        families = tuple(
            GracefulRestartFamily(
                family=_family_at(value, i),
                forwarding_state=bool(value[i + 3] & _FORWARDING_STATE),
                reserved_flags=value[i + 3] & 0x7F,
            )
            for i in range(2, len(value), 4)
        )
        return cls(
            restart_state=bool(flags & _RESTART_STATE),
            notification=bool(flags & _NOTIFICATION),
            restart_time=restart_time,
            families=families,
            reserved_flags=flags & 0x3,
        )

    def encode(self) -> bytes:
        flags = self.reserved_flags
        flags |= _RESTART_STATE if self.restart_state else 0
        flags |= _NOTIFICATION if self.notification else 0
        out = ((flags << 12) | self.restart_time).to_bytes(2, "big")
        for entry in self.families:
            entry_flags = entry.reserved_flags | (
                _FORWARDING_STATE if entry.forwarding_state else 0
            )
            out += _family_bytes(entry.family) + bytes((entry_flags,))
        return out

    def to_json(self) -> dict[str, object]:
        out = self._json_head() | {
            "restart_state": self.restart_state,
            "notification": self.notification,
            "restart_time": self.restart_time,
            "families": [entry.to_json() for entry in self.families],
        }
        if self.reserved_flags:
            out["reserved_flags"] = self.reserved_flags
        return out

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(
            restart_state=json_bool(obj, "restart_state", False),
            notification=json_bool(obj, "notification", False),
            restart_time=json_int(obj, "restart_time"),
            families=tuple(
                GracefulRestartFamily.from_json(o) for o in json_objects(obj, "families", [])
            ),
            reserved_flags=json_int(obj, "reserved_flags", 0),
        )


class AddPathMode(enum.IntEnum):
    """Send/Receive field of RFC 7911 §4."""

    RECEIVE = 1
    SEND = 2
    BOTH = 3


_ADD_PATH_NAMES: dict[int, str] = {mode.value: mode.name.lower() for mode in AddPathMode}


@attrs.frozen(kw_only=True)
class AddPathFamily:
    """One <AFI, SAFI, Send/Receive> tuple. `mode` is kept as sent, even if not 1..3."""

    family: Family = attrs.field(validator=_SAFI_OCTET)
    mode: int = attrs.field(validator=_UINT8)

    @property
    def receive(self) -> bool:
        return self.mode in (AddPathMode.RECEIVE, AddPathMode.BOTH)

    @property
    def send(self) -> bool:
        return self.mode in (AddPathMode.SEND, AddPathMode.BOTH)

    def to_json(self) -> dict[str, object]:
        return {"family": self.family.name, "mode": _ADD_PATH_NAMES.get(self.mode, self.mode)}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(
            family=json_family(obj, "family"), mode=json_name_or_int(obj, "mode", _ADD_PATH_NAMES)
        )


@attrs.frozen(kw_only=True)
class AddPath(_Base):
    """RFC 7911 §4: tuples of AFI (2), SAFI (1), Send/Receive (1)."""

    code: ClassVar[int] = CapabilityCode.ADD_PATH.value
    name: ClassVar[str] = "add-path"
    families: tuple[AddPathFamily, ...] = ()

    @property
    def understood(self) -> bool:
        """RFC 7911 §4: with any Send/Receive value but 1..3 the capability SHOULD be ignored."""
        return all(entry.mode in _ADD_PATH_NAMES for entry in self.families)

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if len(value) % 4:
            raise malformed(cls.name, f"length {len(value)} is not a multiple of 4")
        entries = (
            AddPathFamily(family=_family_at(value, i), mode=value[i + 3])
            for i in range(0, len(value), 4)
        )
        return cls(families=tuple(entries))

    def encode(self) -> bytes:
        return b"".join(_family_bytes(e.family) + bytes((e.mode,)) for e in self.families)

    def to_json(self) -> dict[str, object]:
        return self._json_head() | {"families": [entry.to_json() for entry in self.families]}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(
            families=tuple(AddPathFamily.from_json(o) for o in json_objects(obj, "families", []))
        )


@attrs.frozen(kw_only=True)
class ExtendedNextHopFamily:
    """RFC 8950 §3: NLRI of `family` may carry a next hop of `next_hop_afi`."""

    family: Family = attrs.field(validator=_SAFI_TWO_OCTETS)
    next_hop_afi: int = attrs.field(validator=in_(range(0x10000)))

    def to_json(self) -> dict[str, object]:
        nh_afi = _AFI_NAMES.get(self.next_hop_afi, self.next_hop_afi)
        return {"family": self.family.name, "next_hop_afi": nh_afi}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        afi = json_name_or_int(obj, "next_hop_afi", _AFI_NAMES)
        return cls(family=json_family(obj, "family"), next_hop_afi=afi)


@attrs.frozen(kw_only=True)
class ExtendedNextHop(_Base):
    """RFC 8950 §3: tuples of NLRI AFI (2), NLRI SAFI (2), Nexthop AFI (2)."""

    code: ClassVar[int] = CapabilityCode.EXTENDED_NEXT_HOP.value
    name: ClassVar[str] = "extended-next-hop"
    families: tuple[ExtendedNextHopFamily, ...] = ()

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if len(value) % 6:
            raise malformed(cls.name, f"length {len(value)} is not a multiple of 6")
        words = [int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2)]
        entries = (
            ExtendedNextHopFamily(family=Family(words[i], words[i + 1]), next_hop_afi=words[i + 2])
            for i in range(0, len(words), 3)
        )
        return cls(families=tuple(entries))

    def encode(self) -> bytes:
        words = (w for e in self.families for w in (e.family.afi, e.family.safi, e.next_hop_afi))
        return b"".join(w.to_bytes(2, "big") for w in words)

    def to_json(self) -> dict[str, object]:
        return self._json_head() | {"families": [entry.to_json() for entry in self.families]}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        entries = json_objects(obj, "families", [])
        return cls(families=tuple(ExtendedNextHopFamily.from_json(o) for o in entries))


def _short_utf8(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or len(value.encode("utf-8", "surrogatepass")) > 255:
        raise ValueError(f"{attribute.name}: expected text of at most 255 UTF-8 octets")


@attrs.frozen(kw_only=True)
class FQDN(_Base):
    """draft-walton-bgp-hostname-capability: hostname and domain name, each length-prefixed."""

    code: ClassVar[int] = CapabilityCode.FQDN.value
    name: ClassVar[str] = "fqdn"
    hostname: str = attrs.field(validator=_short_utf8)
    domain: str = attrs.field(default="", validator=_short_utf8)

    @classmethod
    def decode(cls, value: bytes) -> Self:
        host, domain = _fqdn_fields(value)
        try:
            return cls(hostname=host.decode("utf-8"), domain=domain.decode("utf-8"))
        except UnicodeDecodeError:
            raise malformed(cls.name, "text is not UTF-8") from None

    def encode(self) -> bytes:
        host, domain = self.hostname.encode(), self.domain.encode()
        return bytes((len(host),)) + host + bytes((len(domain),)) + domain

    def to_json(self) -> dict[str, object]:
        return self._json_head() | {"hostname": self.hostname, "domain": self.domain}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(hostname=json_str(obj, "hostname"), domain=json_str(obj, "domain", ""))


def _fqdn_fields(value: bytes) -> tuple[bytes, bytes]:
    """(hostname, domain name) octets; each is a length octet and that many octets."""
    host, rest = _split_length_prefixed(value, "hostname")
    domain, rest = _split_length_prefixed(rest, "domain name")
    if rest:
        raise malformed(FQDN.name, f"{len(rest)} octets after the domain name")
    return host, domain


def _split_length_prefixed(data: bytes, what: str) -> tuple[bytes, bytes]:
    if not data or 1 + data[0] > len(data):
        raise malformed(FQDN.name, f"{what} runs past the capability")
    return data[1 : 1 + data[0]], data[1 + data[0] :]


class Role(enum.IntEnum):
    """BGP Role values of RFC 9234 §4.1."""

    PROVIDER = 0
    RS = 1
    RS_CLIENT = 2
    CUSTOMER = 3
    PEER = 4


_ROLE_NAMES: dict[int, str] = {role.value: role.name.lower().replace("_", "-") for role in Role}


@attrs.frozen(kw_only=True)
class BGPRole(_Base):
    """RFC 9234 §4.1: one octet. Unassigned values are kept; the session decides on a mismatch."""

    code: ClassVar[int] = CapabilityCode.BGP_ROLE.value
    name: ClassVar[str] = "bgp-role"
    role: int = attrs.field(validator=_UINT8)

    @property
    def role_name(self) -> str | None:
        return _ROLE_NAMES.get(self.role)

    @classmethod
    def decode(cls, value: bytes) -> Self:
        if len(value) != 1:
            raise malformed(cls.name, f"length {len(value)}, expected 1")
        return cls(role=value[0])

    def encode(self) -> bytes:
        return bytes((self.role,))

    def to_json(self) -> dict[str, object]:
        return self._json_head() | {"role": _ROLE_NAMES.get(self.role, self.role)}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Self:
        return cls(role=json_name_or_int(obj, "role", _ROLE_NAMES))


_OTHER_NAMES = {
    3: "outbound-route-filtering",
    71: "long-lived-graceful-restart",
    75: "software-version",
    CapabilityCode.ROUTE_REFRESH_OLD: "route-refresh-old",
}


@attrs.frozen(kw_only=True)
class UnknownCapability:
    """A capability we do not interpret (RFC 5492 §3: ignore it), kept as raw octets."""

    code: int = attrs.field(validator=_UINT8)
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
    host, domain = _fqdn_fields(value)
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
