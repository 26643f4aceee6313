"""IPv4 routes with IPv6 next hops (RFC 8950) over an IPv6-only session with FRR: both
sides announce the extended next hop capability; FRR's IPv4 routes reach pybgpd with FRR's
IPv6 address as next hop, and pybgpd's reach FRR with pybgpd's."""

from __future__ import annotations

import pytest

from tests.pybgp.interop.daemons import (
    OUR_V6,
    PEER_ASN,
    PEER_V6,
    MakePair,
    Route,
    Session,
)

pytestmark = pytest.mark.privileged

KIND = "frr"


def test_ipv4_routes_over_an_ipv6_session(make_pair: MakePair) -> None:
    pair = make_pair(
        KIND,
        start=False,
        sessions=[Session(OUR_V6, PEER_V6, ("ipv4", "ipv6"))],
        routes=[Route("10.1.0.0/24"), Route("2001:db8:1::/48")],
        neighbors=[
            {
                "address": PEER_V6,
                "peer_asn": PEER_ASN[KIND],
                "families": ["ipv4-unicast", "ipv6-unicast"],
                "extended_next_hop": True,
                "connect_retry": 1,
            }
        ],
        our_routes=[Route("10.2.0.0/24"), Route("2001:db8:2::/48")],
        peer_options={"extended_nexthop": True},
    )
    pair.start()
    rib = pair.ours.wait_routes(["10.1.0.0/24", "2001:db8:1::/48"])
    assert rib["10.1.0.0/24"]["next_hop"] == PEER_V6
    seen = pair.peer.wait_route("10.2.0.0/24")
    assert seen.next_hop == OUR_V6
    assert pair.peer.wait_route("2001:db8:2::/48").next_hop == OUR_V6
    capabilities = pair.frr.neighbor(OUR_V6)["neighborCapabilities"]
    assert "extendedNexthop" in capabilities, capabilities
