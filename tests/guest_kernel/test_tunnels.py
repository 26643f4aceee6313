"""IPIP and FoU tunnels in a guest kernel: pods on nodes in two subnets reach each other.

    pod ns 10.244.1.2 -- 10.244.1.1 node A 172.16.1.2 -- 172.16.1.1 router 172.16.2.1 -- 172.16.2.2 node B 10.244.2.1 -- 10.244.2.2 pod ns

The router knows only the two node subnets, so pod packets cross it only inside a tunnel
between the nodes: plain IPIP (IP protocol 4), or IPIP inside UDP (FoU, port 5555).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from tests import netns
from tests.support import require_root, require_tools

pytestmark = [pytest.mark.guest, pytest.mark.privileged]

FOU_PORT = 5555
TUNNEL_ENCAP_FOU = 1  # ip_tunnel encapsulation type (linux/if_tunnel.h)


@contextlib.contextmanager
def _node(router: str, n: int) -> Iterator[tuple[str, str]]:
    """Node n on subnet 172.16.n.0/24 behind `router`, with one pod 10.244.n.2; (node, pod)."""
    with (
        netns.netns("nd") as node,
        netns.netns("pd") as pod,
        netns.veth_pair(router, f"172.16.{n}.1/24", node, f"172.16.{n}.2/24"),
        netns.veth_pair(node, f"10.244.{n}.1/24", pod, f"10.244.{n}.2/24"),
    ):
        netns.run("ip", "route", "add", "default", "via", f"172.16.{n}.1", netns=node)
        netns.run("ip", "route", "add", "default", "via", f"10.244.{n}.1", netns=pod)
        netns.run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=node)
        yield node, pod


def _tunnel(node: str, n: int, peer: int, encap: str) -> None:
    """A tunnel from node n to node `peer` carrying the peer's pod subnet."""
    options: dict[str, str | int] = {
        "ipip_local": f"172.16.{n}.2",
        "ipip_remote": f"172.16.{peer}.2",
    }
    if encap == "fou":
        netns.run("ip", "fou", "add", "port", str(FOU_PORT), "ipproto", "4", netns=node)
        options |= {
            "ipip_encap_type": TUNNEL_ENCAP_FOU,
            "ipip_encap_dport": FOU_PORT,
            "ipip_encap_sport": 0,
        }  # 0: a source port per flow
    with IPRoute(netns=node) as ipr:
        ipr.link("add", ifname="tun0", kind="ipip", **options)
        (index,) = ipr.link_lookup(ifname="tun0")
        ipr.link("set", index=index, state="up")
        ipr.route("add", dst=f"10.244.{peer}.0/24", oif=index)


@pytest.mark.parametrize("encap", ["ipip", "fou"])
def test_a_tunnel_carries_pod_traffic_between_subnets(encap: str) -> None:
    require_root()
    require_tools("ip", "ping")
    with netns.netns("rt") as router:
        netns.run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=router)
        with _node(router, 1) as (node_a, pod_a), _node(router, 2) as (node_b, _):
            unrouted = netns.run("ip", "route", "get", "10.244.2.2", netns=router, check=False)
            assert unrouted.returncode != 0, "the router must not route pod addresses itself"
            _tunnel(node_a, 1, 2, encap)
            _tunnel(node_b, 2, 1, encap)

            ping = netns.run("ping", "-c", "1", "-W", "5", "10.244.2.2", netns=pod_a, check=False)
            assert ping.returncode == 0, ping.stdout + ping.stderr
            link = netns.run("ip", "-d", "link", "show", "tun0", netns=node_a).stdout
            assert ("encap fou" in link) == (encap == "fou"), link
