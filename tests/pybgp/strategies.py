"""hypothesis strategies for generated BGP messages.

Each message kind has its own clearly named functions; every generated value is valid, so
decode(encode(x)) == x is expected to hold exactly.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs
from hypothesis import strategies as st

from pybgp.wire import aspath, communities
from pybgp.wire.attributes import SPECS
from pybgp.wire.capabilities import (
    FQDN,
    AddPath,
    AddPathFamily,
    BGPRole,
    Capability,
    CapabilityCode,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    ExtendedNextHopFamily,
    FourOctetAS,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
    encode_capability,
)
from pybgp.wire.constants import (
    AFI_IPV6,
    IPV4_UNICAST,
    IPV6_UNICAST,
    OPTIONAL,
    PARTIAL,
    TRANSITIVE,
    AttrType,
    Family,
    SegmentType,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RouteRefresh as RouteRefreshMessage
from pybgp.wire.update import Update

# ---------------------------------------------------------------------------------------------
# OPEN and capabilities


def families(max_safi: int = 0xFF) -> st.SearchStrategy[Family]:
    common = st.sampled_from([Family(1, 1), Family(2, 1), Family(1, 2), Family(25, 70)])
    return common | st.builds(Family, st.integers(0, 0xFFFF), st.integers(0, max_safi))


def _mostly_zero(bits: int) -> st.SearchStrategy[int]:
    return st.just(0) | st.integers(0, (1 << bits) - 1)


def _short_text() -> st.SearchStrategy[str]:
    return st.text(max_size=30).filter(lambda s: len(s.encode("utf-8")) <= 255)


def graceful_restart_capabilities() -> st.SearchStrategy[GracefulRestart]:
    entry = st.builds(
        GracefulRestartFamily,
        family=families(),
        forwarding_state=st.booleans(),
        reserved_flags=_mostly_zero(7),
    )
    return st.builds(
        GracefulRestart,
        restart_state=st.booleans(),
        notification=st.booleans(),
        restart_time=st.integers(0, 0xFFF),
        families=st.lists(entry, max_size=4).map(tuple),
        reserved_flags=_mostly_zero(2),
    )


def add_path_capabilities() -> st.SearchStrategy[AddPath]:
    mode = st.integers(1, 3) | st.integers(0, 0xFF)  # invalid modes are kept (RFC 7911 §4)
    entry = st.builds(AddPathFamily, family=families(), mode=mode)
    return st.builds(AddPath, families=st.lists(entry, max_size=4).map(tuple))


def extended_next_hop_capabilities() -> st.SearchStrategy[ExtendedNextHop]:
    entry = st.builds(
        ExtendedNextHopFamily, family=families(0xFFFF), next_hop_afi=st.integers(0, 0xFFFF)
    )
    return st.builds(ExtendedNextHop, families=st.lists(entry, max_size=4).map(tuple))


_KNOWN_CODES = {code.value for code in CapabilityCode} - {CapabilityCode.ROUTE_REFRESH_OLD}


def unknown_capabilities() -> st.SearchStrategy[UnknownCapability]:
    code = st.integers(0, 0xFF).filter(lambda c: c not in _KNOWN_CODES)
    return st.builds(UnknownCapability, code=code, value=st.binary(max_size=24))


def capabilities(four_octet_as_zero: bool = True) -> st.SearchStrategy[Capability]:
    """Any capability; `four_octet_as_zero=False` leaves out AS 0, which an OPEN rejects."""
    empty = st.sampled_from([RouteRefresh(), EnhancedRouteRefresh(), ExtendedMessage()])
    return st.one_of(
        st.builds(Multiprotocol, family=families(), reserved=_mostly_zero(8)),
        empty,
        st.builds(FourOctetAS, asn=st.integers(0 if four_octet_as_zero else 1, 0xFFFFFFFF)),
        graceful_restart_capabilities(),
        add_path_capabilities(),
        extended_next_hop_capabilities(),
        st.builds(FQDN, hostname=_short_text(), domain=_short_text()),
        st.builds(BGPRole, role=st.integers(0, 0xFF)),
        unknown_capabilities(),
    )


def _roles_agree(groups: tuple[tuple[Capability, ...], ...]) -> bool:
    roles = {cap.role for group in groups for cap in group if isinstance(cap, BGPRole)}
    return len(roles) <= 1  # RFC 9234 §4.2: disagreeing roles are rejected


def _classic_params_len(message: Open) -> int:
    return sum(2 + sum(len(encode_capability(c)) for c in g) for g in message.parameters)


@st.composite
def open_messages(draw: st.DrawFn) -> Open:
    group = st.lists(capabilities(four_octet_as_zero=False), max_size=5).map(tuple)
    groups = draw(st.lists(group, max_size=4).map(tuple).filter(_roles_agree))
    extended = draw(st.booleans())
    message = Open(
        my_as=draw(st.integers(1, 0xFFFF)),
        hold_time=draw(st.just(0) | st.integers(3, 0xFFFF)),
        bgp_id=str(ipaddress.IPv4Address(draw(st.integers(1, 0xFFFFFFFF)))),
        parameters=groups,
        extended_params=extended,
        non_ext_op_len=draw(st.just(255) | st.integers(1, 255)) if extended else 255,
    )
    if not extended and _classic_params_len(message) > 255:
        message = attrs.evolve(message, extended_params=True)  # what the encoder will choose
    return message


# ---------------------------------------------------------------------------------------------
# NOTIFICATION, ROUTE-REFRESH


def notifications() -> st.SearchStrategy[Notification]:
    raw = st.builds(
        Notification,
        code=st.integers(0, 0xFF),
        subcode=st.integers(0, 0xFF),
        data=st.binary(max_size=300),
    )
    shutdown = st.builds(
        Notification.shutdown, text=st.text(max_size=100), subcode=st.sampled_from([2, 4])
    )
    return raw | shutdown


@st.composite
def route_refresh_messages(draw: st.DrawFn) -> RouteRefreshMessage:
    subtype = draw(st.sampled_from([0, 1, 2]) | st.integers(0, 0xFF))
    extra = b"" if subtype in (1, 2) else draw(st.just(b"") | st.binary(max_size=40))
    return RouteRefreshMessage(family=draw(families()), subtype=subtype, extra=extra)


# ---------------------------------------------------------------------------------------------
# UPDATE: valid messages as values, built through the JSON form (`Update.from_json`).
#
# Every case obeys the rules its context judges by (RFC 7606 and friends): no AS 0; 2-octet AS
# numbers when 4-octet AS is off; confederation segments, LOCAL_PREF, ORIGINATOR_ID and
# CLUSTER_LIST only from internal/confederation peers; AS4_PATH/AS4_AGGREGATOR only from a
# 2-octet peer; ORIGIN, AS_PATH (and NEXT_HOP with IPv4 NLRI) whenever a prefix is announced;
# ADD-PATH identifiers exactly in the context's ADD-PATH families. The JSON is built the way
# `Update.to_json` prints it, so decode(encode(x)).to_json() is expected to give it back.

U32 = 0xFFFFFFFF
_PREFIX_LENGTHS = {4: (8, 16, 24, 25, 32), 6: (32, 48, 56, 64, 127, 128)}
_UPDATE_FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)
# Attribute type codes the codec decodes itself (never generated as "unknown").
_CODEC_CODES = frozenset(SPECS) | {AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI}


@attrs.frozen(kw_only=True)
class UpdateCase:
    """A generated UPDATE: its context, the JSON it was built from, the value, and the typed
    values of its known path attributes (type code -> value, in wire order)."""

    ctx: CodecContext
    obj: dict[str, Any]
    update: Update
    values: dict[int, Any]
    canonical_flags: bool  # no attribute_flags and no unknown attribute: PathAttributes.build
    # gives the same attributes


def update_contexts(
    *, addpath: bool = True, confederation: bool = True
) -> st.SearchStrategy[CodecContext]:
    """Receiving contexts: 4-octet AS on/off, iBGP / confederation / eBGP (with or without a
    known peer AS), ADD-PATH in both directions for some families."""

    @st.composite
    def build(draw: st.DrawFn) -> CodecContext:
        asn4 = draw(st.booleans())
        ibgp = draw(st.booleans())
        confed = not ibgp and confederation and draw(st.booleans())
        external = not (ibgp or confed)
        peer_asn = draw(st.none() | as_numbers(asn4)) if external else None
        families = frozenset(draw(st.sets(st.sampled_from(_UPDATE_FAMILIES)))) if addpath else None
        return CodecContext(
            asn4=asn4,
            ibgp=ibgp,
            confederation=confed,
            peer_asn=peer_asn,
            addpath_rx=families or frozenset(),
            addpath_tx=families or frozenset(),
        )

    return build()


def network_text(version: int, value: int, plen: int) -> str:
    """The prefix of `value` (an address as an integer) of length `plen`, host bits cleared."""
    bits = 32 if version == 4 else 128
    value &= ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
    if version == 4:
        return str(ipaddress.IPv4Network((value, plen)))
    return str(ipaddress.IPv6Network((value, plen)))


def prefixes(family: Family, *, default_route: bool = True) -> st.SearchStrategy[str]:
    """Canonical prefixes of `family` as text ("10.0.0.0/24"); /0 only with `default_route`."""
    version = 6 if family.afi == AFI_IPV6 else 4
    bits = 32 if version == 4 else 128
    lengths = st.sampled_from(_PREFIX_LENGTHS[version]) | st.integers(
        0 if default_route else 1, bits
    )
    return st.builds(network_text, st.just(version), st.integers(0, (1 << bits) - 1), lengths)


def path_ids() -> st.SearchStrategy[int]:
    return st.sampled_from([0, 1, U32]) | st.integers(0, U32)


def prefix_items(
    family: Family, addpath: bool, *, default_route: bool = True, max_size: int = 5
) -> st.SearchStrategy[list[Any]]:
    """A JSON prefix list: strings, or {"prefix", "path_id"} objects for an ADD-PATH family."""
    text = prefixes(family, default_route=default_route)
    item: st.SearchStrategy[Any] = text
    if addpath:
        item = st.fixed_dictionaries({"prefix": text, "path_id": path_ids()})
    return st.lists(item, max_size=max_size)


def prefix_wire_len(item: Any, family: Family) -> int:
    """Octets of one JSON prefix item on the wire (RFC 4271 §4.3, RFC 7911 §3)."""
    text = item["prefix"] if isinstance(item, dict) else item
    plen = int(text.rsplit("/", 1)[1])
    return (4 if isinstance(item, dict) else 0) + 1 + (plen + 7) // 8


def as_numbers(asn4: bool) -> st.SearchStrategy[int]:
    """AS numbers other than 0 (RFC 7607), 2-octet ones when 4-octet AS is off."""
    top = U32 if asn4 else 0xFFFF
    special = [1, 23456, 64512, 65535] + ([65536, 4200000000, U32] if asn4 else [])
    return st.sampled_from(special) | st.integers(1, top)


@st.composite
def as_paths(
    draw: st.DrawFn,
    asn4: bool,
    *,
    confed: bool = False,
    first_as: int | None = None,
    min_segments: int = 0,
    max_segments: int = 4,
) -> aspath.AsPath:
    """AS_PATH segments (RFC 4271 §4.3, RFC 5065 §3); each fits one wire segment.

    `first_as` makes the path start with an AS_SEQUENCE beginning with it (RFC 4271 §6.3).
    """
    types = [SegmentType.AS_SEQUENCE, SegmentType.AS_SET]
    if confed:
        types += [SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET]
    segment = st.tuples(
        st.sampled_from(types).map(int),
        st.lists(as_numbers(asn4), min_size=1, max_size=8).map(tuple),
    )
    path = draw(st.lists(segment, min_size=min_segments, max_size=max_segments))
    if first_as is not None:
        if path and path[0][0] == SegmentType.AS_SEQUENCE and len(path[0][1]) < 255:
            path[0] = (path[0][0], (first_as, *path[0][1]))
        else:
            path.insert(0, (int(SegmentType.AS_SEQUENCE), (first_as,)))
    return tuple(path)


def ipv4_addresses() -> st.SearchStrategy[str]:
    return st.integers(0, U32).map(lambda n: str(ipaddress.IPv4Address(n)))


def ipv6_addresses() -> st.SearchStrategy[str]:
    special = st.sampled_from(["2001:db8::1", "fe80::1", "::", "::ffff:192.0.2.1"])
    any_address = st.integers(0, (1 << 128) - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
    return special.map(lambda s: str(ipaddress.IPv6Address(s))) | any_address


def unicast_next_hops() -> st.SearchStrategy[str]:
    """NEXT_HOP values RFC 4271 §6.3 accepts: not 0/8, not multicast or reserved."""
    return st.integers(0x01000000, 0xDFFFFFFF).map(lambda n: str(ipaddress.IPv4Address(n)))


def extended_communities() -> st.SearchStrategy[bytes]:
    """Extended communities (RFC 4360): route targets/origins of each kind, and any 8 octets."""
    typed = st.builds(
        lambda kind, sub, rest: bytes((kind, sub)) + rest,
        st.sampled_from([0x00, 0x01, 0x02, 0x40, 0x43]),
        st.sampled_from([0x02, 0x03]),
        st.binary(min_size=6, max_size=6),
    )
    return typed | st.binary(min_size=8, max_size=8)


def _nonempty(
    strategy: st.SearchStrategy[Any], max_size: int
) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, min_size=1, max_size=max_size).map(tuple)


def unknown_attributes(
    exclude: frozenset[int] = frozenset(),
) -> st.SearchStrategy[tuple[int, int, bytes]]:
    """(code, flags, value) of an optional transitive attribute the codec does not know (nor
    in `exclude`), sometimes Partial, sometimes long enough for the Extended Length bit
    (RFC 4271 §4.3)."""
    code = st.integers(0, 255).filter(lambda c: c not in _CODEC_CODES and c not in exclude)
    value = st.binary(max_size=16) | st.binary(min_size=250, max_size=300)

    def flags_for(value: bytes, partial: bool, extended: bool) -> int:
        extended = extended or len(value) > 255
        return OPTIONAL | TRANSITIVE | (PARTIAL if partial else 0) | (0x10 if extended else 0)

    return st.builds(
        lambda c, v, p, e: (c, flags_for(v, p, e), v), code, value, st.booleans(), st.booleans()
    )


@st.composite
def update_cases(
    draw: st.DrawFn,
    *,
    ctx: st.SearchStrategy[CodecContext] | None = None,
    both_mp: bool = True,
    mp_reach_families: tuple[Family, ...] = _UPDATE_FAMILIES,
    mp_unreach_families: tuple[Family, ...] = _UPDATE_FAMILIES,
    default_route: bool = True,
    max_communities: int = 6,
    max_large_communities: int = 4,
    aggregator_with_asn4: bool = True,
    max_as4_path_segments: int = 3,
    ext_communities: st.SearchStrategy[bytes] | None = None,
    unknown: bool = True,
    unknown_exclude: frozenset[int] = frozenset(),
    odd_flags: bool = True,
) -> UpdateCase:
    """A valid UPDATE with its context. The keyword arguments narrow what is generated (the
    scapy differential test needs that); the defaults cover everything the codec supports."""
    context = draw(ctx if ctx is not None else update_contexts())
    asn4, external = context.asn4, not (context.ibgp or context.confederation)
    width = 4 if asn4 else 2
    v4_addpath = IPV4_UNICAST in context.addpath_rx

    withdrawn = draw(prefix_items(IPV4_UNICAST, v4_addpath, default_route=default_route))
    nlri = draw(prefix_items(IPV4_UNICAST, v4_addpath, default_route=default_route))
    mp: dict[str, Any] = {}
    if mp_reach_families and draw(st.booleans()):
        mp["mp_reach_nlri"] = draw(_mp_reach_json(context, mp_reach_families))
    if mp_unreach_families and (both_mp or not mp) and draw(st.booleans()):
        family = draw(st.sampled_from(mp_unreach_families))
        items = prefix_items(family, family in context.addpath_rx, default_route=default_route)
        mp["mp_unreach_nlri"] = {"family": family.name, "withdrawn": draw(items)}
    announces = bool(nlri) or bool(mp.get("mp_reach_nlri", {}).get("nlri"))

    values: dict[int, Any] = {}

    def maybe(code: int, strategy: st.SearchStrategy[Any], required: bool = False) -> None:
        if required or draw(st.booleans()):
            values[code] = draw(strategy)

    maybe(AttrType.ORIGIN, st.sampled_from([0, 1, 2]), announces)
    first = context.peer_asn if external else None
    path = as_paths(asn4, confed=not external, first_as=first, min_segments=int(first is not None))
    maybe(AttrType.AS_PATH, path, announces or first is not None)
    maybe(AttrType.NEXT_HOP, unicast_next_hops(), bool(nlri))
    maybe(AttrType.MULTI_EXIT_DISC, st.integers(0, U32))
    if not external:
        maybe(AttrType.LOCAL_PREF, st.integers(0, U32))
        maybe(AttrType.ORIGINATOR_ID, ipv4_addresses())
        maybe(AttrType.CLUSTER_LIST, _nonempty(ipv4_addresses(), 4))
    maybe(AttrType.ATOMIC_AGGREGATE, st.just(True))
    if aggregator_with_asn4 or not asn4:
        maybe(AttrType.AGGREGATOR, st.tuples(as_numbers(asn4), ipv4_addresses()))
    community = st.sampled_from(sorted(communities.WELL_KNOWN)) | st.integers(0, U32)
    if max_communities:
        maybe(AttrType.COMMUNITIES, _nonempty(community, max_communities))
    ext = ext_communities if ext_communities is not None else extended_communities()
    maybe(AttrType.EXTENDED_COMMUNITIES, _nonempty(ext, 4))
    if not asn4:  # RFC 6793 §4.1: only a 2-octet speaker sends them
        four_path = as_paths(True, min_segments=1, max_segments=max_as4_path_segments)
        maybe(AttrType.AS4_PATH, four_path)
        maybe(AttrType.AS4_AGGREGATOR, st.tuples(as_numbers(True), ipv4_addresses()))
    large = st.tuples(st.integers(0, U32), st.integers(0, U32), st.integers(0, U32))
    if max_large_communities:
        maybe(AttrType.LARGE_COMMUNITIES, _nonempty(large, max_large_communities))
    maybe(AttrType.OTC, st.integers(0, U32))

    # Attribute order on the wire: any, MP_REACH/MP_UNREACH anywhere among the others.
    unknowns = draw(
        st.lists(unknown_attributes(unknown_exclude), max_size=2, unique_by=lambda u: u[0])
    )
    if not unknown:
        unknowns = []
    known_order = draw(st.permutations(list(values)))
    slots: list[Any] = [("known", code) for code in known_order]
    slots += [("unknown", u) for u in unknowns] + [("mp", name) for name in mp]
    slots = draw(st.permutations(slots))

    attributes: dict[str, Any] = {}
    flags: dict[str, int] = {}
    ordered: dict[int, Any] = {}
    for kind, item in slots:
        if kind == "mp":
            attributes[item] = mp[item]
            if odd_flags and _mp_value_len(item, mp[item]) <= 255 and draw(st.booleans()):
                flags[item] = OPTIONAL | 0x10  # Extended Length on a short attribute
        elif kind == "unknown":
            code, unknown_flags, value = item
            attributes[f"attr_{code}"] = {"flags": unknown_flags, "value": value.hex()}
        else:
            spec = SPECS[item]
            ordered[item] = values[item]
            attributes[spec.name] = spec.to_json(values[item])
            odd = _odd_flags(draw, spec.flags, len(spec.encode(values[item], width)))
            if odd_flags and odd is not None:
                flags[spec.name] = odd

    obj: dict[str, Any] = {"type": "UPDATE", "withdrawn": withdrawn, "attributes": attributes}
    if flags:
        obj["attribute_flags"] = flags
    obj["nlri"] = nlri
    update = attrs.evolve(Update.from_json(obj, context), addpath=context.addpath_rx)
    eor = update.end_of_rib()
    if eor is not None:
        obj["end_of_rib"] = eor.name
    return UpdateCase(
        ctx=context,
        obj=obj,
        update=update,
        values=ordered,
        canonical_flags=not flags and not unknowns,
    )


def _odd_flags(draw: st.DrawFn, base: int, length: int) -> int | None:
    """Flags other than the canonical ones that a valid attribute may carry: Extended Length
    on a short value, Partial on an optional transitive one (RFC 4271 §4.3)."""
    extended = length <= 255 and draw(st.integers(0, 3)) == 0
    partial = base == OPTIONAL | TRANSITIVE and draw(st.integers(0, 3)) == 0
    if not (extended or partial):
        return None
    return base | (0x10 if extended or length > 255 else 0) | (PARTIAL if partial else 0)


@st.composite
def _mp_reach_json(
    draw: st.DrawFn, ctx: CodecContext, families: tuple[Family, ...]
) -> dict[str, Any]:
    """MP_REACH_NLRI (RFC 4760 §3): IPv6 with a global (+ link-local) next hop (RFC 2545 §3),
    IPv4 with an IPv4 next hop or an IPv6 one of 16 or 32 octets (RFC 8950 §3)."""
    family = draw(st.sampled_from(families))
    if family == IPV4_UNICAST and draw(st.booleans()):
        hops = [draw(ipv4_addresses())]
    else:
        hops = draw(st.lists(ipv6_addresses(), min_size=1, max_size=2))
    items = prefix_items(family, family in ctx.addpath_rx, default_route=True)
    return {"family": family.name, "next_hop": hops, "nlri": draw(items)}


def _mp_value_len(name: str, value: dict[str, Any]) -> int:
    family = Family.from_name(value["family"])
    if name == "mp_unreach_nlri":
        return 3 + sum(prefix_wire_len(item, family) for item in value["withdrawn"])
    hops = 4 if ":" not in value["next_hop"][0] else 16 * len(value["next_hop"])
    return 5 + hops + sum(prefix_wire_len(item, family) for item in value["nlri"])
