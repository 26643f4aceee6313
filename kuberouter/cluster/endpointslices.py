"""The EndpointSlices kube-controller-manager keeps for Services with a selector, computed
from Services and Pods as the API returns them (a pure function; the box's controller
manager writes the difference).

As the EndpointSlice controller does:
- a Service with a non-empty selector gets the Pods of its namespace whose labels match,
  that have an address and have not finished (Succeeded, Failed); ExternalName Services
  and Services without a selector are left to their owners;
- per endpoint: ready = the Pod's Ready condition is True and it is not terminating (or
  the Service publishes not-ready addresses); serving = Ready regardless of terminating;
  terminating = the Pod has a deletionTimestamp; nodeName and a targetRef to the Pod;
- ports: each Service port's targetPort, a number as it is or a name looked up among the
  Pod's container ports of that protocol (a Pod without it gets no such port); Pods with
  the same resolved ports share slices of at most 100 endpoints, one set per address
  family the Service has;
- slices are labelled kubernetes.io/service-name and endpointslice.kubernetes.io/managed-by,
  and named after the Service and a digest of their ports and family, so recomputing
  gives the same names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

Object = dict[str, Any]
MANAGED_BY = "endpointslice-controller.k8s.io"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MAX_ENDPOINTS = 100


def desired_slices(services: Iterable[Object], pods: Iterable[Object]) -> dict[str, Object]:
    """ "namespace/name" -> EndpointSlice, for every Service this controller manages."""
    by_namespace: dict[str, list[Object]] = {}
    for pod in pods:
        by_namespace.setdefault(pod["metadata"].get("namespace", "default"), []).append(pod)
    found: dict[str, Object] = {}
    for service in services:
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector or (service.get("spec") or {}).get("type") == "ExternalName":
            continue
        namespace = service["metadata"].get("namespace", "default")
        members = [pod for pod in by_namespace.get(namespace, []) if _selected(pod, selector)]
        for endpoint_slice in slices_for(service, members):
            found[f"{namespace}/{endpoint_slice['metadata']['name']}"] = endpoint_slice
    return found


def _selected(pod: Object, selector: Mapping[str, str]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    status = pod.get("status") or {}
    return (
        all(labels.get(key) == value for key, value in selector.items())
        and bool(status.get("podIP"))
        and status.get("phase") not in ("Succeeded", "Failed")
    )


def slices_for(service: Object, pods: list[Object]) -> list[Object]:
    spec = service.get("spec") or {}
    families = spec.get("ipFamilies") or [_family_of(ip) for ip in spec.get("clusterIPs") or []]
    groups: dict[tuple[str, str], list[Object]] = {}  # (family, ports as JSON) -> endpoints
    for family in families or ["IPv4"]:
        for pod in pods:
            address = _address(pod, family)
            if address is None:
                continue
            ports = json.dumps(_ports(spec, pod), sort_keys=True)
            groups.setdefault((family, ports), []).append(_endpoint(service, pod, address))
    found = []
    for (family, ports), endpoints in sorted(groups.items()):
        endpoints.sort(key=lambda endpoint: endpoint["targetRef"]["name"])
        for start in range(0, len(endpoints), MAX_ENDPOINTS):
            part = endpoints[start : start + MAX_ENDPOINTS]
            found.append(_slice(service, family, json.loads(ports), part, start // MAX_ENDPOINTS))
    return found


def _family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def _address(pod: Object, family: str) -> str | None:
    status = pod.get("status") or {}
    addresses = [entry.get("ip") for entry in status.get("podIPs") or []] or [status.get("podIP")]
    return next((ip for ip in addresses if ip and _family_of(ip) == family), None)


def _ports(spec: Object, pod: Object) -> list[Object]:
    declared = [
        port
        for container in (pod.get("spec") or {}).get("containers") or []
        for port in container.get("ports") or []
    ]
    found = []
    for port in spec.get("ports") or []:
        protocol = port.get("protocol", "TCP")
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, str) and not target.isdigit():
            named = [
                entry["containerPort"]
                for entry in declared
                if entry.get("name") == target and entry.get("protocol", "TCP") == protocol
            ]
            if not named:
                continue  # this Pod does not serve the named port
            target = named[0]
        found.append({"name": port.get("name", ""), "port": int(target), "protocol": protocol})
    return found


def _endpoint(service: Object, pod: Object, address: str) -> Object:
    status = pod.get("status") or {}
    meta = pod["metadata"]
    ready_condition = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    terminating = bool(meta.get("deletionTimestamp"))
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    found: Object = {
        "addresses": [address],
        "conditions": {
            "ready": publish or (ready_condition and not terminating),
            "serving": publish or ready_condition,
            "terminating": terminating,
        },
        "targetRef": {
            "kind": "Pod",
            "namespace": meta.get("namespace", "default"),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
        },
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        found["nodeName"] = node
    return found


def _slice(
    service: Object, family: str, ports: list[Object], endpoints: list[Object], part: int
) -> Object:
    meta = service["metadata"]
    name, namespace = meta["name"], meta.get("namespace", "default")
    digest = hashlib.sha256(f"{family} {json.dumps(ports)} {part}".encode()).hexdigest()[:5]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-{digest}",
            "namespace": namespace,
            "labels": {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": name,
                    "uid": meta.get("uid", ""),
                    "controller": True,
                }
            ],
        },
        "addressType": family,
        "ports": ports,
        "endpoints": endpoints,
    }
