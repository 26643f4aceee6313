"""The compiled proxy as IPVS objects (a pure function of the compiled state), for
`--service-proxy-mode=ipvs`.

Per frontend of a VirtualService (the same decisions trace.py reads):
- the cluster IP, externalIPs and LoadBalancer IPs sit on `kube-dummy-if` (so the node
  takes their packets and IPVS, on the local-in hook, balances them) and in the ipset
  `kube-router-svip`; a NodePort is an IPVS service on each of the node's NodePort
  addresses;
- a frontend with endpoints to go to is an IPVS service (scheduler, its flags, and
  persistence for session affinity) with one NAT ("masquerading", in IPVS' words)
  destination per endpoint, and is in `kube-router-svip-prt`; one without any endpoint
  has no IPVS service, so its packets are rejected (KUBE-ROUTER-SERVICES, or the local
  stack); one whose Local policy finds none here is in `kube-router-drop` (a cluster
  IP) or `kube-router-drop-external` (external traffic only: pods and the node go on);
- a LoadBalancer IP with loadBalancerSourceRanges is in `kube-router-fw`, its allowed
  sources in `kube-router-fw-allow`;
- externalTrafficPolicy Local: the IPVS service holds this node's endpoints; pod traffic
  and the node's own traffic get a firewall mark that selects a second, fwmark IPVS
  service holding every endpoint (IPVS looks fwmark services up first), the node's own
  masqueraded;
- masquerading is decided before IPVS, on the original destination: the set
  `kube-router-masq` (always: external traffic with Cluster policy, every frontend with
  --masquerade-all) and `kube-router-masq-outside` (cluster IPs: when the source is
  outside the pod network, `kube-router-pod-cidrs`) put a connection mark that nat
  postrouting masquerades; `kube-router-hairpin` holds (endpoint, port, endpoint) for
  services that ask for hairpin.
IPv6 sets carry the `inet6:` prefix, as upstream names them.
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import attrs

from kuberouter.proxy.state import Backend, Frontend, VirtualService

PROTOCOL_NUMBERS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
FWMARK_BIT = 0x8000000  # fwmark services: this bit plus 23 bits of a frontend's digest
DUMMY_INTERFACE = "kube-dummy-if"

SVIP = "kube-router-svip"
SVIP_PORTS = "kube-router-svip-prt"
LOCAL_IPS = "kube-router-local-ips"
MASQUERADE = "kube-router-masq"
MASQUERADE_OUTSIDE = "kube-router-masq-outside"
POD_CIDRS = "kube-router-pod-cidrs"
HAIRPIN = "kube-router-hairpin"
DROP = "kube-router-drop"
DROP_EXTERNAL = "kube-router-drop-external"
FIREWALL = "kube-router-fw"
FIREWALL_ALLOW = "kube-router-fw-allow"
SET_TYPES = {
    SVIP: "hash:ip",
    SVIP_PORTS: "hash:ip,port",
    LOCAL_IPS: "hash:ip",
    MASQUERADE: "hash:ip,port",
    MASQUERADE_OUTSIDE: "hash:ip,port",
    POD_CIDRS: "hash:net",
    HAIRPIN: "hash:ip,port,ip",
    DROP: "hash:ip,port",
    DROP_EXTERNAL: "hash:ip,port",
    FIREWALL: "hash:ip,port",
    FIREWALL_ALLOW: "hash:ip,port,net",
}


def set_name(name: str, family: int) -> str:
    return f"inet6:{name}" if family == 6 else name


class Key(NamedTuple):
    """An IPVS service: (family, protocol, address, port), or a firewall mark."""

    family: int
    protocol: int  # 0 for a fwmark service
    address: str  # "" for a fwmark service
    port: int
    fwmark: int = 0

    def describe(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark:#x}"
        proto = {number: name for name, number in PROTOCOL_NUMBERS.items()}[self.protocol]
        return f"{proto} {self.address}:{self.port}"


class Dest(NamedTuple):
    ip: str
    port: int
    weight: int = 1


@attrs.frozen(kw_only=True)
class IpvsService:
    key: Key
    scheduler: str = "rr"
    flags: tuple[str, ...] = ()  # flag-1..3 (IPVS sched flags), "persistent"
    timeout: int = 0  # persistence, seconds
    dests: tuple[Dest, ...] = ()


class MarkRule(NamedTuple):
    """Give a fwmark to new connections to a frontend from pods (or from the node)."""

    family: int
    protocol: str
    address: str | None  # None: a NodePort, on any local address
    port: int
    from_pods: bool  # else: from the node itself (also masqueraded)
    fwmark: int


@attrs.frozen(kw_only=True)
class IpvsPlan:
    """What one VirtualService needs in the kernel."""

    services: tuple[IpvsService, ...] = ()
    vips: tuple[str, ...] = ()
    members: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)  # ipset -> entries
    marks: tuple[MarkRule, ...] = ()


def fwmark(service: VirtualService, frontend: Frontend) -> int:
    digest = zlib.crc32(f"{service.key} {frontend.describe()}".encode())
    return FWMARK_BIT | (digest & 0x7FFFFF)


def _dests(backends: Iterable[Backend]) -> tuple[Dest, ...]:
    return tuple(Dest(backend.ip, backend.port) for backend in backends)


class _Builder:
    def __init__(
        self, service: VirtualService, node_addresses: tuple[str, ...], masquerade_all: bool
    ):
        self.vs, self.node_addresses, self.masquerade_all = service, node_addresses, masquerade_all
        self.services: list[IpvsService] = []
        self.vips: list[str] = []
        self.members: dict[str, list[str]] = {}
        self.marks: list[MarkRule] = []
        self.proto = service.protocol.lower()

    def add(self, name: str, entry: str) -> None:
        self.members.setdefault(set_name(name, self.vs.family), []).append(entry)

    def build(self) -> IpvsPlan:
        for frontend in self.vs.frontends:
            addresses = [frontend.address] if frontend.address else list(self.node_addresses)
            if frontend.address:
                self.vips.append(frontend.address)
                self.add(SVIP, frontend.address)
            for address in addresses:
                self.frontend(frontend, address)
            if frontend.external and self.vs.external_local and self.vs.has_endpoints:
                self.short_circuit(frontend)
        return IpvsPlan(
            services=tuple(self.services),
            vips=tuple(dict.fromkeys(self.vips)),
            members={name: tuple(entries) for name, entries in self.members.items()},
            marks=tuple(self.marks),
        )

    def frontend(self, frontend: Frontend, address: str) -> None:
        vs, entry = self.vs, f"{address},{self.proto}:{frontend.port}"
        if vs.empty_verdict(frontend) == "drop":
            self.add(DROP_EXTERNAL if frontend.external else DROP, entry)
        if frontend.kind == "LoadBalancer" and vs.source_ranges:
            self.add(FIREWALL, entry)
            for cidr in vs.source_ranges:
                self.add(FIREWALL_ALLOW, f"{entry},{cidr}")
        backends = vs.backends_for(frontend)
        if backends:
            self.services.append(
                self.service(
                    Key(vs.family, PROTOCOL_NUMBERS[vs.protocol], address, frontend.port), backends
                )
            )
            self.add(SVIP_PORTS, entry)
        if self.masquerade_all or (frontend.external and not vs.external_local):
            self.add(MASQUERADE, entry)
        elif not frontend.external:
            self.add(MASQUERADE_OUTSIDE, entry)
        if vs.hairpins(frontend):
            for backend in backends:
                self.add(HAIRPIN, f"{backend.ip},{self.proto}:{backend.port},{backend.ip}")

    def short_circuit(self, frontend: Frontend) -> None:
        """Pod and node traffic to a Local frontend: a fwmark service with every endpoint."""
        mark = fwmark(self.vs, frontend)
        self.services.append(
            self.service(Key(self.vs.family, 0, "", 0, mark), self.vs.cluster_backends)
        )
        for from_pods in (True, False):
            rule = MarkRule(
                self.vs.family, self.proto, frontend.address, frontend.port, from_pods, mark
            )
            self.marks.append(rule)

    def service(self, key: Key, backends: Iterable[Backend]) -> IpvsService:
        vs = self.vs
        persistent = ("persistent",) if vs.affinity_timeout is not None else ()
        return IpvsService(
            key=key,
            scheduler=vs.scheduler,
            flags=(*vs.sched_flags, *persistent),
            timeout=vs.affinity_timeout or 0,
            dests=_dests(backends),
        )


def plan_service(
    service: VirtualService, node_addresses: tuple[str, ...], masquerade_all: bool
) -> IpvsPlan:
    """`node_addresses`: where NodePorts listen (the node's addresses of this family)."""
    return _Builder(service, node_addresses, masquerade_all).build()
