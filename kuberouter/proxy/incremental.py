"""The proxy's compiled state, kept up to date one object change at a time.

A Service compiles from itself, its EndpointSlices (by the kubernetes.io/service-name
label), this node's name and the flags (compiler.py). So a Service or EndpointSlice
change recompiles that one Service; the node facts (this node's addresses, every node's
pod CIDRs) are carried in the state for the back ends and recompile nothing. Changes are
only recorded until `state()`, so a burst costs one compile per Service. An unchanged
Service keeps its plan object, which keeps the back end's diff to the Services that
changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kuberouter.model import EndpointSlice, Node, Service
from kuberouter.proxy.compiler import compile_service
from kuberouter.proxy.config import ProxyConfig
from kuberouter.proxy.state import NodeFacts, ProxyState, ServicePlan


def node_facts(name: str, nodes: Iterable[Node]) -> NodeFacts:
    """This node's addresses and the pod CIDRs of every node."""
    addresses: tuple[str, ...] = ()
    cidrs: dict[str, None] = {}
    for node in nodes:
        if node.name == name:
            addresses = tuple(dict.fromkeys((*node.internal_ips, *node.external_ips)))
        cidrs.update(dict.fromkeys(node.effective_pod_cidrs))
    return NodeFacts(name=name, addresses=addresses, pod_cidrs=tuple(cidrs))


class IncrementalCompiler:
    def __init__(self, node: NodeFacts, config: ProxyConfig) -> None:
        self.node, self.config = node, config
        self._services: dict[str, Service] = {}
        self._slices: dict[str, dict[str, EndpointSlice]] = {}  # service key -> slices
        self._slice_owner: dict[str, str] = {}  # slice key -> service key
        self._plans: dict[str, ServicePlan] = {}
        self._dirty: set[str] = set()
        self._state: ProxyState | None = None
        self.compiled = 0  # Services compiled so far (tests check it stays small)

    def set_node(self, node: NodeFacts) -> None:
        if node != self.node:
            if node.name != self.node.name:
                self._dirty.update(self._services)
            self.node, self._state = node, None

    def set_service(self, key: str, service: Service | None) -> None:
        if service is None:
            self._services.pop(key, None)
        else:
            self._services[key] = service
        self._dirty.add(key)

    def set_slice(self, key: str, endpoint_slice: EndpointSlice | None) -> None:
        old_owner = self._slice_owner.pop(key, None)
        if old_owner is not None:
            self._slices.get(old_owner, {}).pop(key, None)
            self._dirty.add(old_owner)
        owner = endpoint_slice.service_key if endpoint_slice is not None else None
        if endpoint_slice is None or owner is None:
            return
        self._slice_owner[key] = owner
        self._slices.setdefault(owner, {})[key] = endpoint_slice
        self._dirty.add(owner)

    def state(self) -> ProxyState:
        if self._state is not None and not self._dirty:
            return self._state
        plans = dict(self._plans)
        for key in self._dirty:
            plan = self._compile(key)
            if plan is None:
                plans.pop(key, None)
            elif plans.get(key) != plan:
                plans[key] = plan
        self._dirty.clear()
        self._plans = plans
        self._state = ProxyState(node=self.node, config=self.config, services=plans)
        return self._state

    def _compile(self, key: str) -> ServicePlan | None:
        service = self._services.get(key)
        if service is None:
            return None
        self.compiled += 1
        return compile_service(
            service, self._slices.get(key, {}).values(), self.node.name, self.config
        )


def compile_all(
    node: NodeFacts,
    config: ProxyConfig,
    services: Mapping[str, Service],
    slices: Mapping[str, EndpointSlice],
) -> ProxyState:
    """The whole state at once (the reference the incremental path must equal)."""
    compiler = IncrementalCompiler(node, config)
    for key, service in services.items():
        compiler.set_service(key, service)
    for key, endpoint_slice in slices.items():
        compiler.set_slice(key, endpoint_slice)
    return compiler.state()
