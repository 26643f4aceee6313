"""The Loc-RIB's shortcut for eBGP peers whose paths start with their own AS (RFC 4271 §6.3
enforced): a new path that beats the best on the tie-breakers is taken without gathering
every candidate when no other source can share its neighbour AS. Checked against the full
decision process over random announcements and withdrawals, some peers sharing an AS."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pybgp.rib.adj_in import AdjRibIn
from pybgp.rib.best_path import DEFAULT, select
from pybgp.rib.loc_rib import LocRib
from pybgp.rib.peer import PeerInfo
from pybgp.speaker.pipeline import lone_as
from pybgp.wire.constants import IPV4_UNICAST
from tests.pybgp.rib.builders import attributes, peer, prefix

P = prefix("10.1.0.0/24")
ASNS = (65001, 65002, 65003, 65001, 65004)  # peers 1 and 4 share AS 65001


def source(n: int) -> PeerInfo:
    return peer(n + 1, asn=ASNS[n], enforce_first_as=True)


step = st.tuples(
    st.integers(0, len(ASNS) - 1),
    st.one_of(st.none(), st.tuples(st.integers(0, 1), st.integers(0, 3))),  # (extra ASes, MED)
)


@settings(max_examples=500, deadline=None)
@given(st.lists(step, min_size=1, max_size=30))
def test_incremental_best_equals_the_full_decision(steps: list) -> None:
    ribs = [AdjRibIn(source(n)) for n in range(len(ASNS))]
    loc = LocRib(IPV4_UNICAST)
    lone = lone_as(ribs)
    assert lone is not None
    for n, what in steps:
        rib = ribs[n]
        if what is None:
            touched = rib.withdraw(IPV4_UNICAST, [P])
        else:
            extra, med = what
            path = (rib.peer.asn, *range(64600, 64600 + extra))
            touched = rib.announce(IPV4_UNICAST, [P], attributes(path=path, med=med), "10.0.0.9")
        for item in touched:
            loc.apply(item, ribs, lone)
        candidates = [r for rib_ in ribs for r in rib_.paths(IPV4_UNICAST, P).values()]
        expected, _ = select(candidates, DEFAULT)
        assert loc.best(P) is expected


def test_a_path_not_starting_with_the_peers_as_is_not_accepted() -> None:
    rib = AdjRibIn(source(1))
    rib.announce(IPV4_UNICAST, [P], attributes(path=(65009, 65002)), "10.0.0.9")
    assert rib.counts(IPV4_UNICAST) == (1, 0)
    rib.announce(IPV4_UNICAST, [P], attributes(path=(65002, 65009)), "10.0.0.9")
    assert rib.counts(IPV4_UNICAST) == (1, 1)


def test_without_enforcement_no_shortcut() -> None:
    open_source = AdjRibIn(peer(1, asn=65001))
    assert lone_as([open_source]) is None
    assert lone_as([AdjRibIn(source(0)), AdjRibIn(peer(2, ibgp=True))]) is None
