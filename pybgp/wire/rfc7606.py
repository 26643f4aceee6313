"""Judging an UPDATE's path attributes: RFC 7606 (with RFC 4271 §6.3, RFC 4760 §7,
RFC 6793 §6, RFC 7607, RFC 8092 §6, RFC 9234 §5) in one place.

Attribute Flags (RFC 4271 §4.3) are checked for every attribute we know: the Optional and
Transitive bits must be the attribute's, and the Partial bit may be set only on an optional
transitive one. A violation is an Attribute Flags Error (subcode 4) handled as the
attribute's own error handling says (RFC 7606 §3 (c) and §7, `AttrSpec.malformed`):
treat-as-withdraw for most, attribute discard for ATOMIC_AGGREGATE, AGGREGATOR (§7.6, §7.7),
AS4_PATH and AS4_AGGREGATOR (RFC 6793 §6); an MP attribute's resets the session (§5.3).

`parse_attributes` walks the attribute field once and returns what was kept plus every
problem found, each with its verdict: session reset, AFI/SAFI disable, treat-as-withdraw or
attribute discard. The caller applies the strongest (RFC 7606 §3 (h)).

Speed: a well-formed attribute is only checked here (by its spec's `valid`), not decoded;
`PathAttributes` decodes values when first read. Anything that fails the quick check, or that
a context rule concerns, is judged on the careful path, which says exactly what is wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import attrs

from pybgp.wire import aspath
from pybgp.wire.aspath import MalformedAttribute
from pybgp.wire.attributes import SPECS, AttrSpec, attribute_name, flags_problem
from pybgp.wire.constants import (
    OPTIONAL,
    PARTIAL,
    TRANSITIVE,
    AttrType,
    ErrorCode,
    SegmentType,
    UpdateError,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import Action, Problem
from pybgp.wire.mp import MpReach, MpUnreach, decode_mp
from pybgp.wire.pathattrs import PathAttributes, interner

_TAW, _AD = Action.TREAT_AS_WITHDRAW, Action.ATTRIBUTE_DISCARD
_MP = (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI)
# Not for external peers: discarded whatever their content (RFC 7606 §7.5, §7.9, §7.10).
_INTERNAL_ONLY = (AttrType.LOCAL_PREF, AttrType.ORIGINATOR_ID, AttrType.CLUSTER_LIST)
_AS4_ONLY_FROM_OLD = (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR)  # RFC 6793 §4.1
_FLAG_BITS = OPTIONAL | TRANSITIVE | PARTIAL  # the others are ignored on receipt (§4.3)
_SUBCODE: dict[int, int] = {
    AttrType.ORIGIN: UpdateError.INVALID_ORIGIN,
    AttrType.NEXT_HOP: UpdateError.INVALID_NEXT_HOP,
    AttrType.AS_PATH: UpdateError.MALFORMED_AS_PATH,
}


@attrs.define
class Findings:
    """What the careful path found: MP attributes, and problems with their verdicts."""

    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    problems: list[Problem] = attrs.Factory(list)
    mp_family: tuple[int, int] | None = None  # (AFI, SAFI) an AFI/SAFI-disable problem concerns


def _problem(action: Action, subcode: int, raw: bytes, name: str, reason: str) -> Problem:
    return Problem(
        action=action,
        code=ErrorCode.UPDATE_MESSAGE,
        subcode=subcode,
        data=raw,
        attribute=name or None,
        reason=reason,
    )


def parse_attributes(
    data: bytes, ctx: CodecContext
) -> tuple[PathAttributes | None, Findings | None]:
    """Judge an UPDATE's path attribute field (non-empty) under the session's rules: the
    path attributes kept (None if none), and the findings (None when all was plain)."""
    table = interner(ctx.validation_key)
    known = table.get(data)
    if known is not None:  # seen before under the same rules, and it was clean
        return known, None
    raw, present, findings = _walk(data, ctx)
    if not raw:
        return None, findings
    attributes = table.get(raw) if raw is not data else None
    if attributes is None:
        attributes = PathAttributes(raw, ctx.asn4, present)
        table.put(attributes)
    return attributes, findings


_Valid = Callable[[bytes], bool]


@functools.lru_cache(maxsize=256)
def _quick_checks(ctx: CodecContext) -> dict[int, tuple[int, _Valid]]:
    """type code -> (required Optional/Transitive/Partial bits, quick validity check), for
    this session's rules. Codes under a context rule are left out: they take the careful
    path, and so does an optional transitive attribute with the Partial bit (allowed)."""
    external = not (ctx.ibgp or ctx.confederation)
    width = 4 if ctx.asn4 else 2
    table: dict[int, tuple[int, _Valid]] = {}
    for code, spec in SPECS.items():
        if code in _AS4_ONLY_FROM_OLD or (external and code in _INTERNAL_ONLY):
            continue
        table[code] = (spec.flags, functools.partial(_decodes, spec, width))
    table[AttrType.AS_PATH] = (SPECS[AttrType.AS_PATH].flags, _as_path_check(ctx, width))
    table[AttrType.ORIGIN] = (SPECS[AttrType.ORIGIN].flags, lambda v: len(v) == 1 and v[0] <= 2)
    table[AttrType.NEXT_HOP] = (
        SPECS[AttrType.NEXT_HOP].flags,
        lambda v: len(v) == 4 and 0 < v[0] < 224,
    )
    for code in (AttrType.MULTI_EXIT_DISC, AttrType.LOCAL_PREF):
        if code in table:
            table[code] = (SPECS[code].flags, lambda v: len(v) == 4)
    return table


def _decodes(spec: AttrSpec, width: int, value: bytes) -> bool:
    try:
        spec.decode(value, width)
    except MalformedAttribute:
        return False
    return True


def _as_path_check(ctx: CodecContext, width: int) -> _Valid:
    """The usual AS_PATH: one AS_SEQUENCE, starting with the peer's AS, without AS 0.
    A zero run found across two AS numbers only sends the path to the careful path."""
    external = not (ctx.ibgp or ctx.confederation)
    first = ctx.peer_asn.to_bytes(width, "big") if external and ctx.peer_asn is not None else None
    zero = bytes(width)

    def check(v: bytes) -> bool:
        if not v:
            return first is None  # empty is valid (RFC 7606 §4), but not from an eBGP peer
        return (
            len(v) >= 2
            and v[0] == SegmentType.AS_SEQUENCE
            and v[1] > 0
            and len(v) == 2 + v[1] * width
            and (first is None or v[2 : 2 + width] == first)
            and zero not in v[2:]
        )

    return check


def _walk(data: bytes, ctx: CodecContext) -> tuple[bytes, int, Findings | None]:
    """One pass over the attribute field: the wire form of the attributes kept, a bit per
    type code kept, and the findings of the careful path if it was taken."""
    quick = _quick_checks(ctx)
    parsed: Findings | None = None
    dropped: list[tuple[int, int]] = []  # (begin, end) of attributes not kept
    seen = present = 0  # bit per type code
    kept = 0
    pos, size = 0, len(data)
    while pos < size:
        flags = data[pos]
        if size - pos < (4 if flags & 0x10 else 3):
            parsed = parsed or Findings()
            parsed.problems.append(
                _problem(
                    _TAW,
                    UpdateError.MALFORMED_ATTRIBUTE_LIST,
                    b"",
                    "",
                    "attribute header truncated",
                )
            )
            dropped.append((pos, size))
            break  # RFC 7606 §4
        code = data[pos + 1]
        if flags & 0x10:
            start = pos + 4
            end = start + (data[pos + 2] << 8 | data[pos + 3])
        else:
            start = pos + 3
            end = start + data[pos + 2]
        if end > size:
            name = attribute_name(code)
            parsed = parsed or Findings()
            parsed.problems.append(
                _problem(
                    _TAW,
                    UpdateError.ATTRIBUTE_LENGTH,
                    data[pos:],
                    name,
                    f"{name} overruns the attribute field",
                )
            )
            dropped.append((pos, size))
            break  # RFC 7606 §4
        bit = 1 << code
        entry = quick.get(code)
        if seen & bit:
            if code in _MP:  # RFC 7606 §3 (g)
                name = attribute_name(code)
                parsed = parsed or Findings()
                parsed.problems.append(
                    _problem(
                        Action.SESSION_RESET,
                        UpdateError.MALFORMED_ATTRIBUTE_LIST,
                        b"",
                        name,
                        f"{name} appears twice",
                    )
                )
            dropped.append((pos, end))  # other duplicates: discarded silently
        elif not (
            entry is not None and flags & _FLAG_BITS == entry[0] and entry[1](data[start:end])
        ):
            parsed = parsed or Findings()
            # An MP attribute's position counts every attribute before it (MP ones too).
            index = kept + (parsed.mp_reach is not None) + (parsed.mp_unreach is not None)
            if not _careful(parsed, data[pos:end], flags, code, data[start:end], index, ctx):
                dropped.append((pos, end))
            else:
                kept += 1
                present |= bit
        else:
            kept += 1
            present |= bit
        seen |= bit
        pos = end
    return (_without(data, dropped) if dropped else data), present, parsed


def _without(data: bytes, dropped: list[tuple[int, int]]) -> bytes:
    pieces, pos = [], 0
    for begin, end in dropped:
        pieces.append(data[pos:begin])
        pos = end
    pieces.append(data[pos:])
    return b"".join(pieces)


def _careful(
    parsed: Findings,
    raw: bytes,
    flags: int,
    code: int,
    value: bytes,
    index: int,
    ctx: CodecContext,
) -> bool:
    """Judge one attribute the quick check did not pass; True when it is kept."""
    if code in _MP:
        return _take_mp(parsed, code, flags, value, raw, index, ctx)
    spec = SPECS.get(code)
    if spec is None:
        if flags & OPTIONAL:
            return True  # unknown optional: kept (RFC 4271 §5)
        name = attribute_name(code)
        parsed.problems.append(
            _problem(
                Action.SESSION_RESET,
                UpdateError.UNRECOGNIZED_WELL_KNOWN,
                raw,
                name,
                f"unrecognized well-known attribute {code}",
            )
        )
        return False
    problem = _judge(spec, flags, value, raw, ctx)
    if problem is None:
        return True
    parsed.problems.append(problem)
    return False


def _take_mp(
    parsed: Findings,
    code: int,
    flags: int,
    value: bytes,
    raw: bytes,
    index: int,
    ctx: CodecContext,
) -> bool:
    """Record an MP attribute (or its problem); True only for a family we do not implement,
    which stays among the path attributes as an ordinary optional one."""
    mp = decode_mp(code, flags, value, raw, index, ctx)
    if isinstance(mp, Problem):
        parsed.problems.append(mp)
        if mp.action == Action.AFI_SAFI_DISABLE:
            parsed.mp_family = int.from_bytes(value[:2], "big"), value[2]
    elif isinstance(mp, MpReach):
        parsed.mp_reach = mp
    elif isinstance(mp, MpUnreach):
        parsed.mp_unreach = mp
    return mp is None


def _judge(
    spec: AttrSpec, flags: int, value: bytes, raw: bytes, ctx: CodecContext
) -> Problem | None:
    """Why a recognised attribute must not be used, or None when it is fine after all."""
    code, name = spec.code, spec.name
    external = not (ctx.ibgp or ctx.confederation)
    if external and code in _INTERNAL_ONLY:
        return _problem(
            _AD, UpdateError.MALFORMED_ATTRIBUTE_LIST, raw, name, f"{name} from an external peer"
        )
    if ctx.asn4 and code in _AS4_ONLY_FROM_OLD:
        return _problem(
            _AD, UpdateError.OPTIONAL_ATTRIBUTE, raw, name, f"{name} from a 4-octet AS speaker"
        )
    wrong_flags = flags_problem(spec.flags, flags)
    if wrong_flags:
        why = f"{name} flags 0x{flags:02x}: {wrong_flags}"
        return _problem(spec.malformed, UpdateError.ATTRIBUTE_FLAGS, raw, name, why)
    try:
        decoded = spec.decode(value, 4 if ctx.asn4 else 2)
    except MalformedAttribute as exc:
        subcode = _SUBCODE.get(code, UpdateError.ATTRIBUTE_LENGTH)
        data = b"" if code == AttrType.AS_PATH else raw  # §6.3: Malformed AS_PATH has no data
        return _problem(spec.malformed, subcode, data, name, str(exc))
    if code == AttrType.AS_PATH:
        reason = _as_path_problem(decoded, external, ctx)
        if reason:
            return _problem(_TAW, UpdateError.MALFORMED_AS_PATH, b"", name, reason)
    elif code == AttrType.AS4_PATH and any(0 in asns for _, asns in decoded):
        return _problem(
            _AD, UpdateError.OPTIONAL_ATTRIBUTE, raw, name, "AS4_PATH contains AS 0 (RFC 7607)"
        )
    return None


def _as_path_problem(path: aspath.AsPath, external: bool, ctx: CodecContext) -> str | None:
    for seg_type, asns in path:
        if 0 in asns:
            return "AS_PATH contains AS 0 (RFC 7607)"
        if external and seg_type >= SegmentType.AS_CONFED_SEQUENCE:
            return "confederation segments from a peer outside the confederation (RFC 5065 §5)"
    if external and ctx.peer_asn is not None and aspath.first_as(path) != ctx.peer_asn:
        return f"AS_PATH does not start with the peer's AS {ctx.peer_asn} (RFC 4271 §6.3)"
    return None


MANDATORY = 1 << AttrType.ORIGIN | 1 << AttrType.AS_PATH
MANDATORY_WITH_V4_NLRI = MANDATORY | 1 << AttrType.NEXT_HOP


def missing_mandatory(present: int, legacy_nlri: bool) -> Problem | None:
    """RFC 7606 §3 (d): ORIGIN and AS_PATH with any NLRI; NEXT_HOP with IPv4 NLRI field.
    `present` has a bit per type code present."""
    required = [AttrType.ORIGIN, AttrType.AS_PATH] + ([AttrType.NEXT_HOP] if legacy_nlri else [])
    for code in required:
        if not present >> code & 1:
            name = attribute_name(code)
            return _problem(
                _TAW,
                UpdateError.MISSING_WELL_KNOWN,
                bytes((code,)),
                name,
                f"missing well-known attribute {name}",
            )
    return None
