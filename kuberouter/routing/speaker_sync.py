"""Bring a running pybgp Speaker to a plan, touching only what changed.

Order: the policy first (a session that comes up is judged by the sets that name it),
then sessions removed, added or changed (a changed session is removed and added again:
only that one resets), then routes withdrawn and announced. A plan whose identity differs
(our AS, router ID, cluster ID, addresses or port) needs a new Speaker: `needs_restart`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import attrs

from kuberouter.routing import policy
from kuberouter.routing.origin import Originated
from kuberouter.routing.peers import Peering
from kuberouter.routing.plan import RoutingPlan
from pybgp.config import NeighborConfig, RouteConfig
from pybgp.policy import CompiledPolicy, Definitions

log = logging.getLogger(__name__)


class SpeakerLike(Protocol):
    """The part of pybgp.api.Speaker the routing controller drives."""

    def add_peer(self, neighbor: NeighborConfig) -> None: ...
    def remove_peer(self, address: str) -> None: ...
    def announce(self, route: RouteConfig) -> None: ...
    def withdraw(self, prefix: str) -> str: ...
    def set_policy(self, policy: CompiledPolicy) -> None: ...


@attrs.define
class SyncCounts:
    peers_added: int = 0
    peers_removed: int = 0
    announced: int = 0
    withdrawn: int = 0
    policy_changes: int = 0


class SpeakerSync:
    def __init__(self, speaker: SpeakerLike) -> None:
        self.speaker = speaker
        self.peerings: dict[str, Peering] = {}
        self.routes: dict[str, Originated] = {}
        self.policy: Definitions | None = None
        self.counts = SyncCounts()

    def apply(self, plan: RoutingPlan) -> SyncCounts:
        """What changed, applied; the counts of this call."""
        done = SyncCounts()
        if plan.policy != self.policy:
            self.speaker.set_policy(policy.compiled(plan.policy_inputs))
            self.policy = plan.policy
            done.policy_changes += 1
        for address, old in list(self.peerings.items()):
            if plan.peerings.get(address) != old:
                self.speaker.remove_peer(address)
                del self.peerings[address]
                done.peers_removed += 1
                log.info("peer %s (%s) removed", address, old.neighbor.description)
        for address, new in plan.peerings.items():
            if address not in self.peerings:
                self.speaker.add_peer(new.neighbor)
                self.peerings[address] = new
                done.peers_added += 1
                log.info("peer %s (%s, AS %d) added", address, new.neighbor.description,
                         new.neighbor.peer_asn)  # fmt: skip
        for prefix in list(self.routes.keys() - plan.routes.keys()):
            self.speaker.withdraw(prefix)
            del self.routes[prefix]
            done.withdrawn += 1
        for prefix, route in plan.routes.items():
            if self.routes.get(prefix) != route:
                self.speaker.announce(RouteConfig(prefix=prefix, next_hop=route.next_hop))
                self.routes[prefix] = route
                done.announced += 1
        for field in attrs.fields(SyncCounts):
            total = getattr(self.counts, field.name) + getattr(done, field.name)
            setattr(self.counts, field.name, total)
        return done
