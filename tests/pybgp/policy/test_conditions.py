"""One test per condition kind (the set-based ones with their match options)."""

from __future__ import annotations

import pytest

from pybgp.policy import (
    Actions,
    AsPathLength,
    CompiledPolicy,
    Conditions,
    Definitions,
    MatchSet,
    NeighborSet,
    NextHopMatch,
    Policy,
    PolicyError,
    PrefixSet,
    evaluate,
)
from pybgp.wire.constants import Origin, SegmentType

from .helpers import attributes, chain, ctx, matches, peer, statement

PODS = (PrefixSet.parse("pods", ["10.0.0.0/8 le 24", "2001:db8::/32 ge 48 le 64"]),)


@pytest.mark.parametrize(
    ("prefix", "option", "expected"),
    [
        ("10.1.0.0/16", "any", True),
        ("10.1.2.0/25", "any", False),
        ("2001:db8:1::/48", "any", True),
        ("2001:db8::/32", "any", False),
        ("10.1.0.0/16", "invert", False),
        ("192.168.0.0/16", "invert", True),
    ],
)
def test_prefix_set(prefix: str, option: str, expected: bool) -> None:
    conditions = Conditions(prefix_set=MatchSet(set_name="pods", option=option))
    assert matches(conditions, ctx(prefix), prefix_sets=PODS) is expected


def test_neighbor_set_addresses_and_prefixes() -> None:
    sets = (NeighborSet(name="n", members=("192.0.2.1", "198.51.100.0/24", "2001:db8::1")),)
    for address, expected in [
        ("192.0.2.1", True),
        ("192.0.2.2", False),
        ("198.51.100.77", True),
        ("2001:db8::1", True),
        ("2001:db8::2", False),
    ]:
        route = ctx(from_peer=peer(address))
        assert (
            matches(Conditions(neighbor_set=MatchSet(set_name="n")), route, neighbor_sets=sets)
            is expected
        )
        inverted = Conditions(neighbor_set=MatchSet(set_name="n", option="invert"))
        assert matches(inverted, route, neighbor_sets=sets) is not expected


def test_neighbor_set_on_export_is_the_receiver() -> None:
    sets = (NeighborSet(name="n", members=("192.0.2.9",)),)
    route = ctx(from_peer=peer("192.0.2.9"), source=peer("192.0.2.1"))
    assert matches(Conditions(neighbor_set=MatchSet(set_name="n")), route, neighbor_sets=sets)


def test_next_hop() -> None:
    by_prefix = Conditions(next_hop=NextHopMatch(members=("192.0.2.0/24",)))
    by_address = Conditions(next_hop=NextHopMatch(members=("2001:db8::1",)))
    inverted = Conditions(next_hop=NextHopMatch(members=("192.0.2.0/24",), invert=True))
    assert matches(by_prefix, ctx(next_hop="192.0.2.77"))
    assert not matches(by_prefix, ctx(next_hop="198.51.100.1"))
    assert matches(by_address, ctx("2001:db8:1::/48", next_hop="2001:db8::1"))
    assert not matches(by_address, ctx("2001:db8:1::/48", next_hop="2001:db8::2"))
    assert matches(inverted, ctx(next_hop="198.51.100.1"))


def test_next_hop_as_an_earlier_statement_left_it() -> None:
    rewrite = statement("rewrite", actions=Actions(next_hop="198.51.100.1"))
    check = statement(
        "check",
        conditions=Conditions(next_hop=NextHopMatch(members=("198.51.100.1",))),
        actions=Actions(disposition="accept"),
    )
    result = evaluate(chain(rewrite, check), ctx(next_hop="192.0.2.1"))
    assert result.accepted and result.decided_by == "p/check"
    assert result.next_hop == "198.51.100.1"


@pytest.mark.parametrize("origin", list(Origin))
def test_origin(origin: Origin) -> None:
    route = ctx(attrs=attributes(origin=origin))
    for wanted in Origin:
        assert matches(Conditions(origin=wanted), route) is (wanted == origin)


@pytest.mark.parametrize(
    ("source", "route_type"),
    [
        (peer(), "external"),
        (peer(ibgp=True), "internal"),
        (peer(confederation=True), "internal"),
        (peer("0.0.0.0", asn=65000, local=True), "local"),
    ],
)
def test_route_type(source: object, route_type: str) -> None:
    route = ctx(from_peer=source)  # type: ignore[arg-type]
    for wanted in ("internal", "external", "local"):
        assert matches(Conditions(route_type=wanted), route) is (wanted == route_type)
    # on export the type is the source's, not the receiver's
    exported = ctx(from_peer=peer("192.0.2.50", ibgp=True), source=source)  # type: ignore[arg-type]
    assert matches(Conditions(route_type=route_type), exported)


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", 3, True),
        ("eq", 2, False),
        ("ge", 3, True),
        ("ge", 4, False),
        ("le", 3, True),
        ("le", 2, False),
    ],
)
def test_as_path_length(operator: str, value: int, expected: bool) -> None:
    segments = (
        (SegmentType.AS_CONFED_SEQUENCE, (64512, 64513)),  # counts 0
        (SegmentType.AS_SEQUENCE, (65001, 65002)),
        (SegmentType.AS_SET, (65003, 65004, 65005)),  # counts 1
    )
    route = ctx(attrs=attributes(segments=segments))
    conditions = Conditions(as_path_length=AsPathLength(operator=operator, value=value))
    assert matches(conditions, route) is expected


def test_all_conditions_must_hold() -> None:
    both = Conditions(prefix_set=MatchSet(set_name="pods"), origin=Origin.IGP)
    assert matches(both, ctx("10.1.0.0/16"), prefix_sets=PODS)
    assert not matches(
        both, ctx("10.1.0.0/16", attrs=attributes(origin=Origin.EGP)), prefix_sets=PODS
    )
    assert not matches(both, ctx("192.168.0.0/16"), prefix_sets=PODS)


def test_no_conditions_always_match() -> None:
    assert matches(Conditions(), ctx("192.168.0.0/16"))


def test_unknown_set_is_a_policy_error() -> None:
    bad = Policy(
        name="p",
        statements=(statement(conditions=Conditions(prefix_set=MatchSet(set_name="nope"))),),
    )
    with pytest.raises(PolicyError, match="no prefix set named 'nope'"):
        CompiledPolicy(Definitions(policies=(bad,)))
