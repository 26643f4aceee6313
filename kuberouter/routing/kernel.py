"""How a learned best path becomes a kernel route (pure): via its next hop, through a tunnel,
or not at all. Upstream kube-router's rules:
- a next hop on a subnet the node is on: a plain route via that next hop;
- otherwise, with --enable-overlay: through a tunnel to the next hop (IPIP, or FoU with
  --overlay-encap=fou), named tun-<11 hex digits of the SHA-256 of the address without its
  dots or colons>, with the node's own address of that family as source. With
  --overlay-type=full every next hop gets a tunnel, on a shared subnet too;
- otherwise nothing: the route is the upstream routers' business.
Several next hops (ECMP) are kept when all are on shared subnets.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence

import attrs

from kuberouter.routing.settings import Overlay

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class Tunnel:
    name: str
    local: str
    remote: str
    encap: str  # "ipip" or "fou"
    port: int = 0  # the FoU destination port


@attrs.frozen
class KernelRoute:
    prefix: str
    gateways: tuple[str, ...] = ()  # via these next hops
    tunnel: Tunnel | None = None  # or through this tunnel
    source: str | None = None  # the source address of a tunnel route


@attrs.frozen(kw_only=True)
class LocalNetwork:
    """What the planner needs to know of the node's own interfaces."""

    subnets: tuple[IPNetwork, ...] = ()  # connected subnets of the node's addresses
    addresses: tuple[str, ...] = ()  # the node's own addresses, primary first per family

    def on_shared_subnet(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in subnet for subnet in self.subnets if subnet.version == ip.version)

    def own(self, version: int) -> str | None:
        return next((a for a in self.addresses if ipaddress.ip_address(a).version == version), None)


def tunnel_name(address: str) -> str:
    stripped = address.replace(".", "").replace(":", "")
    return "tun-" + hashlib.sha256(stripped.encode()).hexdigest()[:11]


def kernel_route(
    prefix: str, next_hops: Sequence[str], local: LocalNetwork, overlay: Overlay | None
) -> KernelRoute | None:
    """The route for `prefix` learned via `next_hops`, or None (not ours to install)."""
    hops = sorted(set(next_hops))
    if not hops:
        return None
    shared = [hop for hop in hops if local.on_shared_subnet(hop)]
    full = overlay is not None and overlay.type == "full"
    if shared and not full:
        return KernelRoute(prefix, gateways=tuple(shared))
    if overlay is None:
        return None
    remote = hops[0]
    version = ipaddress.ip_address(remote).version
    own = local.own(version)
    if own is None:
        return None
    tunnel = Tunnel(tunnel_name(remote), own, remote, overlay.encap, overlay.port)
    return KernelRoute(prefix, tunnel=tunnel, source=own)


def tunnels_of(routes: Iterable[KernelRoute]) -> dict[str, Tunnel]:
    """The tunnels some route goes through, by name."""
    return {r.tunnel.name: r.tunnel for r in routes if r.tunnel is not None}
