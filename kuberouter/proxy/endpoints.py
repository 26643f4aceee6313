"""Which endpoints of a Service port a node may send traffic to, as Kubernetes defines it.

- An endpoint is matched to a Service port by port name and protocol; a slice port with
  no number is not usable. Slices of the other address family, and FQDN slices, do not
  count. Of an endpoint's addresses only the first is used (as kube-proxy does); the
  same address:port in several slices is one endpoint (its best condition wins).
- Usable for Cluster traffic policy: the ready endpoints; when none is ready anywhere,
  the serving-and-terminating ones. Usable for Local policy: the same choice made over
  this node's endpoints only (so a node with only terminating local endpoints uses them
  even while ready ones exist elsewhere).

Every endpoint left out is reported with its reason, for `kube-router-ctl services`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import attrs

from kuberouter.model import EndpointSlice, ServicePort
from kuberouter.proxy.state import Backend, Skipped, host_port


class Candidate(NamedTuple):
    ip: str
    port: int
    node: str
    ready: bool
    serving: bool
    terminating: bool

    @property
    def usable_fallback(self) -> bool:
        return self.serving and self.terminating

    def rank(self) -> int:
        return 2 if self.ready else (1 if self.usable_fallback else 0)

    def backend(self, this_node: str) -> Backend:
        local = bool(this_node) and self.node == this_node
        return _tuple(Backend, (self.ip, self.port, self.node, local, not self.ready))


_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (100,000 a sync)


def candidates(port: ServicePort, family: int, slices: Iterable[EndpointSlice]) -> list[Candidate]:
    """Every endpoint of `slices` for this port and family, one per address:port."""
    wanted = "IPv4" if family == 4 else "IPv6"
    found: dict[tuple[str, int], Candidate] = {}
    for endpoint_slice in slices:
        if endpoint_slice.address_type != wanted:
            continue
        numbers = [
            slice_port.port
            for slice_port in endpoint_slice.ports
            if slice_port.name == port.name and slice_port.protocol == port.protocol
        ]
        for number in numbers:
            if number is None:
                continue
            for endpoint in endpoint_slice.endpoints:
                candidate = _tuple(Candidate, (endpoint.addresses[0], number, endpoint.node_name,
                                               endpoint.ready, endpoint.serving,
                                               endpoint.terminating))  # fmt: skip
                key = (candidate.ip, number)
                if key not in found or candidate.rank() > found[key].rank():
                    found[key] = candidate
    return sorted(found.values())


def usable(group: list[Candidate]) -> list[Candidate]:
    """The ready ones, else the serving-terminating ones (Kubernetes' fallback)."""
    ready = [candidate for candidate in group if candidate.ready]
    return ready or [candidate for candidate in group if candidate.usable_fallback]


@attrs.frozen(kw_only=True)
class Categorized:
    cluster: tuple[Backend, ...]
    local: tuple[Backend, ...]
    skipped: tuple[Skipped, ...]


def categorize(found: list[Candidate], this_node: str, label: str) -> Categorized:
    """Cluster and Local backends; `label` names the port in the skip reasons."""
    if all(candidate.ready for candidate in found):  # the usual case, made cheap
        every = tuple(candidate.backend(this_node) for candidate in found)
        return Categorized(cluster=every, local=tuple(b for b in every if b.local), skipped=())
    cluster = usable(found)
    local = usable([candidate for candidate in found if candidate.node == this_node])
    backends = {candidate: candidate.backend(this_node) for candidate in (*cluster, *local)}
    skipped = tuple(
        Skipped(
            what=f"endpoint {host_port(candidate.ip, candidate.port)} ({label})",
            reason=_why_unused(candidate),
        )
        for candidate in found
        if candidate not in backends
    )
    return Categorized(
        cluster=tuple(backends[candidate] for candidate in cluster),
        local=tuple(backends[candidate] for candidate in local),
        skipped=skipped,
    )


def _why_unused(candidate: Candidate) -> str:
    if candidate.usable_fallback:
        return "terminating, and ready endpoints exist"
    if candidate.terminating:
        return "terminating and not serving"
    return "not ready"
