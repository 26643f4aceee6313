"""Everything the node's BGP speaker should be, from a store snapshot (pure).

`Planner.plan(snapshot)` gives the speaker's identity, its sessions, the routes it
originates and its policy. Annotations are read at their last good values: the planner
remembers each node's last `NodeBgp` and keeps a field whose annotation turned malformed
(`NodeBgp.keeping_last_good`), so a typo on a node changes nothing; the problems
themselves are reported by the controller.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from kuberouter.k8s.store import Snapshot
from kuberouter.model import EndpointSlice, Node, Service
from kuberouter.model.node_bgp import NodeBgp
from kuberouter.routing import origin, peers, policy
from kuberouter.routing.origin import Originated
from kuberouter.routing.peers import Identity, Peering, PlanError
from kuberouter.routing.settings import RouterSettings
from pybgp.policy import Definitions


@attrs.frozen(kw_only=True)
class RoutingPlan:
    identity: Identity
    peerings: Mapping[str, Peering]
    routes: Mapping[str, Originated]
    policy: Definitions
    policy_inputs: policy.PolicyInputs = attrs.field(eq=False, repr=False)


class Planner:
    def __init__(
        self, node_name: str, settings: RouterSettings, service_ranges: tuple[str, ...] = ()
    ) -> None:
        self.node_name, self.settings = node_name, settings
        self.service_ranges = service_ranges
        self.bgp: dict[str, NodeBgp] = {}  # each node's annotations, at their last good values

    def plan(self, snapshot: Snapshot) -> RoutingPlan:
        """Raises PlanError when this node cannot run BGP (no Node object, no address, ...)."""
        nodes = dict(snapshot.items(Node))
        self._remember(nodes)
        node = nodes.get(self.node_name)
        if node is None:
            raise PlanError(f"no Node object named {self.node_name} (--hostname-override?)")
        own = self.bgp[node.name]
        identity = peers.identity(node, own, self.settings)
        peerings = peers.peerings(node, self.bgp, nodes, self.settings, identity)
        routes = origin.pod_cidr_routes(node, own)
        routes.update(
            origin.service_routes(
                node, snapshot.items(Service).values(), _slices_by_service(snapshot), self.settings
            )
        )
        inputs = policy.PolicyInputs(
            settings=self.settings,
            bgp=own,
            rr_server=own.rr_server is not None,
            routes=routes,
            peerings=peerings,
            service_ranges=self.service_ranges,
        )
        return RoutingPlan(
            identity=identity,
            peerings=peerings,
            routes=routes,
            policy=policy.definitions(inputs),
            policy_inputs=inputs,
        )

    def _remember(self, nodes: Mapping[str, Node]) -> None:
        self.bgp = {
            name: node.bgp.keeping_last_good(self.bgp.get(name)) for name, node in nodes.items()
        }


def _slices_by_service(snapshot: Snapshot) -> dict[str, list[EndpointSlice]]:
    found: dict[str, list[EndpointSlice]] = {}
    for endpoint_slice in snapshot.items(EndpointSlice).values():
        key = endpoint_slice.service_key
        if key is not None:
            found.setdefault(key, []).append(endpoint_slice)
    return found


__all__ = ["PlanError", "Planner", "RoutingPlan"]
