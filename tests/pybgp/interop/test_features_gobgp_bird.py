"""Route refresh, ADD-PATH and extended next hop with GoBGP 3.10 and BIRD 2.0.12 (the FRR
tests are test_route_refresh_frr.py, test_addpath_frr.py and test_extended_nexthop_frr.py).

pybgpd's `pybgp -j neighbor` shows no negotiated capabilities, so what each side announced is
read from the peer's own neighbour output (GoBGP's `local_cap`/`remote_cap`, BIRD's "Local
capabilities"/"Neighbor capabilities").

- Route refresh (RFC 2918) and enhanced route refresh (RFC 7313):
  - BIRD announces both and can ask: `birdc reload in` sends a ROUTE-REFRESH and pybgpd
    answers with its table framed by BoRR/EoRR; pybgpd's soft reset gets BIRD's table framed
    the same way (pybgpd logs the EoRR). BIRD's packet trace (`debug { packets }`) shows every
    ROUTE-REFRESH, BoRR and EoRR it sends and gets.
  - GoBGP announces route refresh but not enhanced route refresh, and cannot be made to ask:
    `gobgp neighbor ADDR softresetin` (and `softreset`) send no ROUTE-REFRESH (checked: GoBGP's
    sent-message counters show none, and pybgpd sees none), so only pybgpd asks GoBGP; GoBGP
    answers with a plain UPDATE (no BoRR/EoRR, so pybgpd logs no "refreshed" line).
- ADD-PATH (RFC 7911), both ways with both peers:
  - pybgpd sending: two feeder pybgpd instances in the peer's namespace give pybgpd two paths
    for 10.9.0.0/24; pybgpd (`add_path_send = 2`) sends both to GoBGP (`add-paths receive`)
    and to BIRD (`add paths rx`), and a feeder's withdrawal takes exactly one away. The peer
    listens on its session's address only (GoBGP `local-address-list`, BIRD `strict bind`),
    so the feeders can listen on theirs.
  - pybgpd receiving (`add_path_receive = true`): the peer originates two paths for the
    prefix itself (GoBGP: two local paths with their own identifiers; BIRD: two static
    protocols) and sends both (GoBGP `send-max = 2`, BIRD `add paths tx`); pybgpd keeps both
    under the peer's path ids, prefers the lower MED, and a withdrawal removes that path id.
- Extended next hop (RFC 8950) over an IPv6-only session carrying IPv4 and IPv6: BIRD
  (`extended next hop on` in its channels; it announces it for IPv4) and GoBGP (which
  announces the capability on every session) get pybgpd's IPv4 route with pybgpd's IPv6
  address as next hop, and pybgpd gets theirs with the peer's IPv6 address as next hop.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.pybgp.interop.daemons import (
    OUR_ASN,
    OUR_V4,
    OUR_V6,
    PEER_ASN,
    PEER_V4,
    PEER_V6,
    Bird,
    Gobgp,
    MakePair,
    Pair,
    Pybgpd,
    Route,
    Session,
    feeder_pybgpd,
    stays,
    wait_for,
)

pytestmark = pytest.mark.privileged

THEIRS = ("10.1.0.0/24", "10.1.1.0/24")
OURS = ("10.2.0.0/24", "10.2.1.0/24")
ADDPATH_PREFIX = "10.9.0.0/24"
FEEDERS = {65010: 1, 65020: 2}  # AS -> subnet index (10.0.INDEX.2 in the peer namespace)
BIRD_TRACE = {"global_options": ["log stderr all;"]}  # BIRD's log (and traces) into bird.log


def ipv4_neighbor(kind: str, **options: Any) -> dict[str, Any]:
    return {
        "address": PEER_V4,
        "peer_asn": PEER_ASN[kind],
        "families": ["ipv4-unicast"],
        "connect_retry": 1,
        **options,
    }


def gobgp(pair: Pair) -> Gobgp:
    assert isinstance(pair.peer, Gobgp)
    return pair.peer


def bird(pair: Pair) -> Bird:
    assert isinstance(pair.peer, Bird)
    return pair.peer


# ---------------------------------------------------------------- BIRD's output


def bird_capabilities(pair: Pair, neighbor: str) -> tuple[str, str]:
    """(what BIRD announced, what pybgpd announced), as `show protocols all` lists them."""
    out = bird(pair).birdc("show", "protocols", "all", bird(pair).protocol(neighbor))
    found = re.search(
        r"Local capabilities\n(.*?)Neighbor capabilities\n(.*?)\n    Session:", out, re.S
    )
    assert found, out
    return found.group(1), found.group(2)


def bird_trace(pair: Pair) -> list[str]:
    """BIRD's packet trace for its sessions, e.g. "Got BEGIN-OF-RR" (keepalives left out)."""
    text = (bird(pair).dir / bird(pair).log_name).read_text(errors="replace")
    found = re.findall(r"<TRACE> s\d+: (.*)", text)
    return [line.strip() for line in found if "KEEPALIVE" not in line]


def bird_paths(pair: Pair, prefix: str) -> list[dict[str, str]]:
    """Every path BIRD has for `prefix` (`show route PREFIX all`), as attribute dicts (with
    "from": the protocol that brought it)."""
    paths: list[dict[str, str]] = []
    for line in bird(pair).birdc("show", "route", prefix, "all").splitlines():
        shown = re.match(r"^(?:\S+)?\s+unicast \[(\S+) ", line)
        if shown and not line.startswith("\t"):
            paths.append({"from": shown.group(1)})
        elif line.startswith("\t") and paths:
            key, _, value = line.strip().partition(": ")
            paths[-1][key] = value
    return paths


# ---------------------------------------------------------------- GoBGP's output


def gobgp_caps(pair: Pair, neighbor: str) -> tuple[dict[str, str], dict[str, str]]:
    """(GoBGP's capabilities, pybgpd's), each as {name: base64 protobuf value}, e.g.
    {"AddPathCapability": "CggKBAgBEAEQAg==", "RouteRefreshCapability": ""}."""
    state = gobgp(pair).neighbor(neighbor)["state"]

    def named(caps: list[dict[str, str]]) -> dict[str, str]:
        return {c["type_url"].rsplit(".", 1)[-1]: c.get("value", "") for c in caps}

    return named(state.get("local_cap", [])), named(state.get("remote_cap", []))


def gobgp_messages(pair: Pair, neighbor: str, direction: str) -> dict[str, int]:
    """GoBGP's message counters for the session ("sent" or "received"), by type."""
    counts: dict[str, int] = gobgp(pair).neighbor(neighbor)["state"]["messages"][direction]
    return counts


def gobgp_paths(pair: Pair, prefix: str) -> list[dict[str, Any]]:
    """Every path GoBGP has for `prefix` learned over BGP."""
    table = json.loads(gobgp(pair).gobgp("global", "rib", "-a", "ipv4", prefix, "-j") or "{}")
    return [p for p in table.get(prefix, []) if p.get("neighbor-ip")]


def gobgp_as_path(path: dict[str, Any]) -> str:
    segments: list[dict[str, Any]] = next(
        (a["as_paths"] for a in path["attrs"] if a["type"] == 2), []
    )
    return " ".join(str(asn) for segment in segments for asn in segment["asns"])


# ---------------------------------------------------------------- route refresh


def refresh_pair(make_pair: MakePair, kind: str, **peer_options: Any) -> Pair:
    """One IPv4 session; each side originates two IPv4 routes, seen by the other."""
    pair = make_pair(
        kind,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",), bird_options=("debug { packets };",))],
        routes=[Route(p) for p in THEIRS],
        neighbors=[ipv4_neighbor(kind)],
        our_routes=[Route(p) for p in OURS],
        peer_options=peer_options or None,
    )
    pair.ours.wait_routes(list(THEIRS))
    for prefix in OURS:
        pair.peer.wait_route(prefix)
    return pair


def routes_intact(pair: Pair) -> bool:
    """Both sides still have every route of the other."""
    ours = pair.ours.has_routes(list(THEIRS))
    return ours and all(pair.peer.route(prefix) is not None for prefix in OURS)


def after(lines: list[str], start: int, *wanted: str) -> bool:
    """`wanted` appear in this order among lines[start:] (other lines may come between)."""
    rest = iter(lines[start:])
    return all(any(line == w for line in rest) for w in wanted)


def test_enhanced_route_refresh_both_ways_with_bird(make_pair: MakePair) -> None:
    pair = refresh_pair(make_pair, "bird", **BIRD_TRACE)
    theirs, ours = bird_capabilities(pair, OUR_V4)
    for shown in (theirs, ours):
        assert "Route refresh" in shown and "Enhanced refresh" in shown, (theirs, ours)

    # BIRD asks: pybgpd sends its table between BoRR and EoRR. BIRD marks pybgpd's routes
    # stale at the BoRR and flushes those not sent again at the EoRR: they all stay.
    start = len(bird_trace(pair))
    assert "reloading" in bird(pair).birdc("reload", "in", bird(pair).protocol(OUR_V4))
    wait_for(
        lambda: after(
            bird_trace(pair),
            start,
            "Sending ROUTE-REFRESH",
            "Got BEGIN-OF-RR",
            "Got UPDATE",
            "Got END-OF-RR",
        ),
        "BoRR, pybgpd's table and EoRR at BIRD",
    )
    stays(lambda: routes_intact(pair), "every route on both sides after BIRD's refresh", 2)

    # pybgpd asks: BIRD answers between BoRR and EoRR; pybgpd removes no route at the EoRR.
    start = len(bird_trace(pair))
    assert pair.ours.cli("neighbor", PEER_V4, "softreset").startswith("softreset sent")
    wait_for(
        lambda: "refreshed ipv4-unicast: 0 stale prefixes removed" in pair.ours.log(),
        "BIRD's EoRR to pybgpd",
    )
    assert after(
        bird_trace(pair),
        start,
        "Got ROUTE-REFRESH",
        "Sending BEGIN-OF-RR",
        "Sending UPDATE",
        "Sending END-OF-RR",
    ), bird_trace(pair)[start:]
    stays(lambda: routes_intact(pair), "every route on both sides after pybgpd's refresh", 2)
    families = pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]
    assert (families["accepted"], families["stale"]) == (2, 0)


def test_gobgp_answers_pybgpds_route_refresh(make_pair: MakePair) -> None:
    pair = refresh_pair(make_pair, "gobgp")
    theirs, ours = gobgp_caps(pair, OUR_V4)
    assert "RouteRefreshCapability" in theirs and "RouteRefreshCapability" in ours
    assert "EnhancedRouteRefreshCapability" in ours  # pybgpd offers it, GoBGP does not
    assert "EnhancedRouteRefreshCapability" not in theirs

    sent_before = gobgp_messages(pair, OUR_V4, "sent").get("update", 0)
    assert gobgp_messages(pair, OUR_V4, "received").get("refresh", 0) == 0
    assert pair.ours.cli("neighbor", PEER_V4, "softreset").startswith("softreset sent")
    # Exactly one ROUTE-REFRESH (no BoRR/EoRR without RFC 7313), answered with an UPDATE.
    wait_for(
        lambda: gobgp_messages(pair, OUR_V4, "received").get("refresh", 0) == 1,
        "pybgpd's ROUTE-REFRESH at GoBGP",
    )
    wait_for(
        lambda: gobgp_messages(pair, OUR_V4, "sent").get("update", 0) > sent_before,
        "GoBGP's answer",
    )
    stays(lambda: routes_intact(pair), "every route on both sides after pybgpd's refresh", 2)
    assert gobgp_messages(pair, OUR_V4, "received").get("refresh", 0) == 1
    assert "refreshed ipv4-unicast" not in pair.ours.log()  # no EoRR from GoBGP
    families = pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]
    assert (families["accepted"], families["stale"]) == (2, 0)


# ---------------------------------------------------------------- ADD-PATH

Feed = Callable[[Pair], list[Pybgpd]]


@pytest.fixture
def feed() -> Iterator[Feed]:
    """`feed(pair)`: one feeder pybgpd per FEEDERS entry in the peer namespace, peering with
    pybgpd on its own subnet and originating ADDPATH_PREFIX; stopped after the test."""
    started: list[Pybgpd] = []

    def start(pair: Pair) -> list[Pybgpd]:
        for asn, index in FEEDERS.items():
            neighbor = {"address": f"10.0.{index}.1", "peer_asn": OUR_ASN}
            feeder = feeder_pybgpd(pair, asn, index, neighbor, ADDPATH_PREFIX)
            started.append(feeder)
            feeder.start()
        return started

    yield start
    for feeder in started:
        feeder.close()


ADDPATH_RECEIVE: dict[str, dict[str, Any]] = {
    # The peer takes several paths from pybgpd, and listens on its session's address only, so
    # the feeders in its namespace can listen on theirs.
    "gobgp": {
        "session": {
            "gobgp_afi_safi_options": (
                "    [neighbors.afi-safis.add-paths.config]",
                "      receive = true",
            )
        },
        "peer_options": {"listen": [PEER_V4]},
    },
    "bird": {
        "session": {
            "bird_channel_options": ("add paths rx;",),
            "bird_options": ("strict bind on;",),
        },
        "peer_options": {},
    },
}


def peer_paths(pair: Pair) -> list[tuple[str, str]]:
    """(AS path, next hop) of every path the peer has for ADDPATH_PREFIX from pybgpd."""
    if pair.peer.kind == "gobgp":
        paths = gobgp_paths(pair, ADDPATH_PREFIX)
        assert {p["neighbor-ip"] for p in paths} <= {OUR_V4}, paths
        hops = [next(a["nexthop"] for a in p["attrs"] if a["type"] == 3) for p in paths]
        return sorted(zip((gobgp_as_path(p) for p in paths), hops, strict=True))
    shown = bird_paths(pair, ADDPATH_PREFIX)
    assert {p["from"] for p in shown} <= {bird(pair).protocol(OUR_V4)}, shown
    return sorted((p["BGP.as_path"], p["BGP.next_hop"]) for p in shown)


def assert_addpath_negotiated(pair: Pair) -> None:
    """pybgpd announced ADD-PATH send for IPv4 unicast, the peer receive."""
    if pair.peer.kind == "gobgp":
        theirs, ours = gobgp_caps(pair, OUR_V4)
        # AddPathCapability{tuples: [{family: ipv4-unicast, mode}]}: the last protobuf field
        # is the mode (1 receive, 2 send, 3 both).
        assert base64.b64decode(ours["AddPathCapability"]).endswith(b"\x10\x02"), ours
        assert base64.b64decode(theirs["AddPathCapability"]).endswith(b"\x10\x01"), theirs
    else:
        local, remote = bird_capabilities(pair, OUR_V4)
        assert re.search(r"ADD-PATH\n\s+RX: ipv4\n\s+TX:\s*\n", local), local
        assert re.search(r"ADD-PATH\n\s+RX:\s*\n\s+TX: ipv4\n", remote), remote


@pytest.mark.parametrize("kind", ["gobgp", "bird"])
def test_pybgpd_sends_several_paths(kind: str, make_pair: MakePair, feed: Feed) -> None:
    options = ADDPATH_RECEIVE[kind]
    feeders = [
        {
            "address": f"10.0.{index}.2",
            "peer_asn": asn,
            "local_address": f"10.0.{index}.1",
            "families": ["ipv4-unicast"],
            "connect_retry": 1,
        }
        for asn, index in FEEDERS.items()
    ]
    pair = make_pair(
        kind,
        start=False,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",), **options["session"])],
        routes=[],
        neighbors=[ipv4_neighbor(kind, add_path_send=2), *feeders],
        our_routes=(),
        peer_options=options["peer_options"],
    )
    pair.ours.global_["listen"] = [OUR_V4, *(f"10.0.{index}.1" for index in FEEDERS.values())]
    for index in FEEDERS.values():
        pair.link.add_subnet(index)
    pair.start(wait=False)
    started = feed(pair)
    pair.wait_established(timeout=30)
    feeders_up = [f"10.0.{index}.2" for index in FEEDERS.values()]
    wait_for(
        lambda: all(pair.ours.state(a) == "Established" for a in feeders_up), "both feeders", 30
    )
    assert_addpath_negotiated(pair)

    both = [(f"{OUR_ASN} 65010", OUR_V4), (f"{OUR_ASN} 65020", OUR_V4)]
    wait_for(lambda: peer_paths(pair) == both, f"both paths at {kind}", 30)
    assert pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]["advertised"] == 2

    # AS 65020's feeder withdraws: the peer loses that path and keeps the other one.
    started[1].cli("rib", "del", ADDPATH_PREFIX)
    wait_for(lambda: peer_paths(pair) == both[:1], f"one path left at {kind}")
    stays(lambda: peer_paths(pair) == both[:1], f"one path at {kind}", 1)


ADDPATH_SEND: dict[str, dict[str, Any]] = {
    # The peer originates two paths for ADDPATH_PREFIX (MED 10 and 20) and sends both.
    "gobgp": {  # two local paths with their own identifiers, added once it runs
        "session": {
            "gobgp_afi_safi_options": (
                "    [neighbors.afi-safis.add-paths.config]",
                "      send-max = 2",
            )
        },
        "peer_options": {},
    },
    "bird": {  # one static protocol per path
        "session": {"bird_channel_options": ("add paths tx;",)},
        "peer_options": {
            "global_options": [
                f"protocol static {name} {{ ipv4; route {ADDPATH_PREFIX} blackhole "
                f"{{ bgp_med = {med}; }}; }}"
                for name, med in (("feed10", 10), ("feed20", 20))
            ]
        },
    },
}


def our_paths(pair: Pair) -> list[dict[str, Any]]:
    return [r for r in pair.ours.cli_json("rib", ADDPATH_PREFIX) if r["prefix"] == ADDPATH_PREFIX]


def meds(pair: Pair) -> list[int | None]:
    return sorted(p["med"] for p in our_paths(pair))


@pytest.mark.parametrize("kind", ["gobgp", "bird"])
def test_pybgpd_receives_several_paths(kind: str, make_pair: MakePair) -> None:
    options = ADDPATH_SEND[kind]
    pair = make_pair(
        kind,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",), **options["session"])],
        routes=[],
        neighbors=[ipv4_neighbor(kind, add_path_receive=True)],
        our_routes=(),
        peer_options=options["peer_options"],
    )
    if kind == "gobgp":
        for med in (10, 20):
            add = ["global", "rib", "add", "-a", "ipv4", ADDPATH_PREFIX, "nexthop", PEER_V4]
            gobgp(pair).gobgp(*add, "med", str(med), "identifier", str(med))
        theirs, ours = gobgp_caps(pair, OUR_V4)
        assert base64.b64decode(ours["AddPathCapability"]).endswith(b"\x10\x01"), ours
        assert base64.b64decode(theirs["AddPathCapability"]).endswith(b"\x10\x02"), theirs
    else:
        local, remote = bird_capabilities(pair, OUR_V4)
        assert re.search(r"ADD-PATH\n\s+RX:\s*\n\s+TX: ipv4\n", local), local
        assert re.search(r"ADD-PATH\n\s+RX: ipv4\n\s+TX:\s*\n", remote), remote

    wait_for(lambda: meds(pair) == [10, 20], "both paths in pybgpd")
    paths = our_paths(pair)
    assert {(p["peer"], p["next_hop"], p["as_path"]) for p in paths} == {
        (PEER_V4, PEER_V4, str(PEER_ASN[kind]))
    }
    assert len({p["path_id"] for p in paths}) == 2, paths  # the peer's path ids
    assert sorted(p["best"] for p in paths) == [False, True]
    assert next(p for p in paths if p["best"])["med"] == 10  # the lower MED
    counts = pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]
    assert (counts["received"], counts["accepted"]) == (2, 2)

    # The peer withdraws the MED 20 path: that path id goes, the other one stays.
    kept = next(p["path_id"] for p in paths if p["med"] == 10)
    if kind == "gobgp":
        gobgp(pair).gobgp("global", "rib", "del", "-a", "ipv4", ADDPATH_PREFIX, "identifier", "20")
    else:
        bird(pair).birdc("disable", "feed20")
    wait_for(lambda: meds(pair) == [10], "one path left in pybgpd")
    (left,) = our_paths(pair)
    assert (left["path_id"], left["best"]) == (kept, True)
    stays(lambda: meds(pair) == [10], "the MED 10 path only", 1)


# ---------------------------------------------------------------- extended next hop


@pytest.mark.parametrize("kind", ["gobgp", "bird"])
def test_ipv4_routes_over_an_ipv6_session(kind: str, make_pair: MakePair) -> None:
    session = Session(
        OUR_V6, PEER_V6, ("ipv4", "ipv6"), bird_channel_options=("extended next hop on;",)
    )
    # GoBGP sends an IPv4 route with the next hop it was added with: added below with its
    # IPv6 address (the harness adds its routes with an IPv4 one).
    pair = make_pair(
        kind,
        start=False,
        sessions=[session],
        routes=[Route("2001:db8:1::/48"), *([Route("10.1.0.0/24")] if kind == "bird" else [])],
        neighbors=[
            {
                "address": PEER_V6,
                "peer_asn": PEER_ASN[kind],
                "families": ["ipv4-unicast", "ipv6-unicast"],
                "extended_next_hop": True,
                "connect_retry": 1,
            }
        ],
        our_routes=[Route("10.2.0.0/24"), Route("2001:db8:2::/48")],
    )
    pair.start()
    if kind == "gobgp":
        add = ["global", "rib", "add", "-a", "ipv4", "10.1.0.0/24", "nexthop", PEER_V6]
        gobgp(pair).gobgp(*add, "origin", "igp")
        theirs, ours = gobgp_caps(pair, OUR_V6)
        assert "ExtendedNexthopCapability" in theirs and "ExtendedNexthopCapability" in ours
    else:
        local, remote = bird_capabilities(pair, OUR_V6)
        for shown in (local, remote):
            assert re.search(r"Extended next hop\n\s+IPv6 nexthop: ipv4\n", shown), shown

    rib = pair.ours.wait_routes(["10.1.0.0/24", "2001:db8:1::/48"])
    assert rib["10.1.0.0/24"]["next_hop"] == PEER_V6
    assert rib["10.1.0.0/24"]["peer"] == PEER_V6
    assert pair.peer.wait_route("10.2.0.0/24").next_hop == OUR_V6
    assert pair.peer.wait_route("2001:db8:2::/48").next_hop == OUR_V6
    families = pair.ours.neighbor(PEER_V6)["families"]
    assert families["ipv4-unicast"]["accepted"] == 1
    assert families["ipv4-unicast"]["advertised"] == 1
