"""The decision process' facts read straight from the wire form (the ingest fast path) equal
those read from the decoded attributes, for every kind of path."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from pybgp.rib.route import Facts, Route
from pybgp.wire import aspath
from pybgp.wire.constants import SegmentType
from tests.pybgp.rib.builders import attributes, peer

ASNS = st.sampled_from([1, 65001, 65002, 4_200_000_000])
SEGMENT = st.tuples(
    st.sampled_from(list(SegmentType)), st.lists(ASNS, min_size=1, max_size=4).map(tuple)
)


def decoded_facts(route: Route) -> Facts:
    """The facts as the decoded attributes give them."""
    a = route.attributes
    originator = a.originator_id
    return Facts(
        local_pref=a.local_pref,
        path_length=aspath.path_length(a.as_path),
        origin=a.origin,
        neighbour_as=aspath.first_as(a.as_path),
        med=a.med,
        router_id=int(ipaddress.ip_address(originator or route.peer.router_id)),
        cluster_list_length=len(a.cluster_list),
    )


@settings(max_examples=300, deadline=None)
@given(
    segments=st.lists(SEGMENT, max_size=3).map(tuple),
    origin=st.integers(0, 2),
    med=st.none() | st.integers(0, 2**32 - 1),
    local_pref=st.none() | st.integers(0, 2**32 - 1),
    originator=st.none() | st.sampled_from(["0.0.0.0", "10.9.9.9", "255.1.2.3"]),
    clusters=st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2"]), max_size=3).map(tuple),
    ibgp=st.booleans(),
)
def test_wire_facts_equal_decoded_facts(
    segments: tuple[tuple[int, tuple[int, ...]], ...],
    origin: int,
    med: int | None,
    local_pref: int | None,
    originator: str | None,
    clusters: tuple[str, ...],
    ibgp: bool,
) -> None:
    attrs = attributes(
        segments=segments,
        origin=origin,
        med=med,
        local_pref=local_pref,
        originator=originator,
        clusters=clusters,
    )
    route = Route(attrs, "10.0.0.1", peer(1, ibgp=ibgp))
    assert route.facts == decoded_facts(route)


def test_a_path_with_an_as_set_is_decoded() -> None:
    segments = ((SegmentType.AS_SEQUENCE, (65001, 65002)), (SegmentType.AS_SET, (1, 2, 3)))
    route = Route(attributes(segments=segments), "10.0.0.1", peer(1))
    assert (route.facts.path_length, route.facts.neighbour_as) == (3, 65001)


def test_a_long_path_in_an_extended_length_attribute() -> None:
    path = tuple(range(64600, 64700))  # 400 octets of AS numbers: Extended Length
    attrs = attributes(path=path, med=7)
    assert attrs.raw[0] & 0x10 or any(flags & 0x10 for flags, _, _ in attrs.tlvs())
    route = Route(attrs, "10.0.0.1", peer(1))
    assert route.facts == decoded_facts(route)
    assert (route.facts.path_length, route.facts.med) == (100, 7)
