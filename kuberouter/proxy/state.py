"""The compiled service proxy as data: what one node programs for each Service.

One Service port of one address family is a `VirtualService`: the addresses and ports
it is reached on (`Frontend`s), the endpoints for Cluster and for Local traffic policy
(`Backend`s) and the settings that decide what happens to a new connection. The back
ends program exactly this; `service trace` reads exactly this (trace.py), so the two can
never disagree about a rule. A `ServicePlan` adds what was left out and why, for
`kube-router-ctl services`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal, NamedTuple

import attrs

from kuberouter.netpol.ruleset import Family
from kuberouter.proxy.config import ProxyConfig

Protocol = Literal["TCP", "UDP", "SCTP"]
FrontendKind = Literal["ClusterIP", "ExternalIP", "LoadBalancer", "NodePort"]
Verdict = Literal["reject", "drop"]


def host_port(ip: str, port: int) -> str:
    """ "10.0.0.1:80", "[fd00::1]:80"."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class Backend(NamedTuple):
    """One endpoint as programmed: ready, or serving-and-terminating when no endpoint of
    its list is ready (Kubernetes' fallback). A tuple: a node builds 100,000 of them."""

    ip: str
    port: int
    node: str = ""
    local: bool = False  # on this node
    terminating: bool = False

    @property
    def address(self) -> str:
        return host_port(self.ip, self.port)


@attrs.frozen(kw_only=True)
class Frontend:
    kind: FrontendKind
    address: str | None  # None: a NodePort, on every address the node takes NodePorts on
    port: int

    @property
    def external(self) -> bool:
        """NodePort, externalIP and LoadBalancer traffic follows externalTrafficPolicy."""
        return self.kind != "ClusterIP"

    def describe(self) -> str:
        if self.address is None:
            return f"NodePort {self.port}"
        return f"{self.kind} {host_port(self.address, self.port)}"


@attrs.frozen(kw_only=True)
class VirtualService:
    service: str  # namespace/name
    port_name: str
    protocol: Protocol
    family: Family
    frontends: tuple[Frontend, ...]
    cluster_backends: tuple[Backend, ...] = ()  # usable endpoints anywhere
    local_backends: tuple[Backend, ...] = ()  # usable endpoints on this node
    internal_local: bool = False  # internalTrafficPolicy: Local
    external_local: bool = False  # externalTrafficPolicy: Local (or service.local)
    affinity_timeout: int | None = None  # sessionAffinity ClientIP, in seconds
    source_ranges: tuple[str, ...] = ()  # loadBalancerSourceRanges of this family
    hairpin: bool = False  # masquerade an endpoint reaching itself through the service
    hairpin_external: bool = False  # ... also through its externalIPs
    scheduler: str = "rr"  # IPVS only
    sched_flags: tuple[str, ...] = ()  # IPVS only (mh)
    dsr: bool = False  # IPVS only: direct server return by IPIP tunnel

    @property
    def key(self) -> str:
        """Unique per node: namespace/name:port-name/protocol/family."""
        return f"{self.service}:{self.port_name}/{self.protocol.lower()}/v{self.family}"

    @property
    def has_endpoints(self) -> bool:
        """Whether any usable endpoint exists anywhere (else: reject everything)."""
        return bool(self.cluster_backends or self.local_backends)

    @property
    def internal_backends(self) -> tuple[Backend, ...]:
        return self.local_backends if self.internal_local else self.cluster_backends

    @property
    def external_backends(self) -> tuple[Backend, ...]:
        return self.local_backends if self.external_local else self.cluster_backends

    def backends_for(self, frontend: Frontend) -> tuple[Backend, ...]:
        return self.external_backends if frontend.external else self.internal_backends

    def empty_verdict(self, frontend: Frontend) -> Verdict | None:
        """What a new connection to `frontend` gets when it has no endpoint to go to
        (None: it has one). A service with no usable endpoint at all rejects, as
        kube-proxy; one whose Local policy finds none on this node drops."""
        if not self.has_endpoints:
            return "reject"
        return None if self.backends_for(frontend) else "drop"

    def hairpins(self, frontend: Frontend) -> bool:
        """Is a connection from an endpoint to itself through `frontend` masqueraded?"""
        if not self.hairpin or frontend.kind == "LoadBalancer":
            return False
        return frontend.kind != "ExternalIP" or self.hairpin_external


@attrs.frozen(kw_only=True)
class Skipped:
    """Something of a Service that is not programmed, and why."""

    what: str  # e.g. "externalIP 203.0.113.7", "endpoint 10.1.0.4:8080 (http)"
    reason: str


@attrs.frozen(kw_only=True)
class ServicePlan:
    """What one Service compiles to on this node."""

    key: str  # namespace/name
    virtual_services: tuple[VirtualService, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    ignored: str | None = None  # the whole Service is left alone: why
    health_check_node_port: int | None = None  # served while externalTrafficPolicy is Local

    def local_endpoints(self) -> int:
        """This node's ready endpoints (distinct addresses), as the health check counts."""
        return len({b.ip for vs in self.virtual_services for b in vs.local_backends
                    if not b.terminating})  # fmt: skip


@attrs.frozen(kw_only=True)
class NodeFacts:
    """What compiling needs to know about the cluster's nodes."""

    name: str
    addresses: tuple[str, ...] = ()  # this node's InternalIPs and ExternalIPs
    pod_cidrs: tuple[str, ...] = ()  # every node's pod CIDRs: the cluster's pod network

    def addresses_of(self, family: int) -> tuple[str, ...]:
        return tuple(ip for ip in self.addresses if (":" in ip) == (family == 6))

    def pod_cidrs_of(self, family: int) -> tuple[str, ...]:
        return tuple(cidr for cidr in self.pod_cidrs if (":" in cidr) == (family == 6))


@attrs.frozen(kw_only=True, eq=False)
class ProxyState:
    """Everything one node's proxy programs. `services` maps a Service key to its plan;
    an unchanged Service keeps the same plan object from one state to the next."""

    node: NodeFacts
    config: ProxyConfig
    services: Mapping[str, ServicePlan] = attrs.field(factory=dict)

    def virtual_services(self) -> Iterator[VirtualService]:
        for plan in self.services.values():
            yield from plan.virtual_services

    def count(self) -> int:
        return sum(len(plan.virtual_services) for plan in self.services.values())
