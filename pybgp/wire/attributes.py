"""Path attributes (RFC 4271 §4.3, §5): one spec per type code, so every attribute is
decoded, encoded, shown as JSON and judged under RFC 7606 from one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from pybgp.wire import aspath, communities
from pybgp.wire.aspath import MalformedAttribute
from pybgp.wire.constants import OPTIONAL, PARTIAL, TRANSITIVE, AttrType, Origin, SegmentType
from pybgp.wire.errors import Action
from pybgp.wire.nlri import address_from_str, address_text, address_to_str

Decode = Callable[[bytes, int], Any]  # (value, AS number width) -> typed value
Encode = Callable[[Any, int], bytes]


@attrs.frozen(kw_only=True)
class AttrSpec:
    code: int
    name: str  # the JSON key
    flags: int  # the Optional and Transitive bits the attribute must carry
    malformed: Action  # RFC 7606 §7 verdict when it does not parse or its flags are wrong
    decode: Decode
    encode: Encode
    to_json: Callable[[Any], Any]
    from_json: Callable[[Any], Any]


def flags_problem(required: int, flags: int) -> str | None:
    """What is wrong with an attribute's flags, given the Optional and Transitive bits its
    type requires (RFC 4271 §4.3; RFC 7606 §3 (c)); None when nothing is."""
    if flags & (OPTIONAL | TRANSITIVE) != required:
        kinds = {TRANSITIVE: "well-known", OPTIONAL: "optional non-transitive"}
        return f"expected {kinds.get(required, 'optional transitive')}"
    if flags & PARTIAL and required != OPTIONAL | TRANSITIVE:
        return "Partial bit on an attribute that is not optional transitive"
    return None


def _fixed_int(name: str) -> tuple[Decode, Encode]:
    def decode(value: bytes, _width: int) -> int:
        if len(value) != 4:
            raise MalformedAttribute(f"{name} length {len(value)}, expected 4")
        return int.from_bytes(value, "big")

    def encode(number: int, _width: int) -> bytes:
        return number.to_bytes(4, "big")

    return decode, encode


def _decode_origin(value: bytes, _width: int) -> int:
    if len(value) != 1:
        raise MalformedAttribute(f"ORIGIN length {len(value)}, expected 1")
    if value[0] > Origin.INCOMPLETE:
        raise MalformedAttribute(f"undefined ORIGIN value {value[0]}")
    return value[0]


def _decode_next_hop(value: bytes, _width: int) -> str:
    if len(value) != 4:
        raise MalformedAttribute(f"NEXT_HOP length {len(value)}, expected 4")
    # Not a unicast host address: 0/8, multicast, reserved (RFC 4271 §6.3, RFC 7606 §7.3).
    if value[0] == 0 or value[0] >= 224:
        raise MalformedAttribute(f"NEXT_HOP {address_to_str(value)} is not a unicast address")
    return address_text(value)


def _decode_ipv4(name: str) -> Decode:
    def decode(value: bytes, _width: int) -> str:
        if len(value) != 4:
            raise MalformedAttribute(f"{name} length {len(value)}, expected 4")
        return address_to_str(value)

    return decode


def _decode_atomic(value: bytes, _width: int) -> bool:
    if value:
        raise MalformedAttribute(f"ATOMIC_AGGREGATE length {len(value)}, expected 0")
    return True


def _aggregator(name: str, fixed_width: int | None) -> tuple[Decode, Encode]:
    def decode(value: bytes, width: int) -> tuple[int, str]:
        w = fixed_width or width
        if len(value) != w + 4:
            raise MalformedAttribute(f"{name} length {len(value)}, expected {w + 4}")
        asn = int.from_bytes(value[:w], "big")
        if asn == 0:
            raise MalformedAttribute(f"{name} AS 0 (RFC 7607)")
        return asn, address_to_str(value[w:])

    def encode(agg: tuple[int, str], width: int) -> bytes:
        return agg[0].to_bytes(fixed_width or width, "big") + address_from_str(agg[1])

    return decode, encode


def _decode_cluster_list(value: bytes, _width: int) -> tuple[str, ...]:
    if not value or len(value) % 4:
        raise MalformedAttribute(
            f"CLUSTER_LIST length {len(value)} is not a non-zero multiple of 4"
        )
    return tuple(address_to_str(value[i : i + 4]) for i in range(0, len(value), 4))


def _decode_as_path(value: bytes, width: int) -> aspath.AsPath:
    return aspath.decode_as_path(value, width)


def _decode_as4_path(value: bytes, _width: int) -> aspath.AsPath:
    if not value:
        raise MalformedAttribute("AS4_PATH of length zero")
    path = aspath.decode_as_path(value, 4)
    # RFC 6793 §6: confederation segments in AS4_PATH are dropped, the rest kept.
    return tuple(seg for seg in path if seg[0] < SegmentType.AS_CONFED_SEQUENCE)


def _origin_from_json(obj: Any) -> int:
    try:
        return Origin[str(obj).upper()].value
    except KeyError:
        raise ValueError(f"origin: expected igp, egp or incomplete, not {obj!r}") from None


def _int_from_json(name: str, bits: int) -> Callable[[Any], int]:
    def convert(obj: Any) -> int:
        if not isinstance(obj, int) or isinstance(obj, bool) or not 0 <= obj < 2**bits:
            raise ValueError(f"{name}: expected an integer 0..{2**bits - 1}, not {obj!r}")
        return obj

    return convert


def _aggregator_from_json(obj: Any) -> tuple[int, str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("asn"), int):
        raise ValueError(f"aggregator: expected {{'asn': N, 'address': A}}, not {obj!r}")
    address = obj.get("address")
    if not isinstance(address, str):
        raise ValueError("aggregator: address missing")
    address_from_str(address)
    return obj["asn"], address


def _strings(obj: Any, name: str) -> list[str]:
    if not isinstance(obj, list) or not all(isinstance(item, str) for item in obj):
        raise ValueError(f"{name}: expected a list of strings")
    return obj


def _addr4_from_json(name: str) -> Callable[[Any], str]:
    def convert(obj: Any) -> str:
        if not isinstance(obj, str) or len(address_from_str(obj)) != 4:
            raise ValueError(f"{name}: expected an IPv4 address, not {obj!r}")
        return obj

    return convert


_med = _fixed_int("MULTI_EXIT_DISC")
_lp = _fixed_int("LOCAL_PREF")
_otc = _fixed_int("OTC")
_agg = _aggregator("AGGREGATOR", None)
_agg4 = _aggregator("AS4_AGGREGATOR", 4)
_WK, _ONT, _OT = TRANSITIVE, OPTIONAL, OPTIONAL | TRANSITIVE
_TAW, _AD = Action.TREAT_AS_WITHDRAW, Action.ATTRIBUTE_DISCARD


def _identity(value: Any) -> Any:
    return value


def _addr_list(addresses: tuple[str, ...]) -> bytes:
    return b"".join(address_from_str(address) for address in addresses)


_SPECS = [
    AttrSpec(
        code=AttrType.ORIGIN,
        name="origin",
        flags=_WK,
        malformed=_TAW,
        decode=_decode_origin,
        encode=lambda v, w: bytes((v,)),
        to_json=lambda v: Origin(v).name.lower(),
        from_json=_origin_from_json,
    ),
    AttrSpec(
        code=AttrType.AS_PATH,
        name="as_path",
        flags=_WK,
        malformed=_TAW,
        decode=_decode_as_path,
        encode=aspath.encode_as_path,
        to_json=aspath.as_path_to_json,
        from_json=aspath.as_path_from_json,
    ),
    AttrSpec(
        code=AttrType.NEXT_HOP,
        name="next_hop",
        flags=_WK,
        malformed=_TAW,
        decode=_decode_next_hop,
        encode=lambda v, w: address_from_str(v),
        to_json=_identity,
        from_json=_addr4_from_json("next_hop"),
    ),
    AttrSpec(
        code=AttrType.MULTI_EXIT_DISC,
        name="med",
        flags=_ONT,
        malformed=_TAW,
        decode=_med[0],
        encode=_med[1],
        to_json=_identity,
        from_json=_int_from_json("med", 32),
    ),
    AttrSpec(
        code=AttrType.LOCAL_PREF,
        name="local_pref",
        flags=_WK,
        malformed=_TAW,
        decode=_lp[0],
        encode=_lp[1],
        to_json=_identity,
        from_json=_int_from_json("local_pref", 32),
    ),
    AttrSpec(
        code=AttrType.ATOMIC_AGGREGATE,
        name="atomic_aggregate",
        flags=_WK,
        malformed=_AD,
        decode=_decode_atomic,
        encode=lambda v, w: b"",
        to_json=lambda v: True,
        from_json=lambda obj: True,
    ),
    AttrSpec(
        code=AttrType.AGGREGATOR,
        name="aggregator",
        flags=_OT,
        malformed=_AD,
        decode=_agg[0],
        encode=_agg[1],
        to_json=lambda v: {"asn": v[0], "address": v[1]},
        from_json=_aggregator_from_json,
    ),
    AttrSpec(
        code=AttrType.COMMUNITIES,
        name="communities",
        flags=_OT,
        malformed=_TAW,
        decode=lambda v, w: communities.decode_communities(v),
        encode=lambda v, w: communities.encode_communities(v),
        to_json=lambda v: [
            communities.WELL_KNOWN.get(c) or communities.community_to_str(c) for c in v
        ],
        from_json=lambda obj: tuple(
            communities.community_from_str(s) for s in _strings(obj, "communities")
        ),
    ),
    AttrSpec(
        code=AttrType.ORIGINATOR_ID,
        name="originator_id",
        flags=_ONT,
        malformed=_TAW,
        decode=_decode_ipv4("ORIGINATOR_ID"),
        encode=lambda v, w: address_from_str(v),
        to_json=_identity,
        from_json=_addr4_from_json("originator_id"),
    ),
    AttrSpec(
        code=AttrType.CLUSTER_LIST,
        name="cluster_list",
        flags=_ONT,
        malformed=_TAW,
        decode=_decode_cluster_list,
        encode=lambda v, w: _addr_list(v),
        to_json=list,
        from_json=lambda obj: tuple(
            _addr4_from_json("cluster_list")(s) for s in _strings(obj, "cluster_list")
        ),
    ),
    AttrSpec(
        code=AttrType.EXTENDED_COMMUNITIES,
        name="extended_communities",
        flags=_OT,
        malformed=_TAW,
        decode=lambda v, w: communities.decode_extended_communities(v),
        encode=lambda v, w: b"".join(v),
        to_json=lambda v: [communities.extended_community_to_str(c) for c in v],
        from_json=lambda obj: tuple(
            communities.extended_community_from_str(s)
            for s in _strings(obj, "extended_communities")
        ),
    ),
    AttrSpec(
        code=AttrType.AS4_PATH,
        name="as4_path",
        flags=_OT,
        malformed=_AD,
        decode=_decode_as4_path,
        encode=lambda v, w: aspath.encode_as_path(v, 4),
        to_json=aspath.as_path_to_json,
        from_json=aspath.as_path_from_json,
    ),
    AttrSpec(
        code=AttrType.AS4_AGGREGATOR,
        name="as4_aggregator",
        flags=_OT,
        malformed=_AD,
        decode=_agg4[0],
        encode=_agg4[1],
        to_json=lambda v: {"asn": v[0], "address": v[1]},
        from_json=_aggregator_from_json,
    ),
    AttrSpec(
        code=AttrType.LARGE_COMMUNITIES,
        name="large_communities",
        flags=_OT,
        malformed=_TAW,
        decode=lambda v, w: communities.decode_large_communities(v),
        encode=lambda v, w: communities.encode_large_communities(v),
        to_json=lambda v: [communities.large_community_to_str(c) for c in v],
        from_json=lambda obj: tuple(
            communities.large_community_from_str(s) for s in _strings(obj, "large_communities")
        ),
    ),
    AttrSpec(
        code=AttrType.OTC,
        name="otc",
        flags=_OT,
        malformed=_TAW,
        decode=_otc[0],
        encode=_otc[1],
        to_json=_identity,
        from_json=_int_from_json("otc", 32),
    ),
]

SPECS: dict[int, AttrSpec] = {spec.code: spec for spec in _SPECS}
SPECS_BY_NAME: dict[str, AttrSpec] = {spec.name: spec for spec in _SPECS}


def attribute_name(code: int) -> str:
    spec = SPECS.get(code)
    if spec is not None:
        return spec.name
    if code == AttrType.MP_REACH_NLRI:
        return "mp_reach_nlri"
    if code == AttrType.MP_UNREACH_NLRI:
        return "mp_unreach_nlri"
    return f"attr_{code}"


def canonical_flags(code: int, length: int) -> int:
    """The flags our encoder writes: the spec's O/T bits, Extended Length only when needed.

    Unknown attributes keep what they arrived with; callers handle them.
    """
    spec = SPECS.get(code)
    base = spec.flags if spec else OPTIONAL
    if code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
        base = OPTIONAL
    return base | (0x10 if length > 255 else 0)


def encode_attribute(flags: int, code: int, value: bytes) -> bytes:
    """One attribute TLV; the Extended Length bit follows `flags` but is forced on when needed."""
    if len(value) > 255:
        flags |= 0x10
    if flags & 0x10:
        return bytes((flags, code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags, code, len(value))) + value
