"""The service proxy's settings: the agent flags that change what a Service compiles to.

`ProxyConfig.from_options` is the only reader of those flags, so the agent, `service trace`
and the tests compile with exactly the same settings. Ranges are kept as parsed networks
(host bits dropped, as Go's net.ParseCIDR does).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import attrs

from kuberouter.netpol.ruleset import Family
from kuberouter.options import Options

Mode = Literal["ipvs", "nftables"]
MODES: tuple[Mode, ...] = ("ipvs", "nftables")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(texts: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts)


def node_port_range(text: str) -> tuple[int, int]:
    """--service-node-port-range: "30000-32767" or "30000:32767" (checked by the CLI)."""
    low, high = re.split(r"[-:]", text, maxsplit=1)
    return int(low), int(high)


@attrs.frozen(kw_only=True)
class ProxyConfig:
    mode: Mode = "ipvs"
    families: tuple[Family, ...] = (4,)
    masquerade_all: bool = False
    hairpin_mode: bool = False
    nodeport_bindon_all_ip: bool = False
    node_port_range: tuple[int, int] = (30000, 32767)
    strict_external_ip_validation: bool = True
    external_ip_ranges: tuple[Network, ...] = ()
    load_balancer_ip_ranges: tuple[Network, ...] = ()
    excluded_cidrs: tuple[Network, ...] = ()
    permit_all: bool = True  # --ipvs-permit-all
    graceful_termination: bool = False
    graceful_period: float = 30.0
    tcp_timeout: float = 0.0  # 0: the kernel's default
    tcpfin_timeout: float = 0.0
    udp_timeout: float = 0.0

    @classmethod
    def from_options(cls, options: Options) -> ProxyConfig:
        families: list[Family] = []
        if options.enable_ipv4:
            families.append(4)
        if options.enable_ipv6:
            families.append(6)
        return cls(
            mode="nftables" if options.service_proxy_mode == "nftables" else "ipvs",
            families=tuple(families),
            masquerade_all=options.masquerade_all,
            hairpin_mode=options.hairpin_mode,
            nodeport_bindon_all_ip=options.nodeport_bindon_all_ip,
            node_port_range=node_port_range(options.service_node_port_range),
            strict_external_ip_validation=options.strict_external_ip_validation,
            external_ip_ranges=networks(options.service_external_ip_range),
            load_balancer_ip_ranges=networks(options.loadbalancer_ip_range),
            excluded_cidrs=networks(options.excluded_cidrs),
            permit_all=options.ipvs_permit_all,
            graceful_termination=options.ipvs_graceful_termination,
            graceful_period=options.ipvs_graceful_period,
            tcp_timeout=options.service_tcp_timeout,
            tcpfin_timeout=options.service_tcpfin_timeout,
            udp_timeout=options.service_udp_timeout,
        )

    def in_ranges(self, address: str, ranges: tuple[Network, ...]) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in ranges)
