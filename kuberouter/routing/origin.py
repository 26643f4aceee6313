"""The routes this node originates: its pod CIDRs and the service IPs it should advertise.

Service IPs follow upstream kube-router:
- ClusterIPs when --advertise-cluster-ip, externalIPs when --advertise-external-ip, and
  LoadBalancer ingress IPs when --advertise-loadbalancer-ip; the Service's annotation
  kube-router.io/service.advertise.clusterip|externalip|loadbalancerip overrides its flag
  ("true"/"false" as Go's ParseBool reads them; anything else reads false). LoadBalancer
  IPs are skipped with kube-router.io/service.skiplbips.
- Local traffic: external addresses of a Service with externalTrafficPolicy Local (or the
  annotation kube-router.io/service.local=true), and ClusterIPs of one with
  internalTrafficPolicy Local, are advertised only while this node has a ready endpoint of
  it (EndpointSlices), so traffic never lands on a node that would drop it.
- With --advertise-service-cluster-ip-range (the large-cluster fork), ClusterIPs inside a
  given range are not advertised one by one: the range is, once, as an aggregate.
Every route carries this node's address of its family as next hop; a route of a family
the node has no address of is not advertised.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

import attrs

from kuberouter.model import EndpointSlice, Node, Service
from kuberouter.model.node_bgp import NodeBgp
from kuberouter.routing.settings import RouterSettings

ADVERTISE = "kube-router.io/service.advertise."
LOCAL_ANNOTATION = "kube-router.io/service.local"
SKIP_LB_ANNOTATION = "kube-router.io/service.skiplbips"
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


@attrs.frozen
class Originated:
    prefix: str
    next_hop: str
    kind: str  # "pod-cidr", "service" or "service-range"


def pod_cidr_routes(node: Node, bgp: NodeBgp) -> dict[str, Originated]:
    cidrs = bgp.pod_cidrs or node.pod_cidrs
    return _routes(node, cidrs, "pod-cidr")


def service_routes(
    node: Node,
    services: Iterable[Service],
    slices: Mapping[str, Iterable[EndpointSlice]],
    settings: RouterSettings,
) -> dict[str, Originated]:
    """Every service IP to advertise; `slices`: EndpointSlices by their Service's key."""
    aggregates = [ipaddress.ip_network(a) for a in settings.service_range_aggregates]
    addresses: set[str] = set()
    for service in services:
        for ip in service_ips(node, service, slices.get(service.key, ()), settings):
            if not any(ipaddress.ip_address(ip) in net for net in aggregates):
                addresses.add(ip)
    routes = _routes(node, sorted(addresses), "service")
    routes.update(_routes(node, settings.service_range_aggregates, "service-range"))
    return routes


def service_ips(
    node: Node, service: Service, slices: Iterable[EndpointSlice], settings: RouterSettings
) -> list[str]:
    """The addresses of one Service that this node advertises (see the module's rules)."""
    if service.type == "ExternalName" or service.headless:
        return []
    local = _has_ready_local_endpoint(node, slices)
    found: list[str] = []
    reachable = local or service.internal_traffic_policy != "Local"
    if _wanted(service, "clusterip", settings.advertise_cluster_ip) and reachable:
        found += service.cluster_ips
    external_local = (
        service.external_traffic_policy == "Local"
        or service.annotations.get(LOCAL_ANNOTATION) == "true"
    )
    if external_local and not local:
        return found
    if _wanted(service, "externalip", settings.advertise_external_ip):
        found += service.external_ips
    skip_lb = SKIP_LB_ANNOTATION in service.annotations
    lb_wanted = _wanted(service, "loadbalancerip", settings.advertise_loadbalancer_ip)
    if service.type == "LoadBalancer" and lb_wanted and not skip_lb:
        found += service.load_balancer_ips
    return found


def _wanted(service: Service, kind: str, default: bool) -> bool:
    value = service.annotations.get(ADVERTISE + kind)
    return default if value is None else value in _TRUE


def _has_ready_local_endpoint(node: Node, slices: Iterable[EndpointSlice]) -> bool:
    own = set(node.internal_ips) | set(node.external_ips)
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints:
            here = endpoint.node_name == node.name or (
                not endpoint.node_name and own.intersection(endpoint.addresses)
            )
            if here and endpoint.ready:
                return True
    return False


def _routes(node: Node, prefixes: Iterable[str], kind: str) -> dict[str, Originated]:
    routes = {}
    for text in prefixes:
        network = ipaddress.ip_network(text, strict=False)
        next_hop = node.primary_ip(network.version)
        if next_hop is not None:
            routes[network.compressed] = Originated(network.compressed, next_hop, kind)
    return routes
