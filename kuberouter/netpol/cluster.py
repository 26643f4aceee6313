"""A snapshot of the objects the firewall depends on, plus where addresses live.

This is data shared by the compiler, the reference evaluator and `simulate`; it holds no
policy semantics. Facts kept here:

- a pod takes part in policy (selected, policed, matched as a peer) when it is not
  host-network, not finished (Succeeded/Failed) and has an address, like upstream's
  `isNetPolActionable`;
- a node's addresses are its pods' `status.hostIPs` plus the addresses of its
  host-network pods (a snapshot may carry no Node objects);
- a pod whose Namespace object is absent lives in an implicit namespace that carries only
  the automatic `kubernetes.io/metadata.name` label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

from kuberouter.model import Namespace, NetworkPolicy, Pod

Place = Literal["pod", "host", "external"]


def actionable(pod: Pod) -> bool:
    """Whether network policy applies to the pod (as target or as peer)."""
    return not pod.host_network and not pod.finished and bool(pod.ips)


@attrs.frozen(kw_only=True)
class Location:
    """Where an address lives: a policed pod, a node's own address, or outside the cluster."""

    place: Place
    node: str | None = None
    pod: Pod | None = None


@attrs.frozen(kw_only=True, eq=False)
class Cluster:
    namespaces: Mapping[str, Namespace]
    pods: tuple[Pod, ...]
    policies: tuple[NetworkPolicy, ...]
    node_ips: Mapping[str, tuple[str, ...]]  # node name -> its addresses
    pods_by_key: Mapping[str, Pod]
    _by_ip: Mapping[str, Location]

    @classmethod
    def build(
        cls,
        namespaces: Iterable[Namespace] = (),
        pods: Iterable[Pod] = (),
        policies: Iterable[NetworkPolicy] = (),
        node_ips: Mapping[str, Iterable[str]] | None = None,
    ) -> Cluster:
        pods = tuple(pods)
        spaces = {namespace.name: namespace for namespace in namespaces}
        for pod in pods:
            spaces.setdefault(pod.namespace, Namespace.implicit(pod.namespace))
        nodes = _node_addresses(pods, node_ips or {})
        return cls(
            namespaces=spaces,
            pods=pods,
            policies=tuple(policies),
            node_ips=nodes,
            pods_by_key={pod.key: pod for pod in pods},
            by_ip=_locations(pods, nodes),
        )

    def namespace_labels(self, name: str) -> Mapping[str, str]:
        return self.namespaces[name].labels if name in self.namespaces else {}

    def locate(self, ip: str) -> Location:
        return self._by_ip.get(ip, Location(place="external"))

    @property
    def nodes(self) -> tuple[str, ...]:
        names = {pod.node_name for pod in self.pods if pod.node_name} | set(self.node_ips)
        return tuple(sorted(names))


def _node_addresses(
    pods: tuple[Pod, ...], given: Mapping[str, Iterable[str]]
) -> dict[str, tuple[str, ...]]:
    found: dict[str, dict[str, None]] = {name: dict.fromkeys(ips) for name, ips in given.items()}
    for pod in pods:
        if not pod.node_name:
            continue
        addresses = found.setdefault(pod.node_name, {})
        addresses.update(dict.fromkeys(pod.host_ips))
        if pod.host_network:
            addresses.update(dict.fromkeys(pod.ips))
    return {name: tuple(ips) for name, ips in found.items()}


def _locations(pods: tuple[Pod, ...], nodes: Mapping[str, tuple[str, ...]]) -> dict[str, Location]:
    located: dict[str, Location] = {}
    for node, ips in nodes.items():
        for ip in ips:
            located[ip] = Location(place="host", node=node)
    for pod in pods:
        if actionable(pod):
            for ip in pod.ips:
                located.setdefault(ip, Location(place="pod", node=pod.node_name or None, pod=pod))
    return located
