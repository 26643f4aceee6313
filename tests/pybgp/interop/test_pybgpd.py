"""pybgpd's own features against a real peer (FRR in its container): `--fib` routes in the
kernel, SIGHUP reloads that keep unchanged sessions, and `pybgp rib add|del`."""

from __future__ import annotations

import importlib.util
import signal
import time

import pytest

from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    OUR_ROUTES,
    OUR_V4,
    OUR_V6,
    PEER_V4,
    PEER_V6,
    MakePair,
    PeerRoute,
    Route,
    bgp_connections,
    output,
    seen_by_peer,
    wait_for,
)
from tests.support import require

pytestmark = pytest.mark.privileged

KIND = "frr"


def kernel_routes(ns: str) -> str:
    """`ip route show proto bgp` for both families."""
    v4 = output("ip", "-4", "route", "show", "proto", "bgp", netns=ns)
    return v4 + output("ip", "-6", "route", "show", "proto", "bgp", netns=ns)


def test_fib_installs_withdraws_and_flushes_kernel_routes(make_pair: MakePair) -> None:
    require(importlib.util.find_spec("pyroute2") is not None, "pyroute2 (pybgp[fib])")
    pair = make_pair(KIND, start=False)
    pair.start("--fib")
    ns = pair.link.ours
    wanted = ["10.1.0.0/24 via 10.0.0.2", "10.1.1.0/24 via 10.0.0.2", "2001:db8:1::/48 via fd00::2"]
    wait_for(lambda: all(w in kernel_routes(ns) for w in wanted), "FRR's routes in the kernel")
    assert not any(r.prefix in kernel_routes(ns) for r in OUR_ROUTES), "only learned routes"
    pair.frr.withdraw("10.1.1.0/24")
    wait_for(lambda: "10.1.1.0/24" not in kernel_routes(ns), "the withdrawn route gone")
    assert "10.1.0.0/24 via 10.0.0.2" in kernel_routes(ns)
    assert pair.ours.stop(signal.SIGTERM) == 0
    assert kernel_routes(ns) == "", "a clean shutdown flushes pybgpd's routes"


def test_sighup_keeps_unchanged_sessions_and_announces_new_routes(make_pair: MakePair) -> None:
    pair = make_pair(KIND)
    ours, frr = pair.ours, pair.frr
    for route in OUR_ROUTES:
        frr.wait_route(route.prefix)

    def ipv4_session() -> list[tuple[str, str]]:
        return [c for c in bgp_connections(pair.link.ours) if c[1].startswith(f"{PEER_V4}:")]

    connection = ipv4_session()
    assert len(connection) == 1
    dialled = frr.neighbor(OUR_V4)["connectionsEstablished"]
    wait_for(lambda: ours.neighbor(PEER_V4)["uptime"] > 1.5, "the IPv4 session up a while")
    before, read_before = ours.neighbor(PEER_V4)["uptime"], time.monotonic()

    ours.neighbors[1]["description"] = "changed by the reload"  # the IPv6 session's neighbour
    added = Route("10.3.0.0/24", communities=("65000:33",), med=5)
    ours.routes.append(added)
    ours.reload()

    assert frr.wait_route(added.prefix) == seen_by_peer(added)
    wait_for(
        lambda: ours.neighbor(PEER_V6)["description"] == "changed by the reload",
        "the changed neighbour reconfigured",
    )
    pair.wait_established()
    after, read_after = ours.cli_json("neighbor", PEER_V4), time.monotonic()
    assert after["state"] == ESTABLISHED
    assert after["uptime"] >= before + (read_after - read_before) - 0.3, "uptime kept growing"
    assert ipv4_session() == connection, "the same TCP connection"
    assert frr.neighbor(OUR_V4)["connectionsEstablished"] == dialled


def test_rib_add_and_del_reach_the_peer(make_pair: MakePair) -> None:
    pair = make_pair(KIND)
    added = {"10.99.0.0/24": OUR_V4, "2001:db8:99::/48": OUR_V6}
    for prefix, next_hop in added.items():
        pair.ours.cli("rib", "add", prefix, "nexthop", next_hop, "community", "65000:9")
    for prefix, next_hop in added.items():
        seen = pair.peer.wait_route(prefix)
        assert seen == PeerRoute(next_hop, "65000", None, frozenset({"65000:9"}))
        assert pair.ours.rib_cli()[prefix]["peer"] == "local"
    for prefix in added:
        pair.ours.cli("rib", "del", prefix)
    for prefix in added:
        pair.peer.wait_gone(prefix)
        assert prefix not in pair.ours.rib_cli()
    assert pair.peer.route("10.2.0.0/24") is not None, "the configured routes stay"
    assert pair.ours.state(PEER_V4) == ESTABLISHED
