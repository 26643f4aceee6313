"""Small constructors for Kubernetes dicts and model values used across these tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kuberouter.model import Namespace, NetworkPolicy, Pod
from kuberouter.netpol.cluster import Cluster

NODE_IPS = {"node-1": ("192.168.0.1", "fd00:ffff::1"), "node-2": ("192.168.0.2", "fd00:ffff::2")}


def pod_dict(
    key: str,
    ips: tuple[str, ...],
    *,
    labels: dict[str, str] | None = None,
    node: str = "node-1",
    ports: tuple[tuple[str | None, int, str], ...] = (),
    host_network: bool = False,
    phase: str = "Running",
) -> dict[str, Any]:
    namespace, name = key.split("/")
    container_ports = [
        {"containerPort": number, "protocol": protocol, **({"name": port} if port else {})}
        for port, number, protocol in ports
    ]
    return {
        "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
        "spec": {
            "nodeName": node,
            "hostNetwork": host_network,
            "containers": [{"name": "main", "ports": container_ports}],
        },
        "status": {
            "phase": phase,
            "podIPs": [{"ip": ip} for ip in ips],
            "hostIPs": [{"ip": ip} for ip in NODE_IPS.get(node, ())],
        },
    }


def pod(key: str, *ips: str, **kwargs: Any) -> Pod:
    return Pod.from_k8s(pod_dict(key, ips, **kwargs))


def namespace(name: str, **labels: str) -> Namespace:
    return Namespace.from_k8s({"kind": "Namespace", "metadata": {"name": name, "labels": labels}})


def policy(key: str, spec: dict[str, Any]) -> NetworkPolicy:
    namespace_name, name = key.split("/")
    return NetworkPolicy.from_k8s(
        {
            "kind": "NetworkPolicy",
            "metadata": {"namespace": namespace_name, "name": name},
            "spec": spec,
        }
    )


def cluster(
    pods: Sequence[Pod],
    policies: Sequence[NetworkPolicy] = (),
    namespaces: Sequence[Namespace] = (),
) -> Cluster:
    return Cluster.build(namespaces=namespaces, pods=pods, policies=policies)
