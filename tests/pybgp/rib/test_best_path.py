"""The decision process (RFC 4271 §9.1.2.2), step by step: in each test two routes differ in
the step under test, and every later step would pick the other one."""

from __future__ import annotations

import pytest

from pybgp.rib.best_path import DEFAULT, BestPathConfig, explain, select, select_stepwise
from pybgp.rib.peer import local_origin
from pybgp.rib.route import Route
from pybgp.wire.constants import Origin, SegmentType
from tests.pybgp.rib.builders import peer, route

SEQ, SET, CONFED = SegmentType.AS_SEQUENCE, SegmentType.AS_SET, SegmentType.AS_CONFED_SEQUENCE


def winner(routes: list[Route], config: BestPathConfig = DEFAULT) -> Route | None:
    best = select(routes, config)[0]
    assert select(routes[::-1], config)[0] is best  # not the order given
    assert select_stepwise(routes, config)[0] is best  # the fast path agrees with the steps
    return best


# The later tie-breaks (router ID, peer address) prefer peer 1, so peer 2 wins only by the
# step under test.
P1, P2 = peer(1), peer(2)
I1, I2 = peer(1, ibgp=True), peer(2, ibgp=True)


def test_highest_local_pref() -> None:
    low, high = route(I1, local_pref=100), route(I2, local_pref=200)
    assert winner([low, high]) is high


def test_missing_local_pref_is_the_default() -> None:
    low, missing = route(I1, local_pref=90), route(I2)
    assert winner([low, missing]) is missing  # 100 > 90
    assert winner([low, missing], BestPathConfig(default_local_pref=80)) is low


def test_ebgp_route_without_local_pref_gets_the_configured_default() -> None:
    internal, external = route(I1, local_pref=150), route(P2)
    assert winner([internal, external]) is internal
    assert winner([internal, external], BestPathConfig(default_local_pref=200)) is external


def test_shortest_as_path() -> None:
    long, short = route(P1, path=(65001, 65001)), route(P2, path=(65002,))
    assert winner([long, short]) is short


def test_as_set_counts_one() -> None:
    seq = route(P1, path=(65001, 65001, 65001))
    with_set = route(P2, segments=((SEQ, (65002,)), (SET, (1, 2, 3, 4))))
    assert winner([seq, with_set]) is with_set  # 2 < 3


def test_confederation_segments_count_zero() -> None:
    plain = route(P1, path=(65001, 65001))
    confed = route(P2, segments=((CONFED, (64512, 64513, 64514)), (SEQ, (65002,))))
    assert winner([plain, confed]) is confed  # 1 < 2


@pytest.mark.parametrize(("worse", "better"), [(Origin.EGP, Origin.IGP), (2, Origin.EGP)])
def test_lowest_origin(worse: int, better: int) -> None:
    a, b = route(P1, origin=worse), route(P2, origin=better)
    assert winner([a, b]) is b


def test_med_compared_within_the_same_neighbour_as() -> None:
    high, low = route(P1, path=(65009,), med=20), route(P2, path=(65009,), med=10)
    assert winner([high, low]) is low


def test_med_not_compared_across_neighbour_ases() -> None:
    high, low = route(P1, path=(65008,), med=20), route(P2, path=(65009,), med=10)
    assert winner([high, low]) is high  # decided by router ID
    assert winner([high, low], BestPathConfig(always_compare_med=True)) is low


def test_missing_med_is_zero_or_the_worst() -> None:
    some, missing = route(P1, path=(65009,), med=5), route(P2, path=(65009,))
    assert winner([some, missing]) is missing
    assert winner([some, missing], BestPathConfig(med_missing_as_worst=True)) is some


def test_med_is_not_transitive_and_order_does_not_matter() -> None:
    # a and c share AS 65009 (c has the lower MED); b is from AS 65008.
    a = route(peer(1), path=(65009,), med=50)
    b = route(peer(2), path=(65008,), med=0)
    c = route(peer(3), path=(65009,), med=10)
    # c puts a out; between b and c the router ID picks b.
    for order in ([a, b, c], [c, b, a], [b, a, c], [a, c, b]):
        assert winner(order) is b


def test_ebgp_over_ibgp() -> None:
    internal, external = route(I1), route(P2)
    assert winner([internal, external]) is external


def test_confederation_peer_ranks_with_ibgp() -> None:
    confed = route(peer(2, confederation=True))
    internal = route(I1)
    assert winner([confed, internal]) is internal  # a tie at step 5: router ID decides


def test_local_routes_rank_as_ebgp() -> None:
    mine = route(local_origin(65000, "10.255.0.200"), path=())
    internal = route(I1, path=())
    assert winner([internal, mine]) is mine


def test_lowest_igp_cost() -> None:
    near, far = route(P2, next_hop="192.0.2.2"), route(P1, next_hop="192.0.2.1")
    costs = {"192.0.2.1": 20, "192.0.2.2": 10}
    assert winner([near, far], BestPathConfig(igp_cost=costs.__getitem__)) is near
    assert winner([near, far]) is far  # no hook: all costs 0, router ID decides


def test_lowest_router_id_compared_as_numbers() -> None:
    nine = route(peer(1, router_id="10.255.0.9"))
    ten = route(peer(2, router_id="10.255.0.10"))
    assert winner([ten, nine]) is nine


def test_originator_id_stands_in_for_router_id() -> None:
    plain = route(I1)  # router ID 10.255.0.1
    reflected = route(I2, originator="1.1.1.1", clusters=("10.9.9.9",))
    assert winner([plain, reflected]) is reflected


def test_shortest_cluster_list() -> None:
    two = route(I1, originator="1.1.1.1", clusters=("10.9.9.9", "10.9.9.8"))
    one = route(I2, originator="1.1.1.1", clusters=("10.9.9.7",))
    assert winner([two, one]) is one


def test_lowest_peer_address_compared_as_numbers() -> None:
    nine = route(peer(9, router_id="10.255.0.1"))
    ten = route(peer(10, router_id="10.255.0.1"))
    assert winner([ten, nine]) is nine


def test_two_paths_from_one_addpath_peer_never_tie() -> None:
    a, b = route(P1, next_hop="192.0.2.9"), route(P1, next_hop="192.0.2.10")
    assert winner([a, b]) is a  # lowest next hop: 9 < 10


def test_unreachable_next_hop_is_not_eligible() -> None:
    good, dark = route(P2, next_hop="192.0.2.2"), route(P1, next_hop="192.0.2.1")
    config = BestPathConfig(next_hop_reachable=lambda nh: nh != "192.0.2.1")
    assert winner([good, dark], config) is good
    assert select([dark], config) == (None, ())
    assert select([dark, dark], config) == (None, ())


def test_no_candidates() -> None:
    assert select([]) == (None, ())


# -- ECMP --------------------------------------------------------------------------------
def same_as(n: int, **kwargs: object) -> Route:
    return route(peer(n, asn=65100), path=(65100,), **kwargs)  # type: ignore[arg-type]


def test_multipath_up_to_n_equal_paths() -> None:
    routes = [same_as(n) for n in (3, 1, 2)]
    best, paths = select(routes, BestPathConfig(multipath=2))
    assert best is routes[1]
    assert paths == (routes[1], routes[2])
    _, paths = select(routes, BestPathConfig(multipath=8))
    assert paths == (routes[1], routes[2], routes[0])
    assert select(routes)[1] == ()  # multipath 1: no ECMP


def test_multipath_needs_equality_through_igp_cost() -> None:
    a, b = same_as(1), same_as(2, origin=Origin.EGP)
    assert select([a, b], BestPathConfig(multipath=4)) == (a, ())
    costs = {"10.0.0.1": 5, "10.0.0.2": 6}
    config = BestPathConfig(multipath=4, igp_cost=costs.__getitem__)
    assert select([a, same_as(2)], config) == (a, ())


def test_ebgp_multipath_needs_the_same_neighbour_as_unless_relaxed() -> None:
    a, b = route(peer(1), path=(65001,)), route(peer(2), path=(65002,))
    assert select([a, b], BestPathConfig(multipath=4)) == (a, ())
    assert select([a, b], BestPathConfig(multipath=4, multipath_relax=True)) == (a, (a, b))


def test_ibgp_multipath() -> None:
    a, b = route(I1, path=(65001,)), route(I2, path=(65002,))
    assert select([a, b], BestPathConfig(multipath=2)) == (a, (a, b))


def test_multipath_skips_a_next_hop_already_used() -> None:
    a, b = same_as(1, next_hop="192.0.2.1"), same_as(2, next_hop="192.0.2.1")
    assert select([a, b], BestPathConfig(multipath=4)) == (a, ())


# -- explain ------------------------------------------------------------------------------
def test_explain_names_the_deciding_step() -> None:
    low, high = route(I1, local_pref=100), route(I2, local_pref=200)
    lines = explain([low, high])
    assert lines[0] == "2 candidate path(s)"
    assert lines[1] == "local preference: kept 10.0.0.2 (200); out 10.0.0.1 (100)"
    assert lines[-1] == "best: from 10.0.0.2 via 10.0.0.2, decided by local preference"


def test_explain_walks_through_ties() -> None:
    a, b = route(P1, path=(65009,), med=20), route(P2, path=(65009,), med=10)
    lines = explain([a, b])
    assert any(line.startswith("MED: kept 10.0.0.2 (10 from AS 65009)") for line in lines)
    assert lines[-1].endswith("decided by MED")
    assert explain([])[-1] == "no eligible path"
    config = BestPathConfig(next_hop_reachable=lambda nh: False)
    assert explain([a], config)[1].startswith("next hop reachable: kept none; out 10.0.0.1")
