"""Node objects for the pod-network tests, built through Node.from_k8s like the API's."""

from __future__ import annotations

from kuberouter.model import Node


def node(
    name: str,
    *internal: str,
    pod_cidrs: tuple[str, ...] = (),
    external: tuple[str, ...] = (),
    annotations: dict[str, str] | None = None,
) -> Node:
    addresses = [{"type": "InternalIP", "address": ip} for ip in internal]
    addresses += [{"type": "ExternalIP", "address": ip} for ip in external]
    return Node.from_k8s(
        {
            "kind": "Node",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"podCIDRs": list(pod_cidrs)},
            "status": {"addresses": addresses},
        }
    )
