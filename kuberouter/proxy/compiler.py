"""One Service (with its EndpointSlices) -> what this node programs for it: a pure function.

Rules (Kubernetes' Service semantics, with kube-router's names where it has its own):
- Left alone: ExternalName and headless Services, and Services labelled
  `service.kubernetes.io/service-proxy-name` (another proxy owns them) or
  `service.kubernetes.io/headless`.
- Per port and per enabled address family with a cluster IP, one VirtualService, reached
  on: the cluster IP; the nodePort (types NodePort and LoadBalancer, inside
  --service-node-port-range); the externalIPs and, for type LoadBalancer, the
  status.loadBalancer.ingress IPs (not with `kube-router.io/service.skiplbips`). With
  --strict-external-ip-validation (the default) an externalIP must lie in
  --service-external-ip-range and an ingress IP in --loadbalancer-ip-range; with no
  range given, none is accepted.
- externalTrafficPolicy Local (or `kube-router.io/service.local: "true"`) applies to the
  external addresses, internalTrafficPolicy to the cluster IP; endpoints: endpoints.py.
- Session affinity ClientIP with its timeout; hairpin with --hairpin-mode or
  `kube-router.io/service.hairpin` (`.hairpin.externalips` for externalIPs too); the
  IPVS scheduler (`kube-router.io/service.scheduler`: rr, lc, dh, sh, mh; flags for mh in
  `.schedflags`) and DSR (`kube-router.io/service.dsr: tunnel`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

from kuberouter.model import EndpointSlice, Service, ServicePort
from kuberouter.model.service import HEADLESS_LABEL
from kuberouter.netpol.ruleset import Family
from kuberouter.proxy.config import Network, ProxyConfig
from kuberouter.proxy.endpoints import candidates, categorize
from kuberouter.proxy.state import (
    Frontend,
    Protocol,
    ServicePlan,
    Skipped,
    VirtualService,
)

LOCAL_ANNOTATION = "kube-router.io/service.local"
SKIP_LB_IPS_ANNOTATION = "kube-router.io/service.skiplbips"
HAIRPIN_ANNOTATION = "kube-router.io/service.hairpin"
HAIRPIN_EXTERNAL_ANNOTATION = "kube-router.io/service.hairpin.externalips"
SCHEDULER_ANNOTATION = "kube-router.io/service.scheduler"
SCHED_FLAGS_ANNOTATION = "kube-router.io/service.schedflags"
DSR_ANNOTATION = "kube-router.io/service.dsr"
SCHEDULERS = ("rr", "lc", "dh", "sh", "mh")
SCHED_FLAGS = ("flag-1", "flag-2", "flag-3")


def ignored_reason(service: Service) -> str | None:
    if service.type == "ExternalName":
        return "type ExternalName"
    if service.headless:
        return "headless (no cluster IP)"
    if service.proxy_name:
        return f"service.kubernetes.io/service-proxy-name is {service.proxy_name!r}"
    if HEADLESS_LABEL in service.labels:
        return f"labelled {HEADLESS_LABEL}"
    return None


def compile_service(
    service: Service,
    slices: Iterable[EndpointSlice],
    node: str,
    config: ProxyConfig,
) -> ServicePlan:
    """`node`: this node's name (which endpoints are local)."""
    why = ignored_reason(service)
    if why is not None:
        return ServicePlan(key=service.key, ignored=why)
    slices = tuple(slices)
    skipped: list[Skipped] = []
    found: list[VirtualService] = []
    for family in _families(service, config, skipped):
        for port in service.ports:
            found.append(_virtual_service(service, port, family, slices, node, config, skipped))
    local = service.external_traffic_policy == "Local" and service.type == "LoadBalancer"
    return ServicePlan(
        key=service.key,
        virtual_services=tuple(found),
        skipped=tuple(skipped),
        health_check_node_port=service.health_check_node_port if local else None,
    )


def _families(service: Service, config: ProxyConfig, skipped: list[Skipped]) -> Iterator[Family]:
    for ip in service.cluster_ips:
        family: Family = 6 if ":" in ip else 4
        if family in config.families:
            yield family
        else:
            skipped.append(Skipped(what=f"cluster IP {ip}", reason=f"IPv{family} is not enabled"))


def _virtual_service(
    service: Service,
    port: ServicePort,
    family: Family,
    slices: tuple[EndpointSlice, ...],
    node: str,
    config: ProxyConfig,
    skipped: list[Skipped],
) -> VirtualService:
    label = f"{port.name or port.port}/{port.protocol}"
    groups = categorize(candidates(port, family, slices), node, label)
    skipped += groups.skipped
    notes = service.annotations
    scheduler, flags = _scheduler(
        notes.get(SCHEDULER_ANNOTATION), notes.get(SCHED_FLAGS_ANNOTATION)
    )
    return VirtualService(
        service=service.key,
        port_name=port.name,
        protocol=cast(Protocol, port.protocol),  # one of PROTOCOLS: checked by the model
        family=family,
        frontends=tuple(_frontends(service, port, family, config, skipped)),
        cluster_backends=groups.cluster,
        local_backends=groups.local,
        internal_local=service.internal_traffic_policy == "Local",
        external_local=service.external_traffic_policy == "Local"
        or notes.get(LOCAL_ANNOTATION) == "true",
        affinity_timeout=(
            service.session_affinity_timeout if service.session_affinity == "ClientIP" else None
        ),
        source_ranges=tuple(
            cidr for cidr in service.load_balancer_source_ranges if (":" in cidr) == (family == 6)
        ),
        hairpin=config.hairpin_mode or HAIRPIN_ANNOTATION in notes,
        hairpin_external=HAIRPIN_EXTERNAL_ANNOTATION in notes,
        scheduler=scheduler,
        sched_flags=flags,
        dsr=notes.get(DSR_ANNOTATION) == "tunnel",
    )


def _frontends(
    service: Service,
    port: ServicePort,
    family: Family,
    config: ProxyConfig,
    skipped: list[Skipped],
) -> Iterator[Frontend]:
    def mine(ip: str) -> bool:
        return (":" in ip) == (family == 6)

    yield from (
        Frontend(kind="ClusterIP", address=ip, port=port.port)
        for ip in service.cluster_ips
        if mine(ip)
    )
    if port.node_port is not None and service.type in ("NodePort", "LoadBalancer"):
        low, high = config.node_port_range
        if low <= port.node_port <= high:
            yield Frontend(kind="NodePort", address=None, port=port.node_port)
        else:
            what = f"nodePort {port.node_port} ({port.name or port.port}/{port.protocol})"
            skipped.append(Skipped(what=what, reason="outside --service-node-port-range"))
    for ip in filter(mine, service.external_ips):
        reason = _invalid(ip, config, config.external_ip_ranges, "--service-external-ip-range")
        if reason is None:
            yield Frontend(kind="ExternalIP", address=ip, port=port.port)
        elif port is service.ports[0]:
            skipped.append(Skipped(what=f"externalIP {ip}", reason=reason))
    if service.type != "LoadBalancer":
        return
    for ip in filter(mine, service.load_balancer_ips):
        reason = _invalid(ip, config, config.load_balancer_ip_ranges, "--loadbalancer-ip-range")
        if SKIP_LB_IPS_ANNOTATION in service.annotations:
            reason = f"{SKIP_LB_IPS_ANNOTATION} is set"
        if reason is None:
            yield Frontend(kind="LoadBalancer", address=ip, port=port.port)
        elif port is service.ports[0]:
            skipped.append(Skipped(what=f"LoadBalancer IP {ip}", reason=reason))


def _invalid(ip: str, config: ProxyConfig, ranges: tuple[Network, ...], flag: str) -> str | None:
    """Why --strict-external-ip-validation refuses `ip` (None: accepted)."""
    if not config.strict_external_ip_validation:
        return None
    if not ranges:
        return f"--strict-external-ip-validation and no {flag} given"
    return None if config.in_ranges(ip, ranges) else f"outside {flag}"


def _scheduler(name: str | None, flags: str | None) -> tuple[str, tuple[str, ...]]:
    """Upstream's choice: an unknown scheduler is rr; flags only count for mh."""
    scheduler = name if name in SCHEDULERS else "rr"
    if scheduler != "mh" or not flags:
        return scheduler, ()
    chosen = {part.strip() for part in flags.split(",")}
    return scheduler, tuple(flag for flag in SCHED_FLAGS if flag in chosen)
