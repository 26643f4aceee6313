"""Route refresh (RFC 2918) and enhanced route refresh (RFC 7313) with FRR, both ways:
FRR's `clear bgp ... soft in` gets pybgpd's table framed by BoRR/EoRR, and pybgpd's soft
reset gets FRR's the same way, with nothing lost on either side."""

from __future__ import annotations

import pytest

from tests.pybgp.interop.daemons import (
    OUR_V4,
    PEER_ASN,
    PEER_V4,
    MakePair,
    Route,
    Session,
    wait_for,
)

pytestmark = pytest.mark.privileged

KIND = "frr"


def test_enhanced_route_refresh_both_ways(make_pair: MakePair) -> None:
    pair = make_pair(
        KIND,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        routes=[Route("10.1.0.0/24"), Route("10.1.1.0/24")],
        neighbors=[
            {
                "address": PEER_V4,
                "peer_asn": PEER_ASN[KIND],
                "families": ["ipv4-unicast"],
                "connect_retry": 1,
            }
        ],
        our_routes=[Route("10.2.0.0/24"), Route("10.2.1.0/24")],
    )
    pair.ours.wait_routes(["10.1.0.0/24", "10.1.1.0/24"])
    pair.peer.wait_route("10.2.1.0/24")
    shown = pair.frr.neighbor(OUR_V4)
    assert shown["neighborCapabilities"]["enhancedRouteRefresh"] == "advertisedAndReceived"

    def refreshes_from_pybgpd() -> int:
        return int(pair.frr.neighbor(OUR_V4)["messageStats"]["routeRefreshRecv"])

    before = refreshes_from_pybgpd()
    pair.frr.vtysh(f"clear bgp ipv4 unicast {OUR_V4} soft in")
    # pybgpd answers with BoRR and EoRR around its table (FRR counts both).
    wait_for(lambda: refreshes_from_pybgpd() >= before + 2, "BoRR and EoRR from pybgpd")
    assert pair.peer.route("10.2.0.0/24") is not None
    assert pair.peer.route("10.2.1.0/24") is not None

    assert pair.ours.cli("neighbor", PEER_V4, "softreset").startswith("softreset sent")
    wait_for(
        lambda: "refreshed ipv4-unicast: 0 stale prefixes removed" in pair.ours.log(),
        "FRR's EoRR to pybgpd",
    )
    assert pair.ours.has_routes(["10.1.0.0/24", "10.1.1.0/24"])
    families = pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]
    assert families["stale"] == 0 and families["accepted"] == 2
