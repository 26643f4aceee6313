"""Who this node's BGP speaker is and whom it peers with: a pure function of the Nodes.

Upstream kube-router's rules, with one fix:
- Our AS: --cluster-asn with --nodes-full-mesh (the node.asn annotation is then ignored);
  without full mesh, the node's kube-router.io/node.asn (required).
- Node peers (--enable-ibgp): every other node whose primary address is of our family;
  without full mesh, only those annotated with our AS. Route reflection: a client
  (rr.client) peers with the servers (rr.server) only; a server peers with every node and
  marks the clients as its route-reflector clients, with its cluster ID. Upstream lets a
  plain node dial the clients, sessions that never come up; here it skips them.
- External peers: --peer-router-ips (and their ASNs, ports, passwords, multihop TTL); when
  none are given, the node's kube-router.io/peers (or the older peer.* annotations).
- The router ID: --router-id, "generate" (a hash of the primary address, as upstream), or
  the primary IPv4 address. We listen on kube-router.io/bgp-local-addresses, else the
  node's primary addresses, and dial node peers from our primary address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Literal

import attrs

from kuberouter.model import Node
from kuberouter.model.node_bgp import BfdOptions, BgpPeer, NodeBgp
from kuberouter.routing.settings import Bfd, RouterSettings
from pybgp.config import NeighborConfig
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family

PeerKind = Literal["node", "external"]


class PlanError(ValueError):
    """This node cannot run BGP as configured (said once, on its Node, until it changes)."""


@attrs.frozen(kw_only=True)
class Identity:
    """The speaker's own settings: a change to any of them restarts it."""

    asn: int
    router_id: str
    cluster_id: str | None  # route reflection: ours, when we are a server
    listen: tuple[str, ...]
    port: int


@attrs.frozen(kw_only=True)
class Peering:
    neighbor: NeighborConfig
    kind: PeerKind
    node: str = ""  # the peer's Node name, for node peers


def identity(node: Node, bgp: NodeBgp, settings: RouterSettings) -> Identity:
    if settings.full_mesh:
        asn = settings.cluster_asn
    elif bgp.asn is None:
        raise PlanError("--nodes-full-mesh=false needs the node's AS in kube-router.io/node.asn")
    else:
        asn = bgp.asn
    primary = primary_address(node, settings)
    listen = bgp.local_addresses or tuple(
        ip for ip in (node.primary_ip(f) for f in settings.families) if ip is not None
    )
    return Identity(
        asn=asn,
        router_id=router_id(settings.router_id, primary),
        cluster_id=bgp.rr_server,
        listen=listen,
        port=settings.port,
    )


def primary_address(node: Node, settings: RouterSettings) -> str:
    """The node's address for BGP: its first InternalIP (else ExternalIP) of our first
    family, as upstream's primary node IP."""
    for family in settings.families:
        found = node.primary_ip(family)
        if found is not None:
            return found
    raise PlanError(f"node {node.name} has no IPv{settings.families[0]} InternalIP or ExternalIP")


def router_id(configured: str, primary: str) -> str:
    if configured == "generate":
        return generated_router_id(primary)
    if configured:
        return configured
    if ":" in primary:
        raise PlanError("--router-id is needed when the node's primary address is IPv6")
    return primary


def generated_router_id(primary: str) -> str:
    """FNV-1a (32 bits) over the address's 16 bytes (IPv4 mapped), as upstream's generate."""
    address = ipaddress.ip_address(primary)
    packed = (
        ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + address.packed).packed
        if address.version == 4
        else address.packed
    )
    value = 0x811C9DC5
    for byte in packed:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return str(ipaddress.IPv4Address(value))


def peerings(
    node: Node,
    bgp: Mapping[str, NodeBgp],
    nodes: Mapping[str, Node],
    settings: RouterSettings,
    ours: Identity,
) -> dict[str, Peering]:
    """Every session this node wants, by neighbour address. `bgp`: each node's annotations
    (kept at their last good values)."""
    wanted: dict[str, Peering] = {}
    if settings.enable_ibgp:
        for other in sorted(nodes.values(), key=lambda n: n.name):
            peering = _node_peering(node, bgp, other, settings, ours)
            if peering is not None:
                wanted[peering.neighbor.address] = peering
    own = bgp.get(node.name, NodeBgp())
    external = settings.peers or own.peers or ()
    for peer in external:
        wanted[peer.address] = _external_peering(node, peer, settings, ours)
    return wanted


def _node_peering(
    node: Node,
    bgp: Mapping[str, NodeBgp],
    other: Node,
    settings: RouterSettings,
    ours: Identity,
) -> Peering | None:
    if other.name == node.name:
        return None
    mine, theirs = bgp.get(node.name, NodeBgp()), bgp.get(other.name, NodeBgp())
    local = primary_address(node, settings)
    address = other.primary_ip(6 if ":" in local else 4)
    if address is None or address == local:
        return None
    if mine.rr_client is not None and theirs.rr_server is None:
        return None  # a client peers with the servers only
    if mine.rr_server is None and mine.rr_client is None and theirs.rr_client is not None:
        return None  # clients take no session from other clients or plain nodes
    if not settings.full_mesh and theirs.asn != ours.asn:
        return None
    neighbor = NeighborConfig(
        address=address,
        peer_asn=ours.asn,
        description=f"node {other.name}",
        local_address=local,
        port=settings.port,
        hold_time=settings.hold_time,
        connect_retry=5.0,
        families=families(settings),
        route_reflector_client=mine.rr_server is not None and theirs.rr_client is not None,
        **_bfd(settings, None),
    )
    return Peering(neighbor=neighbor, kind="node", node=other.name)


def _external_peering(
    node: Node, peer: BgpPeer, settings: RouterSettings, ours: Identity
) -> Peering:
    version = 6 if ":" in peer.address else 4
    local = peer.local_address or node.primary_ip(version)
    ebgp = peer.asn != ours.asn
    neighbor = NeighborConfig(
        address=peer.address,
        peer_asn=peer.asn,
        description="external",
        md5_key=peer.password,
        local_address=local,
        port=peer.port or settings.port,
        hold_time=settings.hold_time,
        connect_retry=5.0,
        multihop_ttl=settings.multihop_ttl if ebgp and settings.multihop_ttl > 1 else None,
        families=families(settings),
        next_hop_self=settings.override_next_hop,
        **_bfd(settings, peer),
    )
    return Peering(neighbor=neighbor, kind="external")


def families(settings: RouterSettings) -> tuple[Family, ...]:
    return tuple(IPV4_UNICAST if f == 4 else IPV6_UNICAST for f in settings.families)


def _bfd(settings: RouterSettings, peer: BgpPeer | None) -> dict[str, object]:
    """BFD for a session: --enable-bfd's timers, or a peer annotation's own where given."""
    own = peer.bfd if peer is not None else None
    if settings.bfd is None and own is None:
        return {}
    base = settings.bfd or Bfd()
    chosen = own or BfdOptions()
    return {
        "bfd": True,
        "bfd_min_rx_ms": _given(chosen.min_rx_ms, base.min_rx_ms),
        "bfd_min_tx_ms": _given(chosen.min_tx_ms, base.min_tx_ms),
        "bfd_multiplier": _given(chosen.multiplier, base.multiplier),
    }


def _given(value: int | None, default: int) -> int:
    return default if value is None else value
