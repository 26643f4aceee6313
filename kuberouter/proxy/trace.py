"""What this node does with a new connection, read from the compiled state alone.

The decision, in the order the kernel takes it (both back ends program these steps):

1. Find the frontend: a cluster IP, externalIP or LoadBalancer IP with this port and
   protocol, or a nodePort on one of the node's addresses (any local address with
   --nodeport-bindon-all-ip; never a loopback address). None: "none", not ours; but in
   IPVS mode a service IP is an address of the node (on kube-dummy-if), so a port it does
   not serve is refused: "reject".
2. A LoadBalancer IP with loadBalancerSourceRanges drops sources outside them (a node
   whose own address is inside may also use the LoadBalancer IPs as sources).
3. No usable endpoint anywhere: "reject".
4. Cluster IP: DNAT to the internal endpoints (Local policy: this node's; none: "drop");
   masquerade when the source is outside the cluster's pod network (or always, with
   --masquerade-all).
5. External address, Cluster policy: DNAT to any endpoint, masqueraded.
   Local policy: a pod's connection goes to any endpoint as if it had left the cluster
   and come back, unmasqueraded; the node's own connection goes to any endpoint,
   masqueraded; everything else goes to this node's endpoints, client address kept
   (none: "drop").
6. Hairpin: a connection from an endpoint that lands on itself is masqueraded when the
   service asks for it (--hairpin-mode or the annotations); the answer then says
   "hairpin": true.

Session affinity only decides which of the listed endpoints a client keeps getting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from kuberouter.proxy.state import Backend, Frontend, ProxyState, VirtualService

TraceVerdict = Literal["dnat", "reject", "drop", "none"]


@attrs.frozen(kw_only=True)
class TraceResult:
    verdict: TraceVerdict
    endpoints: tuple[str, ...] = ()  # "IP:PORT", sorted
    masquerade: bool = False
    hairpin: bool = False
    service: str | None = None  # the VirtualService key that matched
    frontend: str | None = None  # e.g. "NodePort 10.0.0.1:30080"
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "verdict": self.verdict,
            "endpoints": list(self.endpoints),
            "masquerade": self.masquerade,
        }
        if self.hairpin:
            found["hairpin"] = True
        if self.service is not None:
            found["service"] = self.service
            found["frontend"] = self.frontend
            found["reason"] = self.reason
        return found


def in_networks(address: str, cidrs: Iterable[str]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(
        ip in ipaddress.ip_network(cidr) for cidr in cidrs if (":" in cidr) == (ip.version == 6)
    )


def find_frontend(
    state: ProxyState, dst: str, port: int, protocol: str
) -> tuple[VirtualService, Frontend] | None:
    """The virtual service and frontend a new connection to dst:port/protocol hits."""
    family = 6 if ":" in dst else 4
    node_port_ok = takes_node_ports(state, dst)
    for service in state.virtual_services():
        if service.protocol != protocol or service.family != family:
            continue
        for frontend in service.frontends:
            if frontend.port != port:
                continue
            if frontend.address == dst or (frontend.address is None and node_port_ok):
                return service, frontend
    return None


def takes_node_ports(state: ProxyState, dst: str) -> bool:
    if ipaddress.ip_address(dst).is_loopback:
        return False
    return dst in state.node.addresses  # with bindon-all: every local address we know of


def trace(state: ProxyState, src: str, dst: str, port: int, protocol: str) -> TraceResult:
    src, dst = _normal(src), _normal(dst)
    found = find_frontend(state, dst, port, protocol.upper())
    if found is None:
        if state.config.mode == "ipvs" and _service_ip(state, dst):
            # the IP is on kube-dummy-if: KUBE-ROUTER-SERVICES (or the local stack) refuses
            return TraceResult(verdict="reject", reason="a service IP, on a port it does not serve")
        return TraceResult(verdict="none", reason="not a service address")
    service, frontend = found

    def result(
        verdict: TraceVerdict,
        reason: str,
        backends: Iterable[Backend] = (),
        *,
        masquerade: bool = False,
    ) -> TraceResult:
        chosen = tuple(backends)
        hairpin = service.hairpins(frontend) and any(b.ip == src for b in chosen)
        return TraceResult(
            verdict=verdict,
            endpoints=tuple(sorted(b.address for b in chosen)),
            masquerade=masquerade or hairpin or (verdict == "dnat" and state.config.masquerade_all),
            hairpin=hairpin,
            service=service.key,
            frontend=frontend.describe(),
            reason=reason,
        )

    if frontend.kind == "LoadBalancer" and not _source_allowed(state, service, src):
        return result("drop", "source outside loadBalancerSourceRanges")
    if not service.has_endpoints:
        return result("reject", "no usable endpoint")
    pod_traffic = in_networks(src, state.node.pod_cidrs)
    if not frontend.external:
        if not service.internal_backends:
            return result("drop", "internalTrafficPolicy Local and no endpoint on this node")
        masquerade = bool(state.node.pod_cidrs_of(service.family)) and not pod_traffic
        return result("dnat", "cluster IP", service.internal_backends, masquerade=masquerade)
    if not service.external_local:
        return result(
            "dnat", "externalTrafficPolicy Cluster", service.cluster_backends, masquerade=True
        )
    if pod_traffic:
        return result(
            "dnat", "pod traffic to an external address (short-circuit)", service.cluster_backends
        )
    if src in state.node.addresses:
        return result("dnat", "this node's own traffic", service.cluster_backends, masquerade=True)
    if not service.local_backends:
        return result("drop", "externalTrafficPolicy Local and no endpoint on this node")
    return result("dnat", "externalTrafficPolicy Local", service.local_backends)


def _source_allowed(state: ProxyState, service: VirtualService, src: str) -> bool:
    if not service.source_ranges or in_networks(src, service.source_ranges):
        return True
    node_inside = any(
        in_networks(ip, service.source_ranges) for ip in state.node.addresses_of(service.family)
    )
    lb_ips = [f.address for f in service.frontends if f.kind == "LoadBalancer"]
    return node_inside and src in lb_ips


def _service_ip(state: ProxyState, address: str) -> bool:
    return any(f.address == address for vs in state.virtual_services() for f in vs.frontends)


def _normal(address: str) -> str:
    return ipaddress.ip_address(address).compressed
