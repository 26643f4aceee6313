"""pybgpd against FRR bgpd 8.4 (in its container, as in test_common.py, which has the checks
every peer gets): what only FRR is used for here, a connection collision (FRR's dial held back
and FRR frozen while pybgpd dials) and maximum prefixes (FRR shows the NOTIFICATION it got)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    OUR_V4,
    PEER_ASN,
    PEER_V4,
    MakePair,
    Pair,
    Route,
    Session,
    bgp_connections,
    output,
    stays,
    wait_for,
)
from tests.support import require_tools

pytestmark = pytest.mark.privileged

KIND = "frr"
ASN = PEER_ASN[KIND]
V4_ONLY = {"families": ["ipv4-unicast"], "peer_asn": ASN, "connect_retry": 1}


# ---------------------------------------------------------------- connection collision


SYN_TO_BGP = ["INPUT", "-p", "tcp", "--syn", "--dport", "179", "-j", "DROP"]


def simultaneous_open(make_pair: MakePair, connect_timer: int) -> Pair:
    """Both sides dial, and both connections are up before either side has read an OPEN
    (RFC 4271 §6.8): FRR's dial to pybgpd is held back (its SYNs dropped) and FRR frozen; pybgpd
    starts and dials FRR (the frozen bgpd's kernel completes the handshake; pybgpd sends its
    OPEN); then FRR's SYNs are let through (pybgpd accepts while in OpenSent) and FRR thawed."""
    pair = make_pair(
        KIND,
        start=False,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        neighbors=[{"address": PEER_V4, **V4_ONLY}],
        peer_options={"connect_timer": connect_timer},
    )
    require_tools("iptables")
    ours = pair.link.ours
    output("iptables", "-A", *SYN_TO_BGP, netns=ours)
    pair.peer.start()
    wait_for(
        lambda: f"{OUR_V4}:179" in output("ss", "-Htn", "state", "syn-sent", netns=pair.link.peer),
        "FRR dialling pybgpd",
    )
    pair.peer.freeze()
    try:
        pair.ours.start()
        wait_for(lambda: pair.ours.state(PEER_V4) == "OpenSent", "pybgpd's OPEN sent to FRR")
        output("iptables", "-D", *SYN_TO_BGP, netns=ours)
        wait_for(lambda: len(bgp_connections(ours)) == 2, "FRR's connection to pybgpd up too")
    finally:
        pair.peer.thaw()
    return pair


def one_session(pair: Pair) -> list[tuple[str, str]] | None:
    connections = bgp_connections(pair.link.ours)
    up = pair.ours.state(PEER_V4) == ESTABLISHED and pair.peer.state(OUR_V4) == ESTABLISHED
    return connections if up and len(connections) == 1 else None


def test_collision_leaves_one_session(make_pair: MakePair) -> None:
    """FRR keeps its dial while frozen (its connect timer is 30 s). Which connection survives
    depends on what FRR reads first once thawed: the one FRR opened (its router id, 10.0.0.2,
    is the higher), or pybgpd's when that one reaches Established first (a collision with an
    Established connection closes the new one); either way exactly one must be left."""
    pair = simultaneous_open(make_pair, connect_timer=30)
    connections = wait_for(lambda: one_session(pair), "exactly one session")
    stays(lambda: one_session(pair) == connections, "still the same one session", 1.5)


def test_collision_survives_the_peer_abandoning_its_connection(make_pair: MakePair) -> None:
    """FRR's connect timer is 1 s, so FRR, thawed, gives up the connection it dialled (it
    resets it) and dials again, while pybgpd is reading that connection for the OPEN that
    settles the collision: pybgpd must carry on and end with one session."""
    pair = simultaneous_open(make_pair, connect_timer=1)
    connections = wait_for(lambda: one_session(pair), "exactly one session")
    stays(lambda: one_session(pair) == connections, "still the same one session", 1.5)


# ---------------------------------------------------------------- maximum prefixes


def test_max_prefixes_sends_cease_maximum_prefixes(make_pair: MakePair) -> None:
    pair = make_pair(
        KIND,
        start=False,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        routes=[Route(f"10.1.{i}.0/24") for i in range(5)],
        neighbors=[{"address": PEER_V4, **V4_ONLY, "max_prefixes": 3}],
        our_routes=[],
    )
    pair.start(wait=False)

    def notified() -> dict[str, Any] | None:
        shown = pair.frr.neighbor(OUR_V4)
        return shown if shown.get("lastErrorCodeSubcode") == "0601" else None

    frr_view = wait_for(notified, "FRR to receive Cease (6) / Maximum Number of Prefixes (1)")
    assert frr_view is not None
    assert frr_view["lastNotificationReason"] == "Cease/Maximum Number of Prefixes Reached"
    assert frr_view["lastResetDueTo"] == "BGP Notification received"
    shown = pair.ours.cli_json("neighbor", PEER_V4)
    assert shown["state"] != ESTABLISHED
    assert "maximum prefixes reached: 3" in shown["last_error"]
