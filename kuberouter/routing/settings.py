"""The routing controller's settings: the router flags, read once into typed values.

The command line was checked already (kuberouter.cli.validate); here the values are only
turned into what the planner uses: passwords decoded from base64 (from the flag, or the
file that --peer-router-passwords-file names), the cluster ASN's 0 meaning 64512, the
global peers as `BgpPeer`s. Secrets stay out of repr().
"""

from __future__ import annotations

import base64
import ipaddress

import attrs

from kuberouter.model.node_bgp import BfdOptions, BgpPeer
from kuberouter.options import Options

DEFAULT_CLUSTER_ASN = 64512  # upstream's: the first private ASN


@attrs.frozen(kw_only=True)
class Bfd:
    port: int = 3784
    multiplier: int = 3
    min_tx_ms: int = 1000
    min_rx_ms: int = 1000


@attrs.frozen(kw_only=True)
class GracefulRestart:
    time: float = 90.0
    deferral_time: float = 360.0
    ipv6: bool = False  # the large-cluster fork's --bgp-graceful-restart-ipv6


@attrs.frozen(kw_only=True)
class Overlay:
    type: str = "subnet"  # "subnet": tunnels to nodes on other subnets only; "full": all
    encap: str = "ipip"  # or "fou"
    port: int = 5555  # the FoU UDP port


@attrs.frozen(kw_only=True)
class RouterSettings:
    families: tuple[int, ...] = (4,)  # 4 and/or 6, from --enable-ipv4/--enable-ipv6
    cluster_asn: int = DEFAULT_CLUSTER_ASN
    enable_ibgp: bool = True
    full_mesh: bool = True
    port: int = 179
    hold_time: int = 90
    router_id: str = ""  # "", "generate" or an IPv4 address
    peers: tuple[BgpPeer, ...] = ()  # --peer-router-*
    multihop_ttl: int = 0
    override_next_hop: bool = False
    advertise_pod_cidr: bool = True
    advertise_cluster_ip: bool = False
    advertise_external_ip: bool = False
    advertise_loadbalancer_ip: bool = False
    service_range_aggregates: tuple[str, ...] = ()  # --advertise-service-cluster-ip-range
    graceful_restart: GracefulRestart | None = None
    bfd: Bfd | None = None
    overlay: Overlay | None = None  # None: --enable-overlay=false

    @classmethod
    def from_options(cls, opts: Options) -> RouterSettings:
        families = tuple(f for f, on in ((4, opts.enable_ipv4), (6, opts.enable_ipv6)) if on)
        return cls(
            families=families,
            cluster_asn=opts.cluster_asn or DEFAULT_CLUSTER_ASN,
            enable_ibgp=opts.enable_ibgp,
            full_mesh=opts.nodes_full_mesh,
            port=opts.bgp_port,
            hold_time=int(opts.bgp_holdtime),
            router_id=opts.router_id,
            peers=global_peers(opts),
            multihop_ttl=opts.peer_router_multihop_ttl,
            override_next_hop=opts.override_nexthop,
            advertise_pod_cidr=opts.advertise_pod_cidr,
            advertise_cluster_ip=opts.advertise_cluster_ip,
            advertise_external_ip=opts.advertise_external_ip,
            advertise_loadbalancer_ip=opts.advertise_loadbalancer_ip,
            service_range_aggregates=tuple(
                ipaddress.ip_network(text, strict=False).compressed
                for text in opts.advertise_service_cluster_ip_range
            ),
            graceful_restart=(
                GracefulRestart(
                    time=opts.bgp_graceful_restart_time,
                    deferral_time=opts.bgp_graceful_restart_deferral_time,
                    ipv6=opts.bgp_graceful_restart_ipv6,
                )
                if opts.bgp_graceful_restart
                else None
            ),
            bfd=(
                Bfd(
                    port=opts.bfd_port,
                    multiplier=opts.bfd_detection_multiplier,
                    min_tx_ms=opts.bfd_desired_min_tx_interval,
                    min_rx_ms=opts.bfd_required_min_rx_interval,
                )
                if opts.enable_bfd
                else None
            ),
            overlay=(
                Overlay(
                    type=opts.overlay_type, encap=opts.overlay_encap, port=opts.overlay_encap_port
                )
                if opts.enable_overlay
                else None
            ),
        )


def global_peers(opts: Options) -> tuple[BgpPeer, ...]:
    """--peer-router-ips with their ASNs, ports and passwords, matched by position."""
    passwords = list(opts.peer_router_passwords)
    if not passwords and opts.peer_router_passwords_file:
        with open(opts.peer_router_passwords_file, encoding="utf-8") as file:
            passwords = file.read().split(",")
    peers = []
    for i, address in enumerate(opts.peer_router_ips):
        secret = passwords[i].replace("\r", "").replace("\n", "") if passwords else ""
        port = opts.peer_router_ports[i] if opts.peer_router_ports else 0
        peers.append(
            BgpPeer(
                address=ipaddress.ip_address(address).compressed,
                asn=opts.peer_router_asns[i],
                port=port or None,
                password=base64.b64decode(secret) if secret else None,
                bfd=BfdOptions() if opts.enable_bfd else None,
            )
        )
    return tuple(peers)
