"""Frozen view of core/v1 Service: the addresses, ports and policies the proxy and router use.

Defaults follow the API reference: type ClusterIP, traffic policies Cluster, session
affinity None with a 10800 s ClientIP timeout, port protocol TCP, targetPort = port.
A headless service (clusterIP "None") and an ExternalName service have no cluster IPs.
Labels are kept whole (the service-proxy-name and headless labels are honoured);
annotations only under kube-router.io/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import attrs

from kuberouter.model import fields
from kuberouter.model.errors import FieldError, InvalidObject
from kuberouter.model.labels import NO_LABELS, Labels
from kuberouter.model.node import cidr, kube_router_annotations
from kuberouter.model.objects import PROTOCOLS

ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
IPFamily = Literal["IPv4", "IPv6"]
FamilyPolicy = Literal["SingleStack", "PreferDualStack", "RequireDualStack"]
TrafficPolicy = Literal["Cluster", "Local"]
Affinity = Literal["None", "ClientIP"]
SERVICE_TYPES: tuple[ServiceType, ...] = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
TRAFFIC_POLICIES: tuple[TrafficPolicy, ...] = ("Cluster", "Local")
AFFINITIES: tuple[Affinity, ...] = ("None", "ClientIP")
IP_FAMILIES: tuple[IPFamily, ...] = ("IPv4", "IPv6")
FAMILY_POLICIES: tuple[FamilyPolicy, ...] = ("SingleStack", "PreferDualStack", "RequireDualStack")
DEFAULT_AFFINITY_TIMEOUT = 10800
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
T = TypeVar("T", bound=str)


@attrs.frozen(kw_only=True)
class ServicePort:
    name: str = ""
    protocol: str = "TCP"
    port: int
    target_port: int | str  # a number, or the name of a container port
    node_port: int | None = None

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str) -> ServicePort:
        port = fields.integer(d.get("port"), f"{path}.port", 1, 65535)
        protocol = fields.string(d, "protocol", path, default="TCP")
        if protocol not in PROTOCOLS:
            raise FieldError(f"{path}.protocol", f"unsupported protocol {protocol!r}")
        target: int | str = port
        raw = d.get("targetPort")
        if isinstance(raw, str) and raw:
            target = int(raw) if raw.isdigit() else raw
        elif raw is not None and raw != "":
            target = fields.integer(raw, f"{path}.targetPort", 1, 65535)
        node_port = _optional_port(d, "nodePort", path)
        name = fields.string(d, "name", path, default="")
        return cls(name=name, protocol=protocol, port=port, target_port=target, node_port=node_port)


@attrs.frozen(kw_only=True)
class Service:
    namespace: str
    name: str
    type: ServiceType = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()  # spec.clusterIPs (or clusterIP); () when headless
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip
    ports: tuple[ServicePort, ...] = ()
    selector: Labels = NO_LABELS
    labels: Labels = NO_LABELS
    annotations: Labels = NO_LABELS  # the kube-router.io/ ones only
    external_traffic_policy: TrafficPolicy = "Cluster"
    internal_traffic_policy: TrafficPolicy = "Cluster"
    session_affinity: Affinity = "None"
    session_affinity_timeout: int = DEFAULT_AFFINITY_TIMEOUT
    # What a LoadBalancer allocator reads: the class, a requested address, the families.
    load_balancer_class: str = ""  # spec.loadBalancerClass
    requested_load_balancer_ip: str = ""  # spec.loadBalancerIP (deprecated upstream, honoured)
    ip_families: tuple[IPFamily, ...] = ()
    ip_family_policy: FamilyPolicy = "SingleStack"
    load_balancer_source_ranges: tuple[str, ...] = ()  # normalised networks
    health_check_node_port: int | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.type != "ExternalName" and not self.cluster_ips

    @property
    def proxy_name(self) -> str:
        """service.kubernetes.io/service-proxy-name: set means another proxy owns it."""
        return self.labels.get(SERVICE_PROXY_NAME_LABEL, "")

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any]) -> Service:
        namespace, name, meta = fields.metadata(d, "Service", namespaced=True)
        try:
            return cls._parse(namespace, name, meta, d)
        except FieldError as err:
            raise InvalidObject("Service", f"{namespace}/{name}", str(err)) from None

    @classmethod
    def _parse(
        cls, namespace: str, name: str, meta: Mapping[str, Any], d: Mapping[str, Any]
    ) -> Service:
        spec = fields.mapping(d, "spec", "")
        kind = _choice(spec, "type", SERVICE_TYPES)
        return cls(
            namespace=namespace,
            name=name,
            type=kind,
            cluster_ips=() if kind == "ExternalName" else _cluster_ips(spec),
            external_ips=_ip_list(spec, "externalIPs", "spec"),
            load_balancer_ips=_ingress_ips(d),
            ports=tuple(
                ServicePort.from_k8s(port, path)
                for path, port in fields.objects(spec, "ports", "spec")
            ),
            selector=fields.labels(spec, "selector", "spec"),
            labels=fields.labels(meta, "labels", "metadata"),
            annotations=kube_router_annotations(meta),
            external_traffic_policy=_choice(spec, "externalTrafficPolicy", TRAFFIC_POLICIES),
            internal_traffic_policy=_choice(spec, "internalTrafficPolicy", TRAFFIC_POLICIES),
            session_affinity=_choice(spec, "sessionAffinity", AFFINITIES),
            session_affinity_timeout=_affinity_timeout(spec),
            load_balancer_class=fields.string(spec, "loadBalancerClass", "spec", default=""),
            requested_load_balancer_ip=_optional_ip(spec, "loadBalancerIP"),
            ip_families=tuple(
                _one_of(value, path, IP_FAMILIES)
                for path, value in fields.items(spec, "ipFamilies", "spec")
            ),
            ip_family_policy=_choice(spec, "ipFamilyPolicy", FAMILY_POLICIES),
            load_balancer_source_ranges=_source_ranges(spec),
            health_check_node_port=_optional_port(spec, "healthCheckNodePort"),
        )


def _choice(spec: Mapping[str, Any], key: str, allowed: tuple[T, ...]) -> T:
    """An enum field; missing or empty means the first (the API default)."""
    return _one_of(spec.get(key) or allowed[0], f"spec.{key}", allowed)


def _one_of(value: Any, path: str, allowed: tuple[T, ...]) -> T:
    for choice in allowed:
        if value == choice:
            return choice
    raise FieldError(path, f"{value!r} is not one of {', '.join(allowed)}")


def _optional_ip(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    return fields.ip_address(value, f"spec.{key}") if value else ""


def _ip_list(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(
            fields.ip_address(value, element) for element, value in fields.items(obj, key, path)
        )
    )


def _cluster_ips(spec: Mapping[str, Any]) -> tuple[str, ...]:
    raw = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    if not isinstance(raw, list):
        raise FieldError("spec.clusterIPs", "expected a list")
    if "None" in raw:
        return ()  # headless
    return _ip_list({"clusterIPs": raw}, "clusterIPs", "spec")


def _ingress_ips(d: Mapping[str, Any]) -> tuple[str, ...]:
    balancer = fields.mapping(fields.mapping(d, "status", ""), "loadBalancer", "status")
    found = [
        fields.ip_address(entry["ip"], f"{path}.ip")
        for path, entry in fields.objects(balancer, "ingress", "status.loadBalancer")
        if entry.get("ip")  # an entry may carry only a hostname
    ]
    return tuple(dict.fromkeys(found))


def _source_ranges(spec: Mapping[str, Any]) -> tuple[str, ...]:
    found = [
        cidr(value, path) for path, value in fields.items(spec, "loadBalancerSourceRanges", "spec")
    ]
    return tuple(dict.fromkeys(found))


def _optional_port(obj: Mapping[str, Any], key: str, path: str = "spec") -> int | None:
    value = obj.get(key)
    return None if value is None else fields.integer(value, f"{path}.{key}", 1, 65535)


def _affinity_timeout(spec: Mapping[str, Any]) -> int:
    config = fields.mapping(spec, "sessionAffinityConfig", "spec")
    client_ip = fields.mapping(config, "clientIP", "spec.sessionAffinityConfig")
    value = client_ip.get("timeoutSeconds")
    if value is None:
        return DEFAULT_AFFINITY_TIMEOUT
    path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
    return fields.integer(value, path, 1, 86400)
