"""Nodes, Services and EndpointSlices for the routing tests, as the API would send them."""

from __future__ import annotations

from typing import Any

from kuberouter.k8s.store import Store
from kuberouter.model import EndpointSlice, Node, Service


def node(name: str, ip: str, *pod_cidrs: str, ip6: str | None = None, **notes: str) -> Node:
    """`notes`: kube-router.io/ annotations, "_" in the name standing for "." and "__" for
    "-" (rr_server, node_asn, path__prepend_as)."""
    addresses = [{"type": "InternalIP", "address": ip}]
    if ip6:
        addresses.append({"type": "InternalIP", "address": ip6})
    annotations = {
        "kube-router.io/" + k.replace("__", "-").replace("_", "."): v for k, v in notes.items()
    }
    return Node.from_k8s({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"podCIDRs": list(pod_cidrs)},
        "status": {"addresses": addresses},
    })  # fmt: skip


def service(
    name: str,
    cluster_ip: str,
    *,
    kind: str = "ClusterIP",
    external_ips: tuple[str, ...] = (),
    lb_ips: tuple[str, ...] = (),
    etp: str = "Cluster",
    itp: str = "Cluster",
    **notes: str,
) -> Service:
    annotations = {f"kube-router.io/service.{k.replace('_', '.')}": v for k, v in notes.items()}
    spec: dict[str, Any] = {
        "type": kind,
        "clusterIP": cluster_ip,
        "externalIPs": list(external_ips),
        "ports": [{"port": 80}],
        "internalTrafficPolicy": itp,
    }
    if kind in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = etp
    status = {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb_ips]}}
    return Service.from_k8s({
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": spec,
        "status": status,
    })  # fmt: skip


def endpoints(service_name: str, *on_nodes: tuple[str, bool]) -> EndpointSlice:
    """One endpoint per (node name, ready)."""
    return EndpointSlice.from_k8s({
        "metadata": {"name": f"{service_name}-abc", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.244.9.{i + 1}"], "nodeName": name, "conditions": {"ready": ready}}
            for i, (name, ready) in enumerate(on_nodes)
        ],
        "ports": [{"port": 8080}],
    })  # fmt: skip


def store_of(*objects: Node | Service | EndpointSlice) -> Store:
    store = Store()
    for value in objects:
        store.apply(type(value).__name__, value.key, value)
    return store
