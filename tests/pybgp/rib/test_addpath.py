"""Ranking of a prefix's paths (best-N) and path ids for ADD-PATH send (RFC 7911)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pybgp.rib.addpath import assign_ids, ranked
from pybgp.rib.adj_in import AdjRibIn
from pybgp.rib.best_path import DEFAULT, BestPathConfig, select
from pybgp.rib.loc_rib import LocRib
from pybgp.rib.route import Route
from pybgp.wire.constants import IPV4_UNICAST
from tests.pybgp.rib.builders import attributes, peer, route, v4


def named(*routes: Route) -> list[tuple[tuple[str, int], Route]]:
    return [((r.peer.address, 0), r) for r in routes]


def test_ranked_is_best_then_best_of_the_rest() -> None:
    a, b, c = (
        route(peer(3), path=(65003,)),
        route(peer(1), path=(65001, 65001)),
        route(peer(2), path=(65002,), med=10),
    )
    assert [r for _, r in ranked(named(a, b, c), DEFAULT)] == [c, a, b]  # router ID, then length


def test_med_is_compared_within_one_neighbour_as_at_every_pick() -> None:
    # x beats y on MED (same AS 65001); y beats z on router ID; z beats x on router ID.
    x = route(peer(5), path=(65001,), med=1)
    y = route(peer(2), path=(65001,), med=9)
    z = route(peer(3), path=(65003,))
    order = [r for _, r in ranked(named(y, z, x), DEFAULT)]
    assert order[0] is select([x, y, z])[0]
    assert order[1] is select([r for r in (x, y, z) if r is not order[0]])[0]
    assert sorted(map(id, order)) == sorted(map(id, (x, y, z)))


def test_unreachable_next_hops_are_not_ranked() -> None:
    config = BestPathConfig(next_hop_reachable=lambda hop: hop != "10.0.0.2")
    paths = named(route(peer(1)), route(peer(2)), route(peer(3)))
    assert [key for key, _ in ranked(paths, config)] == [("10.0.0.1", 0), ("10.0.0.3", 0)]


@given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3), st.integers(0, 2)), max_size=6))
def test_the_first_ranked_path_is_the_loc_rib_best(specs: list[tuple[int, int, int]]) -> None:
    loc, ribs = LocRib(IPV4_UNICAST), []
    for n, (source, length, med) in enumerate(specs, 1):
        rib = AdjRibIn(peer(n, asn=65000 + source))
        attrs = attributes(path=(65000 + source,) * (length + 1), med=med)
        for touched in rib.announce(IPV4_UNICAST, v4("10.0.0.0/24"), attrs, f"192.0.2.{n}"):
            ribs.append(rib)
            loc.apply(touched, ribs)
    order = [r for _, r in loc.ranked(v4("10.0.0.0/24")[0], ribs)]
    assert len(order) == len(specs)
    assert (order[0] if order else None) is loc.best(v4("10.0.0.0/24")[0])


def test_ids_follow_paths_and_fresh_ones_skip_ids_just_freed() -> None:
    a, b, c, d = ("a", 0), ("b", 0), ("c", 0), ("d", 0)
    first = assign_ids({}, [a, b])
    assert first == {a: 1, b: 2}
    # a goes, c comes: b keeps 2, c does not take 1 (freed by this change).
    second = assign_ids(first, [b, c])
    assert second == {b: 2, c: 3}
    # Later, 1 is free again.
    assert assign_ids(second, [d, b, c]) == {b: 2, c: 3, d: 1}
