"""Hypothesis strategies for the policy property test: definitions over small pools of
set members (so that sets and routes meet), and batches of routes that share attribute
sets and sit at and around the prefix-set entries' bounds."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import strategies as st

from pybgp.policy import (
    Actions,
    AsPathLength,
    AsPathSet,
    CommunityAction,
    CommunitySet,
    Conditions,
    Definitions,
    ExtCommunitySet,
    LargeCommunityAction,
    LargeCommunitySet,
    MatchSet,
    MedAction,
    NeighborSet,
    NextHopMatch,
    Policy,
    PrefixSet,
    Prepend,
    RouteContext,
    Statement,
)
from pybgp.wire.communities import extended_community_from_str
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, AttrType, SegmentType
from pybgp.wire.nlri import nlri_from_str
from pybgp.wire.pathattrs import PathAttributes

from .helpers import LOCAL_AS, peer

OPTIONS = ("any", "all", "invert")
AS_PATTERNS = [
    "^65001_",
    "_65002$",
    "_65003_",
    "^$",
    "65004",
    "^6500[12]_",
    "_65005}",
    "_4200000000_",
]
COMMUNITY_MEMBERS = [
    "65000:1",
    "65000:2",
    "no-export",
    "^65000:",
    "blackhole",
    ":3$",
    "NO_ADVERTISE",
]
LARGE_MEMBERS = ["65000:1:1", "^65000:2:", "1:2:3"]
EXT_MEMBERS = ["rt:65000:1", "^soo:", "RT:65000:2"]
ADDRESS_MEMBERS = ["192.0.2.1", "192.0.2.0/30", "198.51.100.0/24", "2001:db8::1", "2001:db8::/127"]
COMMUNITIES = [65000 << 16 | 1, 65000 << 16 | 2, 0xFFFFFF01, 0xFFFFFF02, 0xFFFF029A, 1 << 16 | 3]
LARGE = [(65000, 1, 1), (65000, 2, 5), (1, 2, 3)]
EXT = [extended_community_from_str(t) for t in ("rt:65000:1", "soo:192.0.2.1:7", "rt:65000:2")]
NEXT_HOPS = ["192.0.2.1", "192.0.2.9", "198.51.100.1", "2001:db8::1"]
PEERS = [
    peer("192.0.2.1"),
    peer("192.0.2.2", ibgp=True),
    peer("198.51.100.7", confederation=True),
    peer("0.0.0.0", asn=LOCAL_AS, local=True),
    peer("2001:db8::1", asn=65009),
]
ASNS = [65001, 65002, 65003, 65004, 65005, 4200000000]


@st.composite
def prefix_text(draw: st.DrawFn, low: int, high: int) -> str:
    """A prefix near 10.0.0.0/8 or 2001:db8::/32 (4 random bits after the base): overlaps."""
    v6 = draw(st.integers(0, 3)) == 0
    bits, base_len = (128, 32) if v6 else (32, 8)
    base = 0x20010DB8 << 96 if v6 else 10 << 24
    if not v6 and draw(st.integers(0, 9)) == 0:
        base = 192 << 24 | 168 << 16
    length = base_len + draw(st.integers(low, high))
    value = base | draw(st.integers(0, 15)) << (bits - base_len - 4)
    value &= ((1 << length) - 1) << (bits - length)
    return str(ipaddress.ip_network((value, length)))


@st.composite
def prefix_entry(draw: st.DrawFn) -> str:
    text = draw(prefix_text(0, 12))
    plen, bits = int(text.split("/")[1]), 128 if ":" in text else 32
    ge = draw(st.integers(plen, min(plen + 8, bits)))
    le = draw(st.integers(ge, min(ge + 8, bits)))
    form = draw(st.sampled_from(["exact", "le", "ge", "both", "range"]))
    return {
        "exact": text,
        "le": f"{text} le {le}",
        "ge": f"{text} ge {ge}",
        "both": f"{text} ge {ge} le {le}",
        "range": f"{text} {ge}..{le}",
    }[form]


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.none(), strategy)


def rarely(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A condition present one time in five, so that statements often match."""
    return st.one_of(st.none(), st.none(), st.none(), st.none(), strategy)


def match_set(
    prefix: str, count: int, options: tuple[str, ...] = OPTIONS
) -> st.SearchStrategy[MatchSet]:
    return st.builds(
        MatchSet,
        set_name=st.sampled_from([f"{prefix}{i}" for i in range(count)]),
        option=st.sampled_from(options),
    )


conditions = st.builds(
    Conditions,
    prefix_set=maybe(match_set("P", 3, ("any", "invert"))),
    neighbor_set=rarely(match_set("N", 2, ("any", "invert"))),
    as_path_set=rarely(match_set("A", 2)),
    as_path_length=rarely(
        st.builds(
            AsPathLength, operator=st.sampled_from(["eq", "ge", "le"]), value=st.integers(0, 4)
        )
    ),
    community_set=rarely(match_set("C", 2)),
    ext_community_set=rarely(match_set("E", 1)),
    large_community_set=rarely(match_set("L", 2)),
    next_hop=rarely(
        st.builds(
            NextHopMatch,
            members=st.lists(
                st.sampled_from(["192.0.2.1", "192.0.2.0/24", "198.51.100.1", "2001:db8::1"]),
                min_size=1,
                max_size=2,
            ).map(tuple),
            invert=st.booleans(),
        )
    ),
    origin=rarely(st.integers(0, 2)),
    route_type=rarely(st.sampled_from(["internal", "external", "local"])),
)
actions = st.builds(
    Actions,
    disposition=st.sampled_from(["next", "next", "accept", "reject"]),
    local_pref=maybe(st.integers(0, 300)),
    med=maybe(
        st.builds(
            MedAction,
            operation=st.sampled_from(["set", "add", "subtract"]),
            value=st.sampled_from([0, 1, 5, 2**32 - 1]),
        )
    ),
    next_hop=maybe(st.sampled_from(["self", "198.51.100.1"])),
    communities=maybe(
        st.builds(
            CommunityAction,
            add=st.lists(st.sampled_from(COMMUNITIES), max_size=3).map(tuple),
            remove=maybe(st.sampled_from(["C0", "C1"])),
            replace=maybe(st.lists(st.sampled_from(COMMUNITIES), max_size=2).map(tuple)),
        )
    ),
    large_communities=maybe(
        st.builds(
            LargeCommunityAction,
            add=st.lists(st.sampled_from(LARGE), max_size=2).map(tuple),
            remove=maybe(st.sampled_from(["L0", "L1"])),
            replace=maybe(st.lists(st.sampled_from(LARGE), max_size=2).map(tuple)),
        )
    ),
    as_path_prepend=maybe(
        st.builds(
            Prepend, asn=st.sampled_from(["self", "last-as", 65009]), repeat=st.integers(1, 3)
        )
    ),
)


@st.composite
def policy(draw: st.DrawFn, name: str) -> Policy:
    count = draw(st.integers(0, 4))
    statements = tuple(
        Statement(name=f"s{i}", conditions=draw(conditions), actions=draw(actions))
        for i in range(count)
    )
    return Policy(
        name=name,
        statements=statements,
        default=draw(st.sampled_from([None, None, "accept", "reject"])),
    )


def members(pool: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(pool), max_size=3).map(tuple)


@st.composite
def definitions(draw: st.DrawFn) -> Definitions:
    return Definitions(
        prefix_sets=tuple(
            PrefixSet.parse(f"P{i}", draw(st.lists(prefix_entry(), max_size=6))) for i in range(3)
        ),
        neighbor_sets=tuple(
            NeighborSet(name=f"N{i}", members=draw(members(ADDRESS_MEMBERS))) for i in range(2)
        ),
        as_path_sets=tuple(
            AsPathSet(name=f"A{i}", members=draw(members(AS_PATTERNS))) for i in range(2)
        ),
        community_sets=tuple(
            CommunitySet(name=f"C{i}", members=draw(members(COMMUNITY_MEMBERS))) for i in range(2)
        ),
        ext_community_sets=(ExtCommunitySet(name="E0", members=draw(members(EXT_MEMBERS))),),
        large_community_sets=tuple(
            LargeCommunitySet(name=f"L{i}", members=draw(members(LARGE_MEMBERS))) for i in range(2)
        ),
        policies=tuple(draw(policy(f"p{i}")) for i in range(3)),
    )


@st.composite
def path_attributes(draw: st.DrawFn) -> PathAttributes:
    segments = tuple(
        (
            draw(
                st.sampled_from(
                    [SegmentType.AS_SEQUENCE, SegmentType.AS_SEQUENCE, SegmentType.AS_SET]
                )
            ),
            tuple(draw(st.lists(st.sampled_from(ASNS), min_size=1, max_size=3))),
        )
        for _ in range(draw(st.integers(0, 2)))
    )
    values: dict[int, Any] = {AttrType.ORIGIN: draw(st.integers(0, 2)), AttrType.AS_PATH: segments}
    for code, strategy in [
        (AttrType.MULTI_EXIT_DISC, st.sampled_from([0, 3, 2**32 - 2])),
        (AttrType.LOCAL_PREF, st.integers(0, 200)),
        (
            AttrType.COMMUNITIES,
            st.lists(st.sampled_from(COMMUNITIES), min_size=1, max_size=3, unique=True).map(tuple),
        ),
        (
            AttrType.EXTENDED_COMMUNITIES,
            st.lists(st.sampled_from(EXT), min_size=1, max_size=2, unique=True).map(tuple),
        ),
        (
            AttrType.LARGE_COMMUNITIES,
            st.lists(st.sampled_from(LARGE), min_size=1, max_size=2, unique=True).map(tuple),
        ),
    ]:
        value = draw(maybe(strategy))
        if value is not None:
            values[code] = value
    return PathAttributes.build(values)


@st.composite
def near_entry(draw: st.DrawFn, d: Definitions) -> str:
    """A prefix at or just around an entry's ge..le bounds, inside or beside its network."""
    entries = [e for ps in d.prefix_sets for e in ps.entries]
    if not entries:
        return draw(prefix_text(0, 24))
    entry = draw(st.sampled_from(entries))
    net = entry.network
    bits = net.max_prefixlen
    length = draw(st.sampled_from([entry.ge - 1, entry.ge, entry.le, entry.le + 1]))
    length = max(0, min(length, bits))
    value = int(net.network_address) ^ draw(st.sampled_from([0, 0, 0, 1 << (bits - net.prefixlen)]))
    value |= draw(st.integers(0, 3)) << max(bits - length, 0) & ((1 << bits) - 1)
    value &= ((1 << length) - 1) << (bits - length) if length else 0
    return str(ipaddress.ip_network((value, length)))


@st.composite
def routes(draw: st.DrawFn, d: Definitions) -> list[RouteContext]:
    shared = draw(st.lists(path_attributes(), min_size=1, max_size=3))  # routes share attributes
    out = []
    for _ in range(draw(st.integers(1, 8))):
        prefix = draw(st.one_of(prefix_text(0, 24), near_entry(d)))
        family = IPV6_UNICAST if ":" in prefix else IPV4_UNICAST
        out.append(
            RouteContext(
                nlri_from_str(prefix, family),
                family,
                draw(st.sampled_from(shared)),
                draw(st.sampled_from(NEXT_HOPS)),
                draw(st.sampled_from(PEERS)),
                LOCAL_AS,
                draw(st.sampled_from([None, "203.0.113.1"])),
                draw(st.one_of(st.none(), st.sampled_from(PEERS))),
            )
        )
    return out


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Definitions, list[RouteContext]]:
    d = draw(definitions())
    return d, draw(routes(d))
