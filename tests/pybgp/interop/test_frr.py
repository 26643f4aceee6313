"""pybgpd against FRR bgpd 8.4 deployed the way operators run it: a podman container (the image
scripts/frr-image.sh builds) joined to the peer's namespace, queried with vtysh's JSON.

Every test here runs FRR in the container; nothing needed FRR run directly (SIGSTOP reaches
the container's bgpd through its host pid, `podman stop`/`start` restart it, and TCP MD5 needs
no extra capability)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    MD5_KEY,
    MD5_OTHER_KEY,
    OUR_ROUTES,
    OUR_V4,
    OUR_V6,
    PEER_ASN,
    PEER_V4,
    PEER_V6,
    MakePair,
    Pair,
    Route,
    Session,
    add_md5_sessions,
    bgp_connections,
    expected_families,
    fields_of,
    output,
    peer_counts,
    peer_routes,
    seen_by_peer,
    seen_by_pybgpd,
    stays,
    wait_for,
)
from tests.support import require_tools

pytestmark = pytest.mark.privileged

KIND = "frr"
ASN = PEER_ASN[KIND]
FRR_PREFIXES = [r.prefix for r in peer_routes(ASN)]
V4_ONLY = {"families": ["ipv4-unicast"], "peer_asn": ASN, "connect_retry": 1}


# ---------------------------------------------------------------- the standard setup


def test_sessions_over_ipv4_and_ipv6_are_established(frr: Pair) -> None:
    for address in (PEER_V4, PEER_V6):
        assert frr.ours.cli_json("neighbor", address)["state"] == ESTABLISHED
    for address in (OUR_V4, OUR_V6):
        assert frr.peer.state(address) == ESTABLISHED


def test_frr_routes_reach_pybgpd_with_their_attributes(frr: Pair) -> None:
    """IPv4 over IPv4, IPv6 over IPv6; communities, large communities, MED, AS path intact."""
    rib = frr.ours.wait_routes(FRR_PREFIXES)
    for route in peer_routes(ASN):
        expected = seen_by_pybgpd(route, ASN)
        assert fields_of(rib[route.prefix], expected) == expected


def test_pybgpd_routes_reach_frr_with_their_attributes(frr: Pair) -> None:
    for route in OUR_ROUTES:
        assert frr.peer.wait_route(route.prefix) == seen_by_peer(route)


def test_neighbor_json_counts_match_what_was_sent(frr: Pair) -> None:
    """Per-family counts, IPv6 over the IPv4 session included, agree with FRR's own."""
    frr.ours.wait_routes(FRR_PREFIXES)
    expected = {s: expected_families(s, frr.peer.routes, OUR_ROUTES) for s in frr.peer.sessions}
    frr_view = {s.neighbor: peer_counts(families) for s, families in expected.items()}
    wait_for(lambda: {a: frr.peer.counts(a) for a in frr_view} == frr_view, "FRR's counts")
    for session, families in expected.items():
        shown = frr.ours.cli_json("neighbor", session.local)
        assert shown["address"] == session.local
        assert shown["peer_asn"] == ASN
        assert shown["state"] == ESTABLISHED
        assert isinstance(shown["uptime"], float) and shown["uptime"] > 0
        assert shown["families"] == families


# ---------------------------------------------------------------- setups of their own


def test_frr_restart_is_followed_by_reconnection(make_pair: MakePair) -> None:
    pair = make_pair(KIND)
    pair.ours.wait_routes(FRR_PREFIXES)
    pair.peer.stop()
    wait_for(lambda: pair.ours.has_none(FRR_PREFIXES), "FRR's routes withdrawn from pybgpd")
    assert all(pair.ours.state(a) != ESTABLISHED for a in pair.neighbors)
    pair.peer.start()
    pair.wait_established()
    rib = pair.ours.wait_routes(FRR_PREFIXES)
    assert {rib[p]["peer"] for p in FRR_PREFIXES} == {PEER_V4, PEER_V6}
    for route in OUR_ROUTES:
        assert pair.peer.wait_route(route.prefix) == seen_by_peer(route)


def test_md5_right_key_establishes_wrong_or_missing_never(make_pair: MakePair) -> None:
    """FRR listens on all its namespace's addresses here: started with `-l ADDR`, FRR 8.4 puts
    no MD5 keys on its listening sockets and accepts an unsigned connection from a neighbour
    it has a password for (checked with tcpdump; without `-l` it drops it)."""
    pair = make_pair(
        KIND,
        start=False,
        sessions=[],
        neighbors=[],
        routes=[],
        our_routes=[],
        peer_options={"listen_all": True},
    )
    sessions = add_md5_sessions(pair)
    pair.start("-v", wait=False)  # -v -v: debug logging, where a key would show if logged
    right = sessions.pop("right")
    wait_for(lambda: pair.up(*right), "the session with the right key Established")
    bad = list(sessions.values())
    stays(lambda: not any(pair.half_up(*s) for s in bad), "wrong or missing keys: never up", 4)
    assert " DEBUG " in pair.ours.log()  # the log checked below is the most verbose one
    assert pair.ours.leaks(MD5_KEY) == []
    assert pair.ours.leaks(MD5_OTHER_KEY) == []


HOLD = 3


def test_frozen_frr_expires_the_hold_timer(make_pair: MakePair) -> None:
    pair = make_pair(
        KIND,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        neighbors=[{"address": PEER_V4, **V4_ONLY, "hold_time": HOLD}],
    )
    v4 = [r.prefix for r in pair.peer.routes if r.family == "ipv4"]
    pair.ours.wait_routes(v4)
    assert pair.ours.neighbor(PEER_V4)["hold_time"] == HOLD
    pair.peer.freeze()
    try:
        frozen = time.monotonic()
        wait_for(
            lambda: pair.ours.state(PEER_V4) != ESTABLISHED,
            "pybgpd to leave Established",
            HOLD + 1,
            0.1,
        )
        assert time.monotonic() - frozen <= HOLD + 1
        shown = pair.ours.cli_json("neighbor", PEER_V4)
        assert "hold timer expired" in shown["last_error"]
        rib = pair.ours.rib_cli()
        assert not any(p in rib for p in v4), "FRR's routes must be withdrawn"
    finally:
        pair.peer.thaw()


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
