"""Reference evaluator: NetworkPolicy semantics written straight from the API documentation.

It shares nothing with the compiler but the model and the cluster snapshot, so the two
can be tested against each other. Rules, in the API's words and our documented choices:

1. Isolation is per direction. A pod is isolated for ingress (egress) when some policy in
   its namespace selects it and lists Ingress (Egress) in policyTypes; otherwise that
   direction is open. A flow needs the source's egress AND the destination's ingress.
2. Policies add up: an isolated direction allows a flow when ANY rule of ANY policy that
   isolates it allows it. No rules allow nothing; a rule with no peers allows every peer;
   a rule with no ports allows every port and protocol.
3. A peer with podSelector alone selects pods of the policy's namespace; with
   namespaceSelector alone every pod of the selected namespaces; with both, pods matching
   both (AND). Only policy-actionable pods are matched (see cluster.actionable).
4. ipBlock matches any address inside `cidr` and outside every `except`, pod addresses
   included: the API leaves that implementation-defined, upstream kube-router matches pod
   IPs by ipBlock, and the e2e suite ("egress access to server in CIDR block") expects it.
5. Ports: protocol must equal (default TCP); no port means every port of that protocol; a
   number matches it, or the range port..endPort; a name is resolved against the
   DESTINATION pod's container ports (name and protocol); a destination that is not a
   policy-actionable pod, or has no such port, matches nothing.
6. Traffic from an address of the destination pod's own node is always allowed (kubelet
   probes), as upstream's `addrtype --src-type LOCAL` rule does. Egress has no such bypass.
7. Host-network pods are not policed (neither direction) and are not pods to selectors:
   their addresses are node addresses, which only ipBlock can match.
8. A flow is between two addresses of the same family; a pod is allowed to reach another
   when the flow is allowed for every address family both have.
9. A pod talking to itself is judged like any other flow (the API makes no exception).
   Note the real data plane never sees that traffic: it stays on the pod's loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import attrs

from kuberouter.model import NetworkPolicy, Pod, PolicyPeer, PolicyPort, PolicyRule
from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol.cluster import Cluster, Location, actionable


def allowed(cluster: Cluster, src_pod: Pod, dst_pod: Pod, port: int, protocol: str) -> bool:
    """Whether `src_pod` may open a connection to `dst_pod` on port/protocol (rule 8)."""
    pairs = list(address_pairs(src_pod, dst_pod))
    if not pairs or src_pod.finished or dst_pod.finished:
        return False
    return all(flow_allowed(cluster, src, dst, port, protocol) for src, dst in pairs)


def address_pairs(src_pod: Pod, dst_pod: Pod) -> Iterator[tuple[str, str]]:
    """Every (source, destination) address pair of one family."""
    for src in src_pod.ips:
        for dst in dst_pod.ips:
            if (":" in src) == (":" in dst):
                yield src, dst


@attrs.frozen
class _Flow:
    src_ip: str
    src: Location
    dst_ip: str
    dst: Location
    port: int
    protocol: str


def flow_allowed(cluster: Cluster, src_ip: str, dst_ip: str, port: int, protocol: str) -> bool:
    """Whether a new connection from src_ip to dst_ip:port/protocol is allowed."""
    src_ip, dst_ip = _normal(src_ip), _normal(dst_ip)
    if (":" in src_ip) != (":" in dst_ip):
        raise ValueError(f"{src_ip} and {dst_ip} are of different address families")
    flow = _Flow(src_ip, cluster.locate(src_ip), dst_ip, cluster.locate(dst_ip), port, protocol)
    return _egress_allows(cluster, flow) and _ingress_allows(cluster, flow)


def _normal(ip: str) -> str:
    return ipaddress.ip_address(ip).compressed


def isolating_policies(cluster: Cluster, pod: Pod, direction: Direction) -> list[NetworkPolicy]:
    """The policies that select `pod` for `direction` (rule 1)."""
    if not actionable(pod):
        return []
    return [
        policy
        for policy in cluster.policies
        if policy.namespace == pod.namespace
        and policy.affects(direction)
        and policy.pod_selector.matches(pod.labels)
    ]


def _egress_allows(cluster: Cluster, flow: _Flow) -> bool:
    if flow.src.pod is None:
        return True
    policies = isolating_policies(cluster, flow.src.pod, "egress")
    if not policies:
        return True
    return any(
        _rule_allows(cluster, policy, rule, flow, "egress")
        for policy in policies
        for rule in policy.egress
    )


def _ingress_allows(cluster: Cluster, flow: _Flow) -> bool:
    if flow.dst.pod is None:
        return True
    policies = isolating_policies(cluster, flow.dst.pod, "ingress")
    if not policies:
        return True
    if flow.src_ip in cluster.node_ips.get(flow.dst.pod.node_name, ()):
        return True  # rule 6
    return any(
        _rule_allows(cluster, policy, rule, flow, "ingress")
        for policy in policies
        for rule in policy.ingress
    )


def _rule_allows(
    cluster: Cluster, policy: NetworkPolicy, rule: PolicyRule, flow: _Flow, direction: Direction
) -> bool:
    """Does `rule` admit the flow? The peer is the source for ingress, else the destination."""
    peer, peer_ip = (flow.src, flow.src_ip) if direction == "ingress" else (flow.dst, flow.dst_ip)
    peers_ok = not rule.peers or any(
        _peer_matches(cluster, policy, candidate, peer, peer_ip) for candidate in rule.peers
    )
    ports_ok = not rule.ports or any(
        _port_matches(entry, flow.dst.pod, flow.port, flow.protocol) for entry in rule.ports
    )
    return peers_ok and ports_ok


def _peer_matches(
    cluster: Cluster, policy: NetworkPolicy, peer: PolicyPeer, where: Location, ip: str
) -> bool:
    if peer.ip_block is not None:
        return peer.ip_block.contains(ip)
    pod = where.pod
    if pod is None:
        return False
    if peer.namespace_selector is None:
        in_namespace = pod.namespace == policy.namespace
    else:
        in_namespace = peer.namespace_selector.matches(cluster.namespace_labels(pod.namespace))
    pod_ok = peer.pod_selector is None or peer.pod_selector.matches(pod.labels)
    return in_namespace and pod_ok


def _port_matches(entry: PolicyPort, destination: Pod | None, port: int, protocol: str) -> bool:
    if entry.protocol != protocol:
        return False
    if entry.port is None:
        return True
    if isinstance(entry.port, int):
        return entry.port <= port <= (entry.end_port or entry.port)
    if destination is None:
        return False
    return any(
        declared.name == entry.port and declared.protocol == protocol and declared.port == port
        for declared in destination.container_ports
    )
