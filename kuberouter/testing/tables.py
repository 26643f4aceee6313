"""Server-side printing: the `Table` kubectl asks for on `get`, with its usual columns per kind.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`; answering
with a Table gives the familiar `kubectl get` output (STATUS, CLUSTER-IP, AGE, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kuberouter.testing.resources import Resource
from kuberouter.testing.selectors import field_value

Object = dict[str, Any]
Column = tuple[str, int, Callable[[Object], Any]]  # (name, priority: 1 = only with -o wide, cell)


def wants_table(accept: str) -> bool:
    return any("as=Table" in media and "g=meta.k8s.io" in media for media in accept.split(","))


def _age(obj: Object) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return human_duration(int((datetime.now(UTC) - created).total_seconds()))


def human_duration(seconds: int) -> str:
    """Ages as kubectl prints them: 45s, 3m12s, 25m, 5h3m, 30h, 3d4h, 40d, 3y."""
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d" if days < 365 * 2 else f"{days // 365}y"


def _field(path: str, default: str = "<none>") -> Callable[[Object], str]:
    return lambda obj: field_value(obj, path) or default


def _node_status(node: Object) -> str:
    conditions = node.get("status", {}).get("conditions") or []
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    status = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
    return status + (",SchedulingDisabled" if node.get("spec", {}).get("unschedulable") else "")


def _node_roles(node: Object) -> str:
    prefix = "node-role.kubernetes.io/"
    labels = node["metadata"].get("labels") or {}
    return ",".join(sorted(k[len(prefix) :] for k in labels if k.startswith(prefix))) or "<none>"


def _node_ip(node: Object) -> str:
    addresses = node.get("status", {}).get("addresses") or []
    return next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "<none>")


def _pod_ready(pod: Object) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_restarts(pod: Object) -> int:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount", 0)) for s in statuses)


def _ports(ports: list[Object] | None, node_ports: bool = False) -> str:
    def one(port: Object) -> str:
        text = str(port.get("port", "<unset>"))
        if node_ports and port.get("nodePort"):
            text += f":{port['nodePort']}"
        return f"{text}/{port.get('protocol', 'TCP')}"

    return ",".join(one(p) for p in ports or []) or "<none>"


def _external_ips(service: Object) -> str:
    ingress = service.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    ips = [i.get("ip") or i.get("hostname") for i in ingress]
    ips += service.get("spec", {}).get("externalIPs") or []
    if ips:
        return ",".join(filter(None, ips))
    return "<pending>" if service.get("spec", {}).get("type") == "LoadBalancer" else "<none>"


def _selector(selector: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or "<none>"


def _slice_endpoints(eps: Object) -> str:
    addresses = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addresses[:3])
    return (shown + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")) or "<unset>"


def _policy_selector(policy: Object) -> str:
    return _selector(policy.get("spec", {}).get("podSelector", {}).get("matchLabels"))


COLUMNS: dict[str, list[Column]] = {
    "Namespace": [("Status", 0, _field("status.phase")), ("Age", 0, _age)],
    "Node": [
        ("Status", 0, _node_status),
        ("Roles", 0, _node_roles),
        ("Age", 0, _age),
        ("Version", 0, _field("status.nodeInfo.kubeletVersion", "")),
        ("Internal-IP", 1, _node_ip),
        ("Pod-CIDR", 1, _field("spec.podCIDR")),
    ],
    "Pod": [
        ("Ready", 0, _pod_ready),
        ("Status", 0, _field("status.phase")),
        ("Restarts", 0, _pod_restarts),
        ("Age", 0, _age),
        ("IP", 1, _field("status.podIP")),
        ("Node", 1, _field("spec.nodeName")),
    ],
    "Service": [
        ("Type", 0, _field("spec.type")),
        ("Cluster-IP", 0, _field("spec.clusterIP")),
        ("External-IP", 0, _external_ips),
        ("Port(s)", 0, lambda s: _ports(s.get("spec", {}).get("ports"), node_ports=True)),
        ("Age", 0, _age),
        ("Selector", 1, lambda s: _selector(s.get("spec", {}).get("selector"))),
    ],
    "EndpointSlice": [
        ("AddressType", 0, _field("addressType")),
        ("Ports", 0, lambda e: _ports(e.get("ports"))),
        ("Endpoints", 0, _slice_endpoints),
        ("Age", 0, _age),
    ],
    "NetworkPolicy": [
        ("Pod-Selector", 0, _policy_selector),
        ("Age", 0, _age),
    ],
    "Lease": [("Holder", 0, _field("spec.holderIdentity", "")), ("Age", 0, _age)],
}


AGE_ONLY: list[Column] = [("Age", 0, _age)]  # kinds stored but not shown in detail


def _definition(name: str, priority: int) -> Object:
    kind = "integer" if name == "Restarts" else "string"
    return {
        "name": name,
        "type": kind,
        "format": "name" if name == "Name" else "",
        "description": "",
        "priority": priority,
    }


def _row_object(resource: Resource, obj: Object, include: str) -> Object | None:
    if include == "None":
        return None
    if include == "Object":
        return {"kind": resource.kind, "apiVersion": resource.api_version} | obj
    meta = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}
    return meta | {"metadata": obj["metadata"]}


def table(
    resource: Resource, items: list[Object], metadata: Object, query: dict[str, str]
) -> Object:
    columns = [("Name", 0, _field("metadata.name")), *COLUMNS.get(resource.kind, AGE_ONLY)]
    definitions = [_definition(name, priority) for name, priority, _ in columns]
    include = query.get("includeObject", "Metadata")
    rows = []
    for obj in items:
        row: Object = {"cells": [cell(obj) for _, _, cell in columns]}
        row["object"] = _row_object(resource, obj, include)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    }
