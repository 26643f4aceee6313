"""Capabilities made of per-family tuples: Graceful Restart (RFC 4724), ADD-PATH (RFC 7911)
and Extended Next Hop (RFC 8950). Each class decodes and encodes only its Capability Value.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Self

import attrs
from attrs.validators import in_

from pybgp.wire.capability_base import (
    SAFI_OCTET,
    UINT8,
    CapabilityBase,
    CapabilityCode,
    family_validator,
    malformed,
)
from pybgp.wire.constants import AFI_IPV4, AFI_IPV6, Family
from pybgp.wire.jsonfields import json_bool, json_family, json_int, json_name_or_int, json_objects

_SAFI_TWO_OCTETS = family_validator(0xFFFF)  # RFC 8950 §3 carries a 2-octet SAFI
_AFI_NAMES: dict[int, str] = {AFI_IPV4: "ipv4", AFI_IPV6: "ipv6"}


def _family_at(value: bytes, offset: int) -> Family:
    """AFI (2 octets) + SAFI (1 octet) at `offset`, the layout of RFC 4760 §8, 4724, 7911."""
    return Family(int.from_bytes(value[offset : offset + 2], "big"), value[offset + 2])


def _family_bytes(family: Family) -> bytes:
    return family.afi.to_bytes(2, "big") + bytes((family.safi,))


@attrs.frozen(kw_only=True)
class GracefulRestartFamily:
    """One <AFI, SAFI, Flags> tuple of RFC 4724 §3."""

    family: Family = attrs.field(validator=SAFI_OCTET)
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
class GracefulRestart(CapabilityBase):
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

    family: Family = attrs.field(validator=SAFI_OCTET)
    mode: int = attrs.field(validator=UINT8)

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
class AddPath(CapabilityBase):
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
class ExtendedNextHop(CapabilityBase):
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
