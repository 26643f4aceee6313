"""Small builders of Service and EndpointSlice objects (as the API would send them)."""

from __future__ import annotations

from typing import Any

from kuberouter.model import EndpointSlice, Service


def service(name: str, *cluster_ips: str, ports: list[dict[str, Any]] | None = None,
            annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
            status: dict[str, Any] | None = None, **spec: Any) -> Service:  # fmt: skip
    body: dict[str, Any] = {
        "clusterIP": cluster_ips[0] if cluster_ips else "None",
        "clusterIPs": list(cluster_ips) or ["None"],
        "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080}],
        **spec,
    }
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if annotations:
        meta["annotations"] = annotations
    if labels:
        meta["labels"] = labels
    return Service.from_k8s({"metadata": meta, "spec": body, "status": status or {}})


def endpoint(ip: str, node: str = "node-1", *, ready: bool = True, serving: bool | None = None,
             terminating: bool = False) -> dict[str, Any]:  # fmt: skip
    conditions = {"ready": ready, "serving": ready if serving is None else serving,
                  "terminating": terminating}  # fmt: skip
    return {"addresses": [ip], "nodeName": node, "conditions": conditions}


def slice_of(service_name: str, *endpoints: dict[str, Any], name: str = "",
             ports: list[dict[str, Any]] | None = None, family: str = "IPv4") -> EndpointSlice:  # fmt: skip
    return EndpointSlice.from_k8s({
        "metadata": {"name": name or f"{service_name}-{family.lower()}", "namespace": "ns",
                     "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": family,
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": list(endpoints),
    })  # fmt: skip
