"""Update groups (RFC 4271 §9.2): peers whose `ExportKey` is equal share one Adj-RIB-Out.

A Loc-RIB change is exported once per group (`GroupExport`) and packed into UPDATEs once
per group; every member is then handed the same `bytes` objects. The group keeps what it
advertised (prefix -> `Exported`, shared by all prefixes of a route), which is also every
member's Adj-RIB-Out: a member lacks only the routes it sent us itself, when the group keeps
split horizon. ADD-PATH send (RFC 7911) of the best path alone puts path id 1 on every
prefix; groups that send several paths per prefix are `pybgp.rib.adj_out_paths.PathsGroup`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from pybgp.rib.export import Exported, ExportKey
from pybgp.rib.group_export import GroupExport
from pybgp.rib.loc_rib import LocRib
from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route
from pybgp.wire.constants import Family
from pybgp.wire.nlri import Nlri
from pybgp.wire.outbound import end_of_rib, pack_announcements, pack_withdrawals
from pybgp.wire.pathattrs import PathAttributes

PATH_ID = (1).to_bytes(4, "big")  # ADD-PATH send (RFC 7911): we send the best path only


class Target(NamedTuple):
    """Who in a group gets an UPDATE: every member but `skip` (None: every member), or only
    the member `only`. Split horizon never needs more (see `_split_horizon`), so a group of
    a thousand members never spells out a thousand sets of 999."""

    skip: str | None = None
    only: str | None = None


EVERYONE = Target()


class Outgoing(NamedTuple):
    """One encoded UPDATE, whom it goes to, and the group's members when it was built."""

    message: bytes
    to: Target
    members: frozenset[str]

    @property
    def peers(self) -> frozenset[str]:
        """The members that get the message."""
        skip, only = self.to
        if only is not None:
            return frozenset((only,)) & self.members
        return self.members - {skip} if skip is not None else self.members


class Batches:
    """Prefixes to announce (per exported route and target) and to withdraw (per target),
    collected by `UpdateGroup.build`."""

    def __init__(self) -> None:
        self.announce: dict[tuple[Exported, Target], list[Nlri]] = {}
        self.withdraw: dict[Target, list[Nlri]] = {}

    def add(self, exported: Exported, prefixes: list[Nlri], to: Target | None) -> None:
        if to is not None and prefixes:
            self.announce.setdefault((exported, to), []).extend(prefixes)

    def remove(self, prefixes: list[Nlri], to: Target | None) -> None:
        if to is not None and prefixes:
            self.withdraw.setdefault(to, []).extend(prefixes)


class UpdateGroup:
    several_paths = False  # a PathsGroup: several paths per prefix (ADD-PATH send)

    def __init__(self, key: ExportKey) -> None:
        self.key = key
        self.context = key.context()
        self.members: dict[str, PeerInfo] = {}
        self._everyone: frozenset[str] = frozenset()
        self._advertised: dict[Family, dict[Nlri, Exported]] = {f: {} for f in key.families}
        # Per member (with split horizon): how many advertised routes came from it.
        self._held_back: dict[Family, dict[str, int]] = {f: {} for f in key.families}
        self.export = GroupExport(key)  # a route as this group sends it, cached

    def __repr__(self) -> str:
        return f"UpdateGroup({sorted(self.members)}, {self.key!r})"

    # -- members ------------------------------------------------------------------------
    def add_member(
        self,
        peer: PeerInfo,
        loc_ribs: Mapping[Family, LocRib] | None = None,
        pending: Mapping[Family, Mapping[Nlri, Route | None]] | None = None,
    ) -> None:
        """`loc_ribs` and the changes not yet built (`pending`): for a second member, whose
        table must get the routes the first one sent us (see `build`)."""
        address = peer.address
        if len(self.members) == 1 and self.key.split_horizon and loc_ribs is not None:
            self._materialize(next(iter(self.members)), loc_ribs, pending or {})
        self.members[address] = peer
        self._members_changed()
        if self.key.split_horizon:
            for family, table in self._advertised.items():
                own = sum(1 for exported in table.values() if exported.source == address)
                self._held_back[family][address] = own

    def remove_member(self, address: str) -> None:
        self.members.pop(address, None)
        self._members_changed()
        for held in self._held_back.values():
            held.pop(address, None)

    def _materialize(
        self,
        sole: str,
        loc_ribs: Mapping[Family, LocRib],
        pending: Mapping[Family, Mapping[Nlri, Route | None]],
    ) -> None:
        """While a group has one member, the routes that member sent us are not kept in
        the table (it gets none of them: split horizon). A second member is about to join:
        export them from the Loc-RIB; prefixes with changes not yet built are left to the
        next `build`, which sees them as new."""
        for family in self._one_path_families():
            table, loc = self._advertised[family], loc_ribs.get(family)
            if loc is None:
                continue
            waiting = pending.get(family, {})
            held = self._held_back[family]
            for prefix, route in loc.items():
                if route.peer.address != sole or prefix in table or prefix in waiting:
                    continue
                exported = self.export(family, route, prefix)
                if exported is not None:
                    table[prefix] = exported
                    held[sole] = held.get(sole, 0) + 1

    def _one_path_families(self) -> list[Family]:
        """The families `build` keeps (one path per prefix, keyed by prefix)."""
        return list(self._advertised)

    def _members_changed(self) -> None:
        self._everyone = frozenset(self.members)

    def advertised(self, address: str, family: Family) -> int:
        """How many prefixes member `address` has from us in `family`."""
        table = self._advertised.get(family)
        if table is None or address not in self.members:
            return 0
        return len(table) - self._held_back[family].get(address, 0)

    # -- exporting ----------------------------------------------------------------------
    def load(self, family: Family, loc_rib: LocRib) -> None:
        """Fill a new group's Adj-RIB-Out from the Loc-RIB's best paths."""
        table = self._advertised[family]
        for prefix, route in loc_rib.items():
            exported = self.export(family, route, prefix)
            if exported is not None:
                table[prefix] = exported

    def _skip(self, exported: Exported | None) -> str | None:
        """The member that must not get this route: the peer it came from (split horizon)."""
        if exported is None or not self.key.split_horizon:
            return None
        source = exported.source
        return source if source in self.members else None

    def _all_but(self, skip: str | None) -> Target | None:
        """Every member but `skip`; None when that is nobody."""
        if skip is None:
            return EVERYONE if self.members else None
        return Target(skip=skip) if len(self.members) > 1 else None

    def build(self, family: Family, pending: Mapping[Nlri, Route | None]) -> list[Outgoing]:
        """The UPDATEs that bring the members from what they have to `pending` (new best
        path per prefix, None: no route)."""
        table, exports = self._advertised[family], self.export.routes[family]
        batches = Batches()
        common: dict[Exported, list[Nlri]] = {}  # to every member, the usual case
        gone: list[Nlri] = []
        sources = self.members if self.key.split_horizon else {}
        sole = next(iter(sources)) if len(sources) == 1 else None
        held_less = 0
        per_prefix = self.export.per_prefix
        last: Route | None = None
        own = False
        for prefix, route in pending.items():
            if sole is not None and route is not None:
                if route is not last:  # the prefixes of one UPDATE come one after another
                    last, own = route, route.peer.address == sole
                if own:
                    # The only member sent it: it gets nothing (split horizon), and the
                    # table does not keep it (`_materialize` does, if another joins).
                    had = table.pop(prefix, None) if table else None
                    if had is not None:
                        if had.source == sole:
                            held_less += 1
                        else:  # it had another peer's route: withdrawn
                            gone.append(prefix)
                    continue
            if route is None:
                new = None
            elif route in exports and not per_prefix:
                new = exports[route]
            else:
                new = self.export(family, route, prefix)
            old = table.get(prefix)
            if new is old:
                continue
            if new is None:
                del table[prefix]
            else:
                table[prefix] = new
            if (old is None or old.source not in sources) and (
                new is None or new.source not in sources
            ):
                if new is None:
                    gone.append(prefix)
                elif old is None or not new.same(old):
                    found = common.get(new)
                    if found is None:
                        found = common[new] = []
                    found.append(prefix)
            else:
                self._split_horizon(family, batches, prefix, old, new)
        if held_less:
            assert sole is not None
            self._held_back[family][sole] -= held_less
        everyone = self._all_but(None)
        for exported, prefixes in common.items():
            batches.add(exported, prefixes, everyone)
        batches.remove(gone, everyone)
        return self._withdrawals(family, batches.withdraw) + self._announcements(
            family, batches.announce
        )

    def _split_horizon(
        self,
        family: Family,
        batches: Batches,
        prefix: Nlri,
        old: Exported | None,
        new: Exported | None,
    ) -> None:
        """A member that sent us the old or new route: it has (had) nothing for the prefix
        while the others have (had) the route."""
        skip_old, skip_new = self._skip(old), self._skip(new)
        held = self._held_back[family]
        if skip_old is not None:
            held[skip_old] -= 1
        if skip_new is not None:
            held[skip_new] = held.get(skip_new, 0) + 1
        if new is None:  # whoever had the route loses it
            if old is not None:
                batches.remove([prefix], self._all_but(skip_old))
            return
        if old is None or not new.same(old):  # everyone but its source gets the new route
            batches.add(new, [prefix], self._all_but(skip_new))
        elif skip_old is not None and skip_old != skip_new:  # the same route, one more member
            batches.add(new, [prefix], Target(only=skip_old))
        if old is not None and skip_new is not None and skip_new != skip_old:
            batches.remove([prefix], Target(only=skip_new))  # the new route's source had it

    def table_messages(
        self, address: str, only: Family | None = None, end_of_rib_marker: bool = True
    ) -> list[bytes]:
        """Everything member `address` is to have, then End-of-RIB (RFC 4724 §2), per family
        (or only `only`): for a member whose session just came up, or that asked for a
        route refresh."""
        skip = address if self.key.split_horizon else None
        messages: list[bytes] = []
        for family, table in self._advertised.items():
            if only is not None and family != only:
                continue
            batches: dict[Exported, list[Nlri]] = {}
            for prefix, exported in table.items():
                if exported.source != skip:
                    batches.setdefault(exported, []).append(prefix)
            merged = self._announcements(
                family, {(e, EVERYONE): keys for e, keys in batches.items()}
            )
            messages += [out.message for out in merged]
            if end_of_rib_marker:
                messages.append(end_of_rib(family))
        return messages

    def member_prefixes(self, address: str, family: Family) -> set[Nlri]:
        """The prefixes member `address` has from us in `family`."""
        table = self._advertised.get(family, {})
        if not self.key.split_horizon:
            return set(table)
        return {prefix for prefix, entry in table.items() if entry.source != address}

    def withdrawal_messages(self, family: Family, prefixes: list[Nlri]) -> list[bytes]:
        """UPDATEs withdrawing `prefixes` (for a member whose group changed)."""
        return [out.message for out in self._withdrawals(family, {EVERYONE: prefixes})]

    # -- packing ------------------------------------------------------------------------
    def _keys(self, family: Family, prefixes: list[Nlri]) -> list[Nlri]:
        if family in self.context.addpath_tx:
            return [PATH_ID + prefix for prefix in prefixes]
        return prefixes

    def _withdrawals(self, family: Family, batches: dict[Target, list[Nlri]]) -> list[Outgoing]:
        out: list[Outgoing] = []
        members = self._everyone
        for to, prefixes in batches.items():
            keys = self._keys(family, prefixes)
            messages = pack_withdrawals(family, keys, self.context)
            out += [Outgoing(m, to, members) for m in messages]
        return out

    def _announcements(
        self, family: Family, batches: dict[tuple[Exported, Target], list[Nlri]]
    ) -> list[Outgoing]:
        """Batches of equal attributes, next hop and target are packed together."""
        merged: dict[tuple[PathAttributes, str, Target], list[Nlri]] = {}
        for (exported, to), prefixes in batches.items():
            key = (exported.attributes, exported.next_hop, to)
            merged.setdefault(key, []).extend(prefixes)
        out: list[Outgoing] = []
        members = self._everyone
        for (attributes, next_hop, to), prefixes in merged.items():
            keys = self._keys(family, prefixes)
            messages = pack_announcements(attributes, family, next_hop, keys, self.context)
            out += [Outgoing(m, to, members) for m in messages]
        return out
