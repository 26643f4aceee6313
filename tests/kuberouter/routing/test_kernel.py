"""Learned paths into kernel routes (pure planning, and the in-memory back end)."""

from __future__ import annotations

import hashlib
import ipaddress

from kuberouter.dataplane.routes import FakeRoutes
from kuberouter.routing.kernel import LocalNetwork, kernel_route, tunnel_name
from kuberouter.routing.settings import Overlay

LOCAL = LocalNetwork(
    subnets=(ipaddress.ip_network("192.168.1.0/24"),), addresses=("192.168.1.1",)
)


def test_shared_subnet_direct_other_subnet_tunnel_or_nothing() -> None:
    direct = kernel_route("10.244.1.0/24", ["192.168.1.2"], LOCAL, Overlay())
    assert direct is not None and direct.gateways == ("192.168.1.2",) and direct.tunnel is None
    across = kernel_route("10.244.2.0/24", ["192.168.2.3"], LOCAL, Overlay())
    assert across is not None and across.tunnel is not None and across.source == "192.168.1.1"
    assert (across.tunnel.local, across.tunnel.remote) == ("192.168.1.1", "192.168.2.3")
    assert kernel_route("10.244.2.0/24", ["192.168.2.3"], LOCAL, None) is None  # no overlay
    full = kernel_route("10.244.1.0/24", ["192.168.1.2"], LOCAL, Overlay(type="full"))
    assert full is not None and full.tunnel is not None  # full: a tunnel on the subnet too
    ecmp = kernel_route("10.96.0.10/32", ["192.168.1.3", "192.168.1.2"], LOCAL, None)
    assert ecmp is not None and ecmp.gateways == ("192.168.1.2", "192.168.1.3")


def test_tunnel_names_as_upstream_makes_them() -> None:
    # upstream's GenerateTunnelName: the SHA-256 of the address without dots or colons
    expected = "tun-" + hashlib.sha256(b"192168235").hexdigest()[:11]
    assert tunnel_name("192.168.2.35") == expected
    assert len(tunnel_name("2001:db8::1:2:3:4")) <= 15  # an interface name


def test_fake_back_end_keeps_tunnels_only_while_used_and_repairs_drift() -> None:
    routes = FakeRoutes(LOCAL, Overlay())
    routes.apply({"10.244.1.0/24": ["192.168.1.2"], "10.244.2.0/24": ["192.168.2.3"]})
    assert set(routes.table) == {"10.244.1.0/24", "10.244.2.0/24"}
    assert set(routes.tunnels) == {tunnel_name("192.168.2.3")}
    routes.apply({"10.244.2.0/24": []})  # withdrawn: the tunnel goes with its last route
    assert set(routes.table) == {"10.244.1.0/24"} and not routes.tunnels
    routes.drop("10.244.1.0/24")  # someone deleted it
    routes.reconcile({"10.244.1.0/24": ["192.168.1.2"]})
    assert set(routes.table) == {"10.244.1.0/24"} and routes.counts.synced == 1
    assert routes.flush() == 1 and not routes.table
