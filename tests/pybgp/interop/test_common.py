"""What pybgpd must do with every real BGP speaker, checked against each in turn:

- FRR bgpd 8.4 deployed the way operators run it: a podman container (the image
  scripts/frr-image.sh builds) joined to the peer's namespace, queried with vtysh's JSON.
  Nothing here needs FRR run directly: SIGSTOP reaches the container's bgpd through its host
  pid, `podman stop`/`start` restart it, and TCP MD5 needs no extra capability.
- GoBGP 3.10: gobgpd in the peer namespace, queried with `gobgp ... -j`.
- BIRD 2.0.12: bird in the peer namespace, queried with birdc (BIRD has no JSON output, so its
  text is parsed).

A test's id names the peer (`...[gobgp]`). What only one peer is used for is in its own module
(test_frr.py: connection collision, maximum prefixes; test_pybgpd.py: pybgpd's own features)."""

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

NAMES = {"frr": "FRR", "gobgp": "GoBGP", "bird": "BIRD"}  # the peers, as messages name them

MD5_PEER_OPTIONS: dict[str, dict[str, Any]] = {
    # FRR listens on all its namespace's addresses here: started with `-l ADDR`, FRR 8.4 puts
    # no MD5 keys on its listening sockets and accepts an unsigned connection from a neighbour
    # it has a password for (checked with tcpdump; without `-l` it drops it).
    "frr": {"listen_all": True},
}


@pytest.fixture(scope="module", params=list(NAMES))
def kind(request: pytest.FixtureRequest) -> str:
    """The peer: every test here runs against each (one peer's tests after the other's)."""
    return str(request.param)


def their_prefixes(kind: str) -> list[str]:
    """What the peer originates in the standard setup."""
    return [r.prefix for r in peer_routes(PEER_ASN[kind])]


# ---------------------------------------------------------------- the standard setup


def test_sessions_over_ipv4_and_ipv6_are_established(standard: Pair) -> None:
    for address in (PEER_V4, PEER_V6):
        assert standard.ours.cli_json("neighbor", address)["state"] == ESTABLISHED
    for address in (OUR_V4, OUR_V6):
        assert standard.peer.state(address) == ESTABLISHED


def test_peer_routes_reach_pybgpd_with_their_attributes(kind: str, standard: Pair) -> None:
    """IPv4 over IPv4, IPv6 over IPv6; communities, large communities, MED, AS path intact."""
    asn = PEER_ASN[kind]
    rib = standard.ours.wait_routes(their_prefixes(kind))
    for route in peer_routes(asn):
        expected = seen_by_pybgpd(route, asn)
        assert fields_of(rib[route.prefix], expected) == expected


def test_pybgpd_routes_reach_peer_with_their_attributes(standard: Pair) -> None:
    for route in OUR_ROUTES:
        assert standard.peer.wait_route(route.prefix) == seen_by_peer(route)


def test_neighbor_json_counts_match_what_was_sent(kind: str, standard: Pair) -> None:
    """Per-family counts, IPv6 over the IPv4 session included, agree with the peer's own."""
    ours, peer = standard.ours, standard.peer
    ours.wait_routes(their_prefixes(kind))
    expected = {s: expected_families(s, peer.routes, OUR_ROUTES) for s in peer.sessions}
    peer_view = {s.neighbor: peer_counts(families) for s, families in expected.items()}
    wait_for(lambda: {a: peer.counts(a) for a in peer_view} == peer_view, f"{NAMES[kind]}'s counts")
    for session, families in expected.items():
        shown = ours.cli_json("neighbor", session.local)
        assert shown["address"] == session.local
        assert shown["peer_asn"] == PEER_ASN[kind]
        assert shown["state"] == ESTABLISHED
        assert isinstance(shown["uptime"], float) and shown["uptime"] > 0
        assert shown["families"] == families


# ---------------------------------------------------------------- setups of their own


def test_peer_restart_is_followed_by_reconnection(kind: str, make_pair: MakePair) -> None:
    pair = make_pair(kind)
    theirs = their_prefixes(kind)
    pair.ours.wait_routes(theirs)
    pair.peer.stop()
    wait_for(lambda: pair.ours.has_none(theirs), f"{NAMES[kind]}'s routes withdrawn from pybgpd")
    assert all(pair.ours.state(a) != ESTABLISHED for a in pair.neighbors)
    pair.peer.start()
    pair.wait_established()
    rib = pair.ours.wait_routes(theirs)
    assert {rib[p]["peer"] for p in theirs} == {PEER_V4, PEER_V6}
    for route in OUR_ROUTES:
        assert pair.peer.wait_route(route.prefix) == seen_by_peer(route)


def test_md5_right_key_establishes_wrong_or_missing_never(kind: str, make_pair: MakePair) -> None:
    pair = make_pair(
        kind,
        start=False,
        sessions=[],
        neighbors=[],
        routes=[],
        our_routes=[],
        peer_options=MD5_PEER_OPTIONS.get(kind),
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


@pytest.mark.parametrize("kind", ["frr", "gobgp"], indirect=True)
def test_frozen_peer_expires_the_hold_timer(kind: str, make_pair: MakePair) -> None:
    """The session first stays up with the short hold time (the peer's keepalives suffice),
    so it is the freeze that takes it down."""
    name = NAMES[kind]
    pair = make_pair(
        kind,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        neighbors=[
            {
                "address": PEER_V4,
                "peer_asn": PEER_ASN[kind],
                "families": ["ipv4-unicast"],
                "connect_retry": 1,
                "hold_time": HOLD,
            }
        ],
    )
    v4 = [r.prefix for r in pair.peer.routes if r.family == "ipv4"]
    pair.ours.wait_routes(v4)
    assert pair.ours.neighbor(PEER_V4)["hold_time"] == HOLD
    stays(lambda: pair.ours.state(PEER_V4) == ESTABLISHED, f"{name} keeps the session up", HOLD + 1)
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
        assert not any(p in rib for p in v4), f"{name}'s routes must be withdrawn"
    finally:
        pair.peer.thaw()
