"""Adj-RIB-In: the routes one peer sent us, per family (RFC 4271 §3.2, §9.1).

Layout, chosen for the ingest path (architecture rule 5):
- a family without ADD-PATH: prefix key -> `Route`;
- a family with ADD-PATH (RFC 7911): prefix key -> {path id: `Route`}.
Prefix keys are the wire-form NLRI the decoder cut out (without the path identifier). One
`Route` (attributes, next hop, peer) is made per UPDATE and shared by all its prefixes, so a
route costs its key and one dict entry. Routes whose AS path holds our AS (§9.1.2) are kept
apart, as received but not accepted, so both counts stay O(1) to read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route, RouteFilter, attribute_value
from pybgp.rib.tables import AddPathTable, PlainTable, Table
from pybgp.wire import aspath
from pybgp.wire.constants import IPV4_UNICAST, AttrType, Family, SegmentType
from pybgp.wire.nlri import Nlri, address_text
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update

_SEQUENCE = bytes((SegmentType.AS_SEQUENCE,))


class Touched(NamedTuple):
    """Prefixes (without path ids) whose eligible paths from this peer changed.

    `route`: the path they have from this peer now (None: withdrawn, or not eligible).
    `previous`: the path each had before (None where it had none), for the Loc-RIB's
    incremental decision; None when not known (ADD-PATH: several paths per prefix).
    """

    family: Family
    prefixes: Sequence[Nlri]
    route: Route | None = None
    previous: Sequence[Route | None] | None = None


class Counts(NamedTuple):
    received: int  # paths held, eligible or not
    accepted: int  # paths eligible for the decision process


def next_hop_text(raw: bytes) -> str:
    """The (global) next hop of an MP_REACH_NLRI or NEXT_HOP value as text (RFC 2545 §3)."""
    return address_text(raw[:16] if len(raw) == 32 else raw)


class AdjRibIn:
    """The routes received from one peer (or, with `local_origin`, those we originate)."""

    def __init__(
        self,
        peer: PeerInfo,
        import_filter: RouteFilter | None = None,
        *,
        router_id: str | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self.peer = peer
        # RFC 4456 §8: an iBGP route carrying our router ID as ORIGINATOR_ID, or our
        # cluster ID in its CLUSTER_LIST, has looped through reflection; it is ignored.
        self._reflection_check = peer.ibgp and not peer.local and router_id is not None
        self._router_id, self._cluster_id = router_id, cluster_id or router_id
        # The import policy: what it rejects is kept as received but not accepted.
        self.import_filter = import_filter
        self._tables: dict[Family, Table] = {}
        # eBGP AS-loop detection (§9.1.2): our AS anywhere in the path. A byte search of the
        # attributes rules most paths out without decoding them.
        self._loop_check = not peer.ibgp and not peer.local
        self._asn_octets = peer.local_asn.to_bytes(4, "big")
        # RFC 4271 §6.3: an eBGP path must start with the peer's AS (an AS_SEQUENCE).
        self._first_as_check = peer.external and peer.enforce_first_as
        self._peer_as_octets = peer.asn.to_bytes(4, "big")
        self._last: Route | None = None  # the Route made last, and whether it is eligible
        self._last_eligible = True
        self._last_v4: Route | None = None  # the last one from IPv4 NLRI + NEXT_HOP
        self._v4: Table | None = None  # the IPv4 unicast table, found without hashing

    # -- reading ------------------------------------------------------------------------
    def table(self, family: Family) -> Table | None:
        return self._tables.get(family)

    def families(self) -> list[Family]:
        return list(self._tables)

    def counts(self, family: Family) -> Counts:
        table = self._tables.get(family)
        return Counts(0, 0) if table is None else Counts(table.received(), table.accepted())

    def paths(self, family: Family, prefix: Nlri) -> dict[int, Route]:
        """Path id -> route for one prefix (path id 0 without ADD-PATH); eligible ones only."""
        table = self._tables.get(family)
        return {} if table is None else table.paths(prefix)

    def received_paths(self, family: Family, prefix: Nlri) -> dict[int, Route]:
        """Path id -> route as the peer sent it, accepted or not (for explaining)."""
        table = self._tables.get(family)
        if table is None:
            return {}
        found = table.rejected_paths(prefix)
        for path_id, route in table.paths(prefix).items():
            found[path_id] = route.received or route
        return found

    def routes(self, family: Family) -> Iterator[tuple[Nlri, int, Route]]:
        """(prefix, path id, route) for every eligible path of the family."""
        table = self._tables.get(family)
        return iter(()) if table is None else table.items()

    # -- changing -----------------------------------------------------------------------
    def apply(self, update: Update) -> list[Touched]:
        """Take in one decoded UPDATE: withdrawals first, then announcements (a prefix is in
        one field of a message only)."""
        out: list[Touched] = []
        attributes = update.attributes
        if update.addpath or update.withdrawn or update.mp_unreach or update.mp_reach:
            self._apply_all(update, out)
        elif update.nlri and attributes is not None:  # the usual UPDATE: IPv4 NLRI only
            self._apply_v4(attributes, False, update.nlri, out)
        return out

    def _apply_all(self, update: Update, out: list[Touched]) -> None:
        addpath = update.addpath
        if update.withdrawn:
            self._withdraw(IPV4_UNICAST, IPV4_UNICAST in addpath, update.withdrawn, out)
        unreach = update.mp_unreach
        if unreach is not None and unreach.nlri:
            self._withdraw(unreach.family, unreach.family in addpath, unreach.nlri, out)
        attributes = update.attributes
        if attributes is None:
            return
        if update.nlri:
            self._apply_v4(attributes, IPV4_UNICAST in addpath, update.nlri, out)
        reach = update.mp_reach
        if reach is not None and reach.nlri:
            route = self._route(attributes, next_hop_text(reach.next_hop))
            self._announce(reach.family, reach.family in addpath, reach.nlri, route, out)

    def _apply_v4(
        self, attributes: PathAttributes, addpath: bool, keys: Sequence[Nlri], out: list[Touched]
    ) -> None:
        route = self._last_v4
        if route is None or route.attributes is not attributes or route is not self._last:
            hop = attribute_value(attributes.raw, AttrType.NEXT_HOP)
            if hop is None:  # the decoder ensures NEXT_HOP with NLRI; be safe: withdraw
                self._withdraw(IPV4_UNICAST, addpath, keys, out)
                return
            route = self._last_v4 = self._route(attributes, next_hop_text(hop))
        self._announce(IPV4_UNICAST, addpath, keys, route, out)

    def announce(
        self,
        family: Family,
        prefixes: Sequence[Nlri],
        attributes: PathAttributes,
        next_hop: str,
        addpath: bool = False,
    ) -> list[Touched]:
        """Put routes in directly (originated routes; tests)."""
        out: list[Touched] = []
        self._announce(family, addpath, prefixes, self._route(attributes, next_hop), out)
        return out

    def withdraw(
        self, family: Family, prefixes: Sequence[Nlri], addpath: bool = False
    ) -> list[Touched]:
        out: list[Touched] = []
        self._withdraw(family, addpath, prefixes, out)
        return out

    def clear(self) -> list[Touched]:
        """Drop everything (the session went down without graceful restart)."""
        out = [Touched(f, t.prefixes()) for f, t in self._tables.items() if len(t)]
        self._tables.clear()
        self._last = self._last_v4 = None
        self._v4 = None
        return out

    # -- graceful restart (RFC 4724 §4.2) ------------------------------------------------
    def mark_stale(self, family: Family) -> int:
        """Mark every path of the family stale; a path the peer sends again is fresh.
        Returns the number of paths marked."""
        table = self._tables.get(family)
        return 0 if table is None else table.mark_stale()

    def stale_families(self) -> list[Family]:
        """The families with paths still stale."""
        return [family for family, table in self._tables.items() if table.stale]

    def stale_count(self, family: Family) -> int:
        table = self._tables.get(family)
        return 0 if table is None else len(table.stale)

    def sweep_stale(self, family: Family) -> list[Touched]:
        """Withdraw the paths still stale (End-of-RIB came, or the restart timer ran out)."""
        table = self._tables.get(family)
        if table is None:
            return []
        keys = table.take_stale()
        out: list[Touched] = []
        if keys:
            self._withdraw(family, table.addpath, keys, out)
        return out

    # -- internals ----------------------------------------------------------------------
    def _route(self, attributes: PathAttributes, next_hop: str) -> Route:
        """The shared Route for these attributes; consecutive UPDATEs with equal attributes
        (a common packing) share one."""
        last = self._last
        if last is not None and last.attributes is attributes and last.next_hop == next_hop:
            return last
        route = self._last = Route(attributes, next_hop, self.peer)
        self._last_eligible = self._eligible(attributes)
        return route

    def _eligible(self, attributes: PathAttributes) -> bool:
        if self._reflection_check:
            return not (
                AttrType.ORIGINATOR_ID in attributes and attributes.originator_id == self._router_id
            ) and not (
                AttrType.CLUSTER_LIST in attributes and self._cluster_id in attributes.cluster_list
            )
        if self._first_as_check and not self._starts_with_peer_as(attributes):
            return False
        if not self._loop_check:
            return True
        if attributes.asn4 and self._asn_octets not in attributes.raw:
            return True
        return not aspath.contains_as(attributes.as_path, self.peer.local_asn)

    def _starts_with_peer_as(self, attributes: PathAttributes) -> bool:
        if attributes.asn4:  # the wire form: segment type, length, then the first AS
            path = attribute_value(attributes.raw, AttrType.AS_PATH) or b""
            return path[:1] == _SEQUENCE and path[2:6] == self._peer_as_octets
        segments = attributes.as_path
        return (
            bool(segments)
            and segments[0][0] == SegmentType.AS_SEQUENCE
            and segments[0][1][0] == self.peer.asn
        )

    def _table(self, family: Family, addpath: bool) -> Table:
        table = self._v4 if family is IPV4_UNICAST else self._tables.get(family)
        if table is None:
            table = self._tables[family] = AddPathTable() if addpath else PlainTable()
            if family == IPV4_UNICAST:
                self._v4 = table
        elif table.addpath != addpath:
            raise ValueError(f"{family.name}: ADD-PATH mode changed without clear()")
        return table

    def _announce(
        self,
        family: Family,
        addpath: bool,
        keys: Sequence[Nlri],
        route: Route,
        out: list[Touched],
    ) -> None:
        eligible = self._last_eligible if route is self._last else self._eligible(route.attributes)
        table = self._table(family, addpath)
        if eligible and self.import_filter is not None:
            for kept, some_keys in self._filtered(family, addpath, keys, route):
                self._put(family, table, some_keys, kept or route, kept is not None, out)
            return
        self._put(family, table, keys, route, eligible, out)

    def _put(
        self,
        family: Family,
        table: Table,
        keys: Sequence[Nlri],
        route: Route,
        eligible: bool,
        out: list[Touched],
    ) -> None:
        prefixes, previous = table.announce(keys, route, eligible)
        if prefixes:
            out.append(Touched(family, prefixes, route if eligible else None, previous))

    def _filtered(
        self, family: Family, addpath: bool, keys: Sequence[Nlri], route: Route
    ) -> list[tuple[Route | None, Sequence[Nlri]]]:
        """The keys grouped by what the import policy makes of the route (None: rejected)."""
        policy = self.import_filter
        assert policy is not None
        if "prefix" not in policy.reads:
            first = keys[0][4:] if addpath else keys[0]
            return [(policy(family, first, route), keys)]
        groups: dict[Route | None, list[Nlri]] = {}
        for key in keys:
            kept = policy(family, key[4:] if addpath else key, route)
            found = groups.get(kept)
            if found is None:
                found = groups[kept] = []
            found.append(key)
        return list(groups.items())

    def _withdraw(
        self, family: Family, addpath: bool, keys: Sequence[Nlri], out: list[Touched]
    ) -> None:
        table = self._tables.get(family)
        if table is None:
            return
        if table.addpath != addpath:
            raise ValueError(f"{family.name}: ADD-PATH mode changed without clear()")
        prefixes, previous = table.withdraw(keys)
        if prefixes:
            out.append(Touched(family, prefixes, None, previous))
