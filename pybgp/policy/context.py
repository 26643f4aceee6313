"""What a policy is evaluated on, and what it answers. Both are NamedTuples: one of each is
made per route evaluated, on the hot path."""

from __future__ import annotations

from typing import NamedTuple

from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route
from pybgp.wire.constants import Family
from pybgp.wire.pathattrs import PathAttributes


class RouteContext(NamedTuple):
    """One route as a policy sees it.

    `prefix`: the wire-form key, length octet + prefix octets (without an ADD-PATH path
    identifier). `peer`: the neighbour the policy is applied for, the sender on import and
    the receiver on export (what neighbor sets match). `source`: where the route came from
    when that is not `peer` (export); route-type conditions read it. `local_asn`: our AS
    (prepend "self"). `local_address`: our address towards `peer` (next hop "self"; when
    None, next hop "self" leaves the next hop as it is).
    """

    prefix: bytes
    family: Family
    attributes: PathAttributes
    next_hop: str
    peer: PeerInfo
    local_asn: int
    local_address: str | None = None
    source: PeerInfo | None = None

    @classmethod
    def for_import(
        cls, prefix: bytes, family: Family, route: Route, local_address: str | None = None
    ) -> RouteContext:
        """A route received from `route.peer`."""
        peer = route.peer
        return cls(
            prefix, family, route.attributes, route.next_hop, peer, peer.local_asn, local_address
        )

    @classmethod
    def for_export(
        cls,
        prefix: bytes,
        family: Family,
        route: Route,
        to_peer: PeerInfo,
        local_address: str | None = None,
    ) -> RouteContext:
        """A route (from `route.peer`) on its way to `to_peer`."""
        return cls(
            prefix,
            family,
            route.attributes,
            route.next_hop,
            to_peer,
            to_peer.local_asn,
            local_address,
            route.peer,
        )

    def route_type(self) -> str:
        """ "local" (we originate it), "internal" (from our AS or our confederation) or
        "external"."""
        source = self.source or self.peer
        if source.local:
            return "local"
        if source.ibgp or source.confederation:
            return "internal"
        return "external"


class Result(NamedTuple):
    """The verdict. `attributes` and `next_hop` are the route as the policies left it when
    accepted, and as it was given when rejected. `decided_by`: "policy/statement",
    "policy/default" (a policy's own default action) or "default" (the attachment's)."""

    accepted: bool
    attributes: PathAttributes
    next_hop: str
    decided_by: str
