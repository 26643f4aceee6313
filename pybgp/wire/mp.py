"""MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3-§4, RFC 2545 §3, RFC 8950 §3)."""

from __future__ import annotations

import attrs

from pybgp.wire.attributes import flags_problem
from pybgp.wire.constants import (
    AFI_IPV4,
    IPV4_UNICAST,
    IPV6_UNICAST,
    OPTIONAL,
    AttrType,
    Family,
    UpdateError,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import Action, Problem
from pybgp.wire.nlri import Nlri, NlriError, address_to_str, max_bits, parse_nlri

SUPPORTED_FAMILIES = frozenset({IPV4_UNICAST, IPV6_UNICAST})

# Next-hop lengths per AFI: IPv6 global (+ link-local); IPv4 NLRI may use IPv6 (RFC 8950 §3).
_NEXT_HOP_LENGTHS = {AFI_IPV4: (4, 16, 32), 2: (16, 32)}


@attrs.frozen(kw_only=True)
class MpReach:
    family: Family
    next_hop: bytes  # 4, 16 or 32 octets as on the wire
    nlri: tuple[Nlri, ...]
    # Where the attribute stood and its flags, so a decoded message re-encodes exactly.
    position: int = attrs.field(default=0, eq=False)
    flags: int = attrs.field(default=OPTIONAL, eq=False)

    @property
    def next_hops(self) -> tuple[str, ...]:
        """The next hop as text; two addresses when a link-local one follows (RFC 2545 §3)."""
        nh = self.next_hop
        if len(nh) == 32:
            return address_to_str(nh[:16]), address_to_str(nh[16:])
        return (address_to_str(nh),)

    def value(self) -> bytes:
        family = self.family
        head = family.afi.to_bytes(2, "big") + bytes((family.safi, len(self.next_hop)))
        return head + self.next_hop + b"\0" + b"".join(self.nlri)


@attrs.frozen(kw_only=True)
class MpUnreach:
    family: Family
    nlri: tuple[Nlri, ...]
    position: int = attrs.field(default=0, eq=False)
    flags: int = attrs.field(default=OPTIONAL, eq=False)

    def value(self) -> bytes:
        family = self.family
        return family.afi.to_bytes(2, "big") + bytes((family.safi,)) + b"".join(self.nlri)


def _incorrect(
    code: int,
    raw_attr: bytes,
    reason: str,
    family_known: bool,
    subcode: int = UpdateError.OPTIONAL_ATTRIBUTE,
) -> Problem:
    # RFC 7606 §5.3 / RFC 4760 §7: an incorrect MP attribute disables its family or resets.
    action = Action.AFI_SAFI_DISABLE if family_known else Action.SESSION_RESET
    return Problem(
        action=action,
        code=3,
        subcode=subcode,
        data=raw_attr,
        attribute="mp_reach_nlri" if code == AttrType.MP_REACH_NLRI else "mp_unreach_nlri",
        reason=reason,
    )


def decode_mp(
    code: int, flags: int, value: bytes, raw_attr: bytes, position: int, ctx: CodecContext
) -> MpReach | MpUnreach | Problem | None:
    """Decode an MP attribute; None for a family we do not implement (kept as unknown)."""
    head = 5 if code == AttrType.MP_REACH_NLRI else 3
    if len(value) < head:
        return _incorrect(code, raw_attr, f"length {len(value)} below {head}", False)
    wrong_flags = flags_problem(OPTIONAL, flags)
    if wrong_flags:
        reason = f"flags 0x{flags:02x}: {wrong_flags}"
        return _incorrect(code, raw_attr, reason, False, UpdateError.ATTRIBUTE_FLAGS)
    family = Family(int.from_bytes(value[:2], "big"), value[2])
    if family not in SUPPORTED_FAMILIES:
        return None
    addpath = family in ctx.addpath_rx
    if code == AttrType.MP_UNREACH_NLRI:
        try:
            nlri = parse_nlri(value[3:], max_bits(family), addpath)
        except NlriError as exc:
            return _incorrect(code, raw_attr, f"{family.name} withdrawn: {exc}", True)
        return MpUnreach(family=family, nlri=nlri, position=position, flags=flags)
    nh_len = value[3]
    if nh_len not in _NEXT_HOP_LENGTHS[family.afi] or 5 + nh_len > len(value):
        return _incorrect(code, raw_attr, f"{family.name} next hop length {nh_len}", True)
    try:
        nlri = parse_nlri(value[5 + nh_len :], max_bits(family), addpath)
    except NlriError as exc:
        return _incorrect(code, raw_attr, f"{family.name} NLRI: {exc}", True)
    next_hop = value[4 : 4 + nh_len]
    return MpReach(family=family, next_hop=next_hop, nlri=nlri, position=position, flags=flags)
