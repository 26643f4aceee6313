"""Properties of the decision process against a reference written from RFC 4271 §9.1.2.2
in this file: the best path does not depend on the order of the candidates, and equals the
reference's pick; the incremental Loc-RIB agrees with deciding from scratch."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from pybgp.rib.adj_in import AdjRibIn
from pybgp.rib.best_path import BestPathConfig, select, select_stepwise
from pybgp.rib.loc_rib import LocRib, candidates
from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route
from pybgp.wire.constants import IPV4_UNICAST
from tests.pybgp.rib.builders import attributes, peer, v4

ALWAYS = BestPathConfig(always_compare_med=True)
MISSING_WORST = BestPathConfig(med_missing_as_worst=True, default_local_pref=150)


@st.composite
def peers(draw: st.DrawFn, n: int) -> PeerInfo:
    """Peer n, internal or external, its router ID from a small set (so IDs tie)."""
    return peer(n, ibgp=draw(st.booleans()), router_id=f"10.255.0.{draw(st.integers(1, 3))}")


@st.composite
def candidate(draw: st.DrawFn, source: PeerInfo) -> Route:
    ibgp = source.ibgp
    reflected = ibgp and draw(st.booleans())
    attrs = attributes(
        path=tuple(draw(st.lists(st.sampled_from([65001, 65002, 65003]), max_size=3))),
        origin=draw(st.integers(0, 2)),
        med=draw(st.sampled_from([None, 0, 10, 20])),
        local_pref=draw(st.sampled_from([None, 90, 100, 200])),
        originator=draw(st.sampled_from(["1.1.1.1", "10.255.0.2"])) if reflected else None,
        clusters=tuple(draw(st.lists(st.just("10.9.9.9"), max_size=2))) if reflected else (),
    )
    return Route(attrs, source.address, source)


@st.composite
def candidate_sets(draw: st.DrawFn) -> list[Route]:
    numbers = draw(st.lists(st.integers(1, 40), min_size=1, max_size=8, unique=True))
    return [draw(candidate(draw(peers(n)))) for n in numbers]


def path_length(route: Route) -> int:
    """§9.1.2.2 a: an AS_SET counts 1, an AS_SEQUENCE its AS numbers, confederation 0."""
    return sum({2: len(asns), 1: 1}.get(kind, 0) for kind, asns in route.attributes.as_path)


def reference_key(route: Route) -> tuple[object, ...]:
    """RFC 4271 §9.1.1 and §9.1.2.2 a-g with RFC 4456 §9, MED compared between all routes."""
    a = route.attributes
    router_id = a.originator_id or route.peer.router_id
    return (
        -(a.local_pref if a.local_pref is not None else 100),
        path_length(route),
        a.origin,
        a.med if a.med is not None else 0,
        1 if route.peer.ibgp else 0,
        int(ipaddress.ip_address(router_id)),
        len(a.cluster_list),
        int(ipaddress.ip_address(route.peer.address)),
    )


def reference_per_as_med(routes: list[Route]) -> Route:
    """The same, with §9.1.2.2 c as written: MED only within one neighbour AS."""
    top = min(reference_key(r)[:3] for r in routes)
    tier = [r for r in routes if reference_key(r)[:3] == top]

    def neighbour(r: Route) -> int | None:
        path = r.attributes.as_path
        return path[0][1][0] if path and path[0][0] == 2 else None

    def med(r: Route) -> int:
        return reference_key(r)[3]  # type: ignore[return-value]

    tier = [r for r in tier if all(med(r) <= med(o) for o in tier if neighbour(o) == neighbour(r))]
    return sorted(tier, key=lambda r: reference_key(r)[4:])[0]


@given(candidate_sets(), st.randoms())
def test_best_does_not_depend_on_order(routes: list[Route], rnd: object) -> None:
    shuffled = list(routes)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    for config in (BestPathConfig(), ALWAYS):
        assert select(shuffled, config)[0] is select(routes, config)[0]


@given(candidate_sets())
def test_best_equals_the_reference_sort(routes: list[Route]) -> None:
    assert select(routes, ALWAYS)[0] is sorted(routes, key=reference_key)[0]


@given(candidate_sets())
def test_best_equals_the_reference_with_med_per_neighbour_as(routes: list[Route]) -> None:
    assert select(routes)[0] is reference_per_as_med(routes)


@settings(max_examples=500)
@given(candidate_sets(), st.sampled_from([BestPathConfig(), ALWAYS, MISSING_WORST]))
def test_fast_path_equals_the_step_functions(routes: list[Route], config: object) -> None:
    assert select(routes, config)[0] is select_stepwise(routes, config)[0]  # type: ignore[arg-type]


# -- the incremental Loc-RIB --------------------------------------------------------------
PREFIXES = v4("10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16")


# (from, prefix indices, route or withdrawal): several prefixes per UPDATE, so they may have
# different best paths before it (the Loc-RIB decides per prefix) or one (it decides once).
Operation = tuple[AdjRibIn, list[int], Route | None]


@st.composite
def operations(draw: st.DrawFn) -> list[Operation]:
    ribs = [AdjRibIn(draw(peers(n))) for n in range(1, 6)]
    ops: list[Operation] = []
    for _ in range(draw(st.integers(1, 25))):
        rib = draw(st.sampled_from(ribs))
        indices = sorted(draw(st.sets(st.integers(0, len(PREFIXES) - 1), min_size=1)))
        ops.append((rib, indices, draw(st.none() | candidate(rib.peer))))
    return ops


@settings(max_examples=300)
@given(operations(), st.sampled_from([BestPathConfig(), ALWAYS]))
def test_incremental_loc_rib_agrees_with_deciding_from_scratch(
    ops: list[Operation], config: BestPathConfig
) -> None:
    sources = list({id(rib): rib for rib, _, _ in ops}.values())
    loc = LocRib(IPV4_UNICAST, config)
    told: dict[bytes, Route | None] = {}  # the best paths as the reported changes tell them
    for rib, indices, route in ops:
        keys = [PREFIXES[index] for index in indices]
        if route is None:
            touched = rib.withdraw(IPV4_UNICAST, keys)
        else:
            touched = rib.announce(IPV4_UNICAST, keys, route.attributes, route.next_hop)
        for change in touched:
            for prefix, old, new in loc.apply(change, sources):
                assert _same(old, told.get(prefix))
                told[prefix] = new
        for key in PREFIXES:
            expected = select(candidates(sources, IPV4_UNICAST, key), config)[0]
            assert _same(loc.best(key), expected)
            assert _same(told.get(key), expected)  # what went out to the Adj-RIB-Out


def _same(a: Route | None, b: Route | None) -> bool:
    return (a is None and b is None) or (a is not None and a.same(b))
