"""Loc-RIB: best-path changes as returned values, fall-back on withdrawal, ECMP sets, and the
incremental decisions that MED (compared within one neighbour AS only) must not fool."""

from __future__ import annotations

from pybgp.rib.adj_in import AdjRibIn
from pybgp.rib.best_path import DEFAULT, BestPathConfig
from pybgp.rib.loc_rib import BestChange, LocRib
from pybgp.rib.peer import PeerInfo
from pybgp.wire.constants import IPV4_UNICAST
from pybgp.wire.pathattrs import PathAttributes
from tests.pybgp.rib.builders import attributes, peer, prefix

P = prefix("10.1.0.0/16")


class World:
    """Peers' Adj-RIBs-In feeding one Loc-RIB, the way the speaker wires them."""

    def __init__(self, config: BestPathConfig = DEFAULT) -> None:
        self.ribs: dict[int, AdjRibIn] = {}
        self.loc = LocRib(IPV4_UNICAST, config)

    def rib(self, n: int, source: PeerInfo | None = None) -> AdjRibIn:
        if n not in self.ribs:
            self.ribs[n] = AdjRibIn(source or peer(n))
        return self.ribs[n]

    def announce(self, n: int, attrs: PathAttributes, key: bytes = P) -> list[BestChange]:
        rib = self.rib(n)
        changes: list[BestChange] = []
        for touched in rib.announce(IPV4_UNICAST, [key], attrs, rib.peer.address):
            changes += self.loc.apply(touched, list(self.ribs.values()))
        return changes

    def withdraw(self, n: int, key: bytes = P) -> list[BestChange]:
        changes: list[BestChange] = []
        for touched in self.ribs[n].withdraw(IPV4_UNICAST, [key]):
            changes += self.loc.apply(touched, list(self.ribs.values()))
        return changes

    def best_from(self, key: bytes = P) -> str | None:
        best = self.loc.best(key)
        return None if best is None else best.peer.address


def test_changes_are_returned_as_prefix_old_new() -> None:
    world = World()
    (first,) = world.announce(2, attributes(path=(65002, 1)))
    assert first == (P, None, world.loc.best(P))
    old = world.loc.best(P)
    (second,) = world.announce(1, attributes(path=(65001,)))
    assert second == (P, old, world.loc.best(P)) and world.best_from() == "10.0.0.1"
    assert world.announce(3, attributes(path=(65003, 1, 2))) == []  # worse: no change


def test_same_path_again_is_no_change() -> None:
    world = World()
    world.announce(1, attributes(path=(65001,)))
    assert world.announce(1, attributes(path=(65001,))) == []


def test_withdrawing_the_best_falls_back_to_the_next() -> None:
    world = World()
    world.announce(1, attributes(path=(65001,)))
    world.announce(2, attributes(path=(65002, 7)))
    world.announce(3, attributes(path=(65003, 7, 8)))
    assert world.best_from() == "10.0.0.1"
    (change,) = world.withdraw(1)
    assert change[2] is not None and change[2].peer.address == "10.0.0.2"
    world.withdraw(2)
    assert world.best_from() == "10.0.0.3"
    (last,) = world.withdraw(3)
    assert last[2] is None and world.best_from() is None and len(world.loc) == 0


def test_withdrawing_a_path_that_put_a_better_one_out_on_med() -> None:
    world = World()
    world.announce(5, attributes(path=(65008,), med=0))  # B
    world.announce(6, attributes(path=(65009,), med=0))  # X puts C out
    world.announce(1, attributes(path=(65009,), med=50))  # C: best router ID, but MED
    assert world.best_from() == "10.0.0.5"
    world.withdraw(6)
    assert world.best_from() == "10.0.0.1"


def test_new_path_from_the_best_paths_as_with_a_lower_med() -> None:
    world = World()
    world.announce(1, attributes(path=(65009,), med=50))
    world.announce(5, attributes(path=(65008,)))
    assert world.best_from() == "10.0.0.1"
    world.announce(6, attributes(path=(65009,), med=0))  # puts 10.0.0.1 out
    assert world.best_from() == "10.0.0.5"


def test_new_path_that_would_win_but_loses_on_med_in_its_as() -> None:
    world = World()
    world.announce(5, attributes(path=(65008,)))
    world.announce(6, attributes(path=(65009,), med=0))
    assert world.best_from() == "10.0.0.5"
    world.announce(1, attributes(path=(65009,), med=50))  # lowest router ID, higher MED
    assert world.best_from() == "10.0.0.5"


def test_replacing_the_best_with_a_worse_path() -> None:
    world = World()
    world.announce(1, attributes(path=(65001,)))
    world.announce(2, attributes(path=(65002, 9)))
    world.announce(1, attributes(path=(65001, 9, 9)))
    assert world.best_from() == "10.0.0.2"


def test_multipath_set_is_kept_and_reported() -> None:
    world = World(BestPathConfig(multipath=4))
    same = [peer(n, asn=65100) for n in (1, 2)]
    for n, source in zip((1, 2), same, strict=True):
        world.rib(n, source)
    world.announce(1, attributes(path=(65100,)))
    assert world.loc.multipath(P) == (world.loc.best(P),)
    (change,) = world.announce(2, attributes(path=(65100,)))  # best unchanged, set grew
    assert change[1] is change[2]
    assert [r.peer.address for r in world.loc.multipath(P)] == ["10.0.0.1", "10.0.0.2"]
    world.withdraw(2)
    assert len(world.loc.multipath(P)) == 1


def test_reevaluate_after_next_hop_reachability_changes() -> None:
    dark: set[str] = set()
    world = World(BestPathConfig(next_hop_reachable=lambda nh: nh not in dark))
    world.announce(1, attributes(path=(65001,)))
    world.announce(2, attributes(path=(65002, 9)))
    dark.add("10.0.0.1")
    (change,) = world.loc.reevaluate(list(world.ribs.values()))
    assert change[2] is not None and change[2].peer.address == "10.0.0.2"
    dark.add("10.0.0.2")
    (gone,) = world.loc.reevaluate(list(world.ribs.values()))
    assert gone[2] is None and P not in world.loc
