"""pybgpd against GoBGP 3.10 (gobgpd in the peer namespace, queried with `gobgp ... -j`)."""

from __future__ import annotations

import time

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
    Session,
    add_md5_sessions,
    expected_families,
    fields_of,
    peer_counts,
    peer_routes,
    seen_by_peer,
    seen_by_pybgpd,
    stays,
    wait_for,
)

pytestmark = pytest.mark.privileged

KIND = "gobgp"
ASN = PEER_ASN[KIND]
GOBGP_PREFIXES = [r.prefix for r in peer_routes(ASN)]


# ---------------------------------------------------------------- the standard setup


def test_sessions_over_ipv4_and_ipv6_are_established(gobgp: Pair) -> None:
    for address in (PEER_V4, PEER_V6):
        assert gobgp.ours.cli_json("neighbor", address)["state"] == ESTABLISHED
    for address in (OUR_V4, OUR_V6):
        assert gobgp.peer.state(address) == ESTABLISHED


def test_gobgp_routes_reach_pybgpd_with_their_attributes(gobgp: Pair) -> None:
    """IPv4 over IPv4, IPv6 over IPv6; communities, large communities, MED, AS path intact."""
    rib = gobgp.ours.wait_routes(GOBGP_PREFIXES)
    for route in peer_routes(ASN):
        expected = seen_by_pybgpd(route, ASN)
        assert fields_of(rib[route.prefix], expected) == expected


def test_pybgpd_routes_reach_gobgp_with_their_attributes(gobgp: Pair) -> None:
    for route in OUR_ROUTES:
        assert gobgp.peer.wait_route(route.prefix) == seen_by_peer(route)


def test_neighbor_json_counts_match_what_was_sent(gobgp: Pair) -> None:
    """Per-family counts, IPv6 over the IPv4 session included, agree with GoBGP's own."""
    gobgp.ours.wait_routes(GOBGP_PREFIXES)
    sessions = gobgp.peer.sessions
    expected = {s: expected_families(s, gobgp.peer.routes, OUR_ROUTES) for s in sessions}
    gobgp_view = {s.neighbor: peer_counts(families) for s, families in expected.items()}
    wait_for(lambda: {a: gobgp.peer.counts(a) for a in gobgp_view} == gobgp_view, "GoBGP's counts")
    for session, families in expected.items():
        shown = gobgp.ours.cli_json("neighbor", session.local)
        assert shown["address"] == session.local
        assert shown["peer_asn"] == ASN
        assert shown["state"] == ESTABLISHED
        assert isinstance(shown["uptime"], float) and shown["uptime"] > 0
        assert shown["families"] == families


# ---------------------------------------------------------------- setups of their own


def test_gobgp_restart_is_followed_by_reconnection(make_pair: MakePair) -> None:
    pair = make_pair(KIND)
    pair.ours.wait_routes(GOBGP_PREFIXES)
    pair.peer.stop()
    wait_for(lambda: pair.ours.has_none(GOBGP_PREFIXES), "GoBGP's routes withdrawn from pybgpd")
    assert all(pair.ours.state(a) != ESTABLISHED for a in pair.neighbors)
    pair.peer.start()
    pair.wait_established()
    rib = pair.ours.wait_routes(GOBGP_PREFIXES)
    assert {rib[p]["peer"] for p in GOBGP_PREFIXES} == {PEER_V4, PEER_V6}
    for route in OUR_ROUTES:
        assert pair.peer.wait_route(route.prefix) == seen_by_peer(route)


def test_md5_right_key_establishes_wrong_or_missing_never(make_pair: MakePair) -> None:
    pair = make_pair(KIND, start=False, sessions=[], neighbors=[], routes=[], our_routes=[])
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


def test_frozen_gobgp_expires_the_hold_timer(make_pair: MakePair) -> None:
    pair = make_pair(
        KIND,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        neighbors=[
            {
                "address": PEER_V4,
                "peer_asn": ASN,
                "families": ["ipv4-unicast"],
                "connect_retry": 1,
                "hold_time": HOLD,
            }
        ],
    )
    v4 = [r.prefix for r in pair.peer.routes if r.family == "ipv4"]
    pair.ours.wait_routes(v4)
    assert pair.ours.neighbor(PEER_V4)["hold_time"] == HOLD
    stays(lambda: pair.ours.state(PEER_V4) == ESTABLISHED, "GoBGP keeps the session up", HOLD + 1)
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
        assert not any(p in rib for p in v4), "GoBGP's routes must be withdrawn"
    finally:
        pair.peer.thaw()
