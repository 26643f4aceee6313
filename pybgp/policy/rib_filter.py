"""Policy chains as the RIBs apply them (`pybgp.rib.route.RouteFilter`).

Import: on routes from a peer, before the decision process; a rejected route stays in the
Adj-RIB-In as received but not accepted. Export: on a route as the update group would
send it (after the RFC 4271 §5.1 changes: our AS prepended, next hop set), as GoBGP
applies export policy; route-type conditions still see where the route came from.
"""

from __future__ import annotations

from pybgp.policy.context import RouteContext
from pybgp.policy.engine import PolicyChain, evaluate
from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route
from pybgp.wire.constants import AFI_IPV6, Family
from pybgp.wire.nlri import Nlri
from pybgp.wire.pathattrs import PathAttributes, intern

_CACHE_LIMIT = 1 << 16


class ChainFilter:
    """One chain applied for one peer: `peer` is the sender (import) or the receiver
    (export, then `exporting`). `local4`/`local6`: our address towards the peer, for
    next hop "self"."""

    __slots__ = ("_made", "chain", "exporting", "local4", "local6", "peer", "reads")

    def __init__(
        self,
        chain: PolicyChain,
        peer: PeerInfo,
        *,
        exporting: bool = False,
        local4: str | None = None,
        local6: str | None = None,
    ) -> None:
        self.chain, self.peer, self.exporting = chain, peer, exporting
        self.local4, self.local6 = local4, local6
        self.reads = chain.reads
        # Routes made for changed attributes, shared by every prefix that gets them.
        self._made: dict[tuple[Route, PathAttributes, str], Route] = {}

    def context(self, family: Family, prefix: Nlri, route: Route) -> RouteContext:
        local = self.local6 if family.afi == AFI_IPV6 else self.local4
        source = route.peer if self.exporting else None
        peer = self.peer
        return RouteContext(
            prefix, family, route.attributes, route.next_hop, peer, peer.local_asn, local, source
        )

    def __call__(self, family: Family, prefix: Nlri, route: Route) -> Route | None:
        result = evaluate(self.chain, self.context(family, prefix, route))
        if not result.accepted:
            return None
        if result.attributes is route.attributes and result.next_hop == route.next_hop:
            return route
        key = (route, result.attributes, result.next_hop)
        found = self._made.get(key)
        if found is None:
            if len(self._made) >= _CACHE_LIMIT:
                self._made.clear()  # only sharing is lost
            attributes = intern(result.attributes)
            found = self._made[key] = Route(attributes, result.next_hop, route.peer, route)
        return found
