"""What the API server adds to an object on create and update: metadata, defaults, allocations.

Only the defaults a node agent reads are filled (service clusterIP and nodePorts,
protocols, policyTypes, the namespace name label, podIP <-> podIPs), so agents see
objects shaped as on a real cluster. There is no kubelet or controller manager:
status is whatever the client or the test writes.
"""

from __future__ import annotations

import ipaddress
import random
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from kuberouter.testing import leases, services
from kuberouter.testing.errors import bad_request, invalid
from kuberouter.testing.resources import Resource
from kuberouter.testing.services import Network

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"
NODE_PORT_RANGE = range(30000, 32768)
WHOLE_OBJECT = "*"  # an update of spec and status together (test injection, not an API path)


def clone(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, scalars): what copy.deepcopy gives
    for these, several times faster (no memo: these values hold no cycles)."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    return value


def now_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _validate_name(resource: Resource, name: str) -> None:
    # Namespaces and services become DNS labels; everything else a DNS subdomain.
    label_only = resource.kind in ("Namespace", "Service")
    pattern, limit = (_LABEL, 63) if label_only else (_SUBDOMAIN, 253)
    if len(name) > limit or not pattern.match(name):
        raise invalid(resource, name, "metadata.name", f"Invalid value: {name!r}: not a valid name")


def require_resource_version(resource: Resource, name: str, body: Any) -> None:
    """For kinds that forbid blind updates (Lease): a PUT must name the version it replaces."""
    meta = body.get("metadata") if isinstance(body, dict) else None
    if not (isinstance(meta, dict) and meta.get("resourceVersion")):
        detail = "Invalid value: 0x0: must be specified for an update"
        raise invalid(resource, name, "metadata.resourceVersion", detail)


def prepare_create(resource: Resource, body: Any, namespace: str | None) -> dict[str, Any]:
    """Stamp server-owned metadata on a new object (resourceVersion is set by the store)."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    _check_kind(resource, body)
    obj = clone(body)
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
    _set_namespace(resource, meta, namespace)
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_SUFFIX_CHARS, k=5))
    if not meta.get("name"):
        raise invalid(
            resource, "", "metadata.name", "Required value: name or generateName is required"
        )
    _validate_name(resource, meta["name"])
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_timestamp()
    meta["generation"] = 1
    for server_owned in ("resourceVersion", "deletionTimestamp", "selfLink", "managedFields"):
        meta.pop(server_owned, None)
    return obj


def _check_kind(resource: Resource, body: dict[str, Any]) -> None:
    """A body of another kind is a client bug (a Service sent to the pods URL): say so."""
    for field, expected in (("kind", resource.kind), ("apiVersion", resource.api_version)):
        if body.get(field) not in (None, "", expected):
            raise bad_request(
                f"the {field} in the data ({body[field]}) does not match the expected {expected}"
            )


def _set_namespace(resource: Resource, meta: dict[str, Any], namespace: str | None) -> None:
    if not resource.namespaced:
        meta.pop("namespace", None)
        return
    given = meta.get("namespace")
    if given and namespace and given != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = given or namespace or "default"


def prepare_update(
    resource: Resource, old: dict[str, Any], body: Any, subresource: str | None
) -> dict[str, Any]:
    """The object an update stores: server-owned fields kept, status routed by subresource."""
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise bad_request("the request body must be a JSON object with metadata")
    if subresource == "status":
        new = clone(old)
        new["status"] = clone(body.get("status", {}))
        return new
    _check_kind(resource, body)
    new = clone(body)
    new["apiVersion"], new["kind"] = resource.api_version, resource.kind
    meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
    for kept in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
    ):
        if kept in old_meta:
            meta[kept] = old_meta[kept]
    meta.pop("managedFields", None)
    if resource.has_status and subresource != WHOLE_OBJECT:
        new.pop("status", None)
        if "status" in old:
            new["status"] = clone(old["status"])
    if resource.kind == "Service":
        _keep_allocations(old.get("spec") or {}, new.setdefault("spec", {}))
    return new


def bump_generation(old: dict[str, Any], new: dict[str, Any]) -> None:
    """generation counts changes to the desired state: anything but metadata and status."""

    def desired(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    if desired(old) != desired(new):
        new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1


def _keep_allocations(old_spec: dict[str, Any], spec: dict[str, Any]) -> None:
    # Like the real registry, an update that omits allocated values keeps them.
    for field in ("clusterIP", "clusterIPs", "ipFamilyPolicy"):
        if not spec.get(field) and old_spec.get(field):
            spec[field] = clone(old_spec[field])
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
    for port in spec.get("ports") or []:
        previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")), {})
        if not port.get("nodePort") and previous.get("nodePort"):
            port["nodePort"] = previous["nodePort"]


# Defaults per kind, applied on create and on every update.


def apply_defaults(
    resource: Resource,
    obj: dict[str, Any],
    service_cidrs: Sequence[Network],
    used_ips: set[str],
    used_node_ports: set[int],
    old: dict[str, Any] | None = None,
) -> None:
    """`old`: the stored object an update replaces (None on create)."""
    kind = resource.kind
    if kind == "Namespace":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Node":
        _pair_single_and_plural(obj.setdefault("spec", {}), "podCIDR", "podCIDRs", plain=True)
    elif kind == "Pod":
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        _pair_single_and_plural(status, "podIP", "podIPs", plain=False)
        _pair_single_and_plural(status, "hostIP", "hostIPs", plain=False)
    elif kind == "Service":
        old_spec = (old.get("spec") or {}) if old is not None else None
        _default_service(resource, obj, service_cidrs, used_ips, used_node_ports, old_spec)
    elif kind == "Lease":
        leases.default_lease(resource, obj)
    elif kind == "NetworkPolicy":
        _default_network_policy(obj.setdefault("spec", {}))
    elif kind == "EndpointSlice":
        _default_protocols(obj.get("ports"))


def _pair_single_and_plural(
    holder: dict[str, Any], single: str, plural: str, *, plain: bool
) -> None:
    """v1 keeps podIP/podIPs (and podCIDR/podCIDRs) in step; the server fills the missing one."""
    if holder.get(single) and not holder.get(plural):
        holder[plural] = [holder[single]] if plain else [{"ip": holder[single]}]
    elif holder.get(plural) and not holder.get(single):
        first = holder[plural][0]
        holder[single] = first if plain else first.get("ip")


def _default_protocols(ports: list[dict[str, Any]] | None) -> None:
    for port in ports or []:
        port.setdefault("protocol", "TCP")


def _default_network_policy(spec: dict[str, Any]) -> None:
    spec.setdefault("podSelector", {})
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
        _default_protocols(rule.get("ports"))


def _default_service(
    resource: Resource,
    obj: dict[str, Any],
    cidrs: Sequence[Network],
    used_ips: set[str],
    used_node_ports: set[int],
    old_spec: dict[str, Any] | None,
) -> None:
    spec, name = obj.setdefault("spec", {}), obj["metadata"]["name"]
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    services.check_load_balancer_fields(resource, name, spec, old_spec)
    services.check_ingress(resource, name, obj.setdefault("status", {}))
    obj["status"].setdefault("loadBalancer", {})
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    if spec["type"] == "ExternalName":
        return
    spec.setdefault("internalTrafficPolicy", "Cluster")
    _default_cluster_ips(resource, name, spec, cidrs, used_ips)
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
        _default_node_ports(resource, name, spec, used_node_ports)


def _default_cluster_ips(
    resource: Resource,
    name: str,
    spec: dict[str, Any],
    cidrs: Sequence[Network],
    used: set[str],
) -> None:
    """One cluster IP per family (services.ip_families); "None" keeps a service headless."""
    given = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    if given[:1] == ["None"]:
        spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        return
    families = services.ip_families(resource, name, spec, cidrs, given)
    by_family = {services.family_of(cidr): cidr for cidr in cidrs}
    ips = [
        _cluster_ip(resource, name, by_family[family], given[index] if index < len(given) else "",
                    used)
        for index, family in enumerate(families)
    ]  # fmt: skip
    spec["clusterIP"], spec["clusterIPs"], spec["ipFamilies"] = ips[0], ips, families


def _cluster_ip(resource: Resource, name: str, cidr: Network, ip: str, used: set[str]) -> str:
    if not ip:
        allocated = allocate_ip(cidr, used)
        if allocated is None:
            raise invalid(resource, name, "spec.clusterIP", "Internal error: range is full")
        used.add(allocated)
        return allocated
    if ipaddress.ip_address(ip) not in cidr:
        raise invalid(resource, name, "spec.clusterIP", f"Invalid value: {ip!r}: not in {cidr}")
    if ip in used:
        raise invalid(
            resource,
            name,
            "spec.clusterIP",
            f"Invalid value: {ip!r}: provided IP is already allocated",
        )
    return ip


def allocate_ip(cidr: Network, used: set[str]) -> str | None:
    """First free address of the dynamic band (the first 256 stay for static picks, as upstream)."""
    start = 256 if cidr.num_addresses > 1024 else 1
    for offset in range(start, min(cidr.num_addresses - 1, start + 65536)):
        candidate = str(cidr.network_address + offset)
        if candidate not in used:
            return candidate
    return None


def _default_node_ports(
    resource: Resource, name: str, spec: dict[str, Any], used: set[int]
) -> None:
    taken = set(used)
    for port in spec.get("ports") or []:
        node_port = port.get("nodePort")
        if node_port and node_port in taken:
            raise invalid(
                resource,
                name,
                "spec.ports.nodePort",
                f"Invalid value: {node_port}: provided port is already allocated",
            )
        if not node_port:
            node_port = next((p for p in NODE_PORT_RANGE if p not in taken), None)
            if node_port is None:
                raise invalid(
                    resource, name, "spec.ports.nodePort", "Internal error: range is full"
                )
            port["nodePort"] = node_port
        taken.add(node_port)


def service_allocations(services: Iterable[dict[str, Any]]) -> tuple[set[str], set[int]]:
    """Cluster IPs and node ports in use (a scan: the test server holds few services)."""
    ips: set[str] = set()
    node_ports: set[int] = set()
    for service in services:
        spec = service.get("spec") or {}
        ips.update(
            ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"
        )
        node_ports.update(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort"))
    return ips, node_ports
