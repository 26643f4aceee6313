"""pybgpd against BIRD 2.0.12 (bird in the peer namespace, queried with birdc; BIRD has no
JSON output, so its text is parsed)."""

from __future__ import annotations

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

KIND = "bird"
ASN = PEER_ASN[KIND]
BIRD_PREFIXES = [r.prefix for r in peer_routes(ASN)]


# ---------------------------------------------------------------- the standard setup


def test_sessions_over_ipv4_and_ipv6_are_established(bird: Pair) -> None:
    for address in (PEER_V4, PEER_V6):
        assert bird.ours.cli_json("neighbor", address)["state"] == ESTABLISHED
    for address in (OUR_V4, OUR_V6):
        assert bird.peer.state(address) == ESTABLISHED


def test_bird_routes_reach_pybgpd_with_their_attributes(bird: Pair) -> None:
    """IPv4 over IPv4, IPv6 over IPv6; communities, large communities, MED, AS path intact."""
    rib = bird.ours.wait_routes(BIRD_PREFIXES)
    for route in peer_routes(ASN):
        expected = seen_by_pybgpd(route, ASN)
        assert fields_of(rib[route.prefix], expected) == expected


def test_pybgpd_routes_reach_bird_with_their_attributes(bird: Pair) -> None:
    for route in OUR_ROUTES:
        assert bird.peer.wait_route(route.prefix) == seen_by_peer(route)


def test_neighbor_json_counts_match_what_was_sent(bird: Pair) -> None:
    """Per-family counts, IPv6 over the IPv4 session included, agree with BIRD's own."""
    bird.ours.wait_routes(BIRD_PREFIXES)
    sessions = bird.peer.sessions
    expected = {s: expected_families(s, bird.peer.routes, OUR_ROUTES) for s in sessions}
    bird_view = {s.neighbor: peer_counts(families) for s, families in expected.items()}
    wait_for(lambda: {a: bird.peer.counts(a) for a in bird_view} == bird_view, "BIRD's counts")
    for session, families in expected.items():
        shown = bird.ours.cli_json("neighbor", session.local)
        assert shown["address"] == session.local
        assert shown["peer_asn"] == ASN
        assert shown["state"] == ESTABLISHED
        assert isinstance(shown["uptime"], float) and shown["uptime"] > 0
        assert shown["families"] == families


# ---------------------------------------------------------------- setups of their own


def test_bird_restart_is_followed_by_reconnection(make_pair: MakePair) -> None:
    pair = make_pair(KIND)
    pair.ours.wait_routes(BIRD_PREFIXES)
    pair.peer.stop()
    wait_for(lambda: pair.ours.has_none(BIRD_PREFIXES), "BIRD's routes withdrawn from pybgpd")
    assert all(pair.ours.state(a) != ESTABLISHED for a in pair.neighbors)
    pair.peer.start()
    pair.wait_established()
    rib = pair.ours.wait_routes(BIRD_PREFIXES)
    assert {rib[p]["peer"] for p in BIRD_PREFIXES} == {PEER_V4, PEER_V6}
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
