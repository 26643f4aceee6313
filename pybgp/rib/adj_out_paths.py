"""The update group of peers that take several paths per prefix (ADD-PATH send, RFC 7911).

Built on `UpdateGroup`: the export rules, the export policy and their caches apply per path
as they do per route there, and messages are packed the same way. What differs is the
table: the group's Adj-RIB-Out holds one entry per advertised path, keyed by the wire form
(path id + prefix), and each prefix remembers which path has which id
(`pybgp.rib.addpath`). Split horizon is per path: a member does not get the paths it sent
us, and gets the other ones.

Which paths: the first `send_paths` of the prefix's paths in decision-process order that
the group may be sent (`pybgp.rib.addpath.ranked`, through the `PathSource` the Adj-RIB-Out
was given). A change to any path of a prefix may change that choice, so the group is told
about every prefix whose paths changed (`AdjRibOut.enqueue_paths`), not only about new best
paths, and works out the prefix again. Families of the group without ADD-PATH send are
handled as by `UpdateGroup`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pybgp.rib.addpath import PathKey, PathSource, assign_ids, wire_key
from pybgp.rib.export import Exported, ExportKey
from pybgp.rib.loc_rib import LocRib
from pybgp.rib.route import Route
from pybgp.rib.update_group import Batches, Outgoing, UpdateGroup
from pybgp.wire.constants import Family
from pybgp.wire.nlri import Nlri


class PathsGroup(UpdateGroup):
    several_paths = True

    def __init__(self, key: ExportKey, paths: PathSource) -> None:
        super().__init__(key)
        self._paths = paths
        self._limit = key.send_paths
        self.multi = key.addpath_tx & key.families  # the families with several paths
        # prefix -> {path: path id} of what is advertised now.
        self._ids: dict[Family, dict[Nlri, dict[PathKey, int]]] = {f: {} for f in self.multi}

    def load(self, family: Family, loc_rib: LocRib) -> None:
        if family not in self.multi:
            super().load(family, loc_rib)
        else:  # no members yet: nothing is packed, the table is filled
            self.build_paths(family, [prefix for prefix, _ in loc_rib.items()])

    def _one_path_families(self) -> list[Family]:
        return [family for family in self._advertised if family not in self.multi]

    def build(self, family: Family, pending: Mapping[Nlri, Route | None]) -> list[Outgoing]:
        if family in self.multi:
            return []  # the prefixes come to `build_paths` (AdjRibOut.enqueue_paths)
        return super().build(family, pending)

    def build_paths(self, family: Family, prefixes: Iterable[Nlri]) -> list[Outgoing]:
        """The UPDATEs that bring the members to the current paths of `prefixes`: a path
        that went is withdrawn under its id, a new or changed one announced under its id."""
        table, ids = self._advertised[family], self._ids[family]
        batches = Batches()
        for prefix in prefixes:
            chosen = self._choose(family, prefix)
            old_ids = ids.get(prefix, {})
            new_ids = assign_ids(old_ids, chosen)
            for path, number in old_ids.items():
                if path not in new_ids:
                    key = wire_key(number, prefix)
                    self._split_horizon(family, batches, key, table.pop(key), None)
            for path, exported in chosen.items():
                key = wire_key(new_ids[path], prefix)
                old = table.get(key)
                if old is not exported:
                    table[key] = exported
                    self._split_horizon(family, batches, key, old, exported)
            if new_ids:
                ids[prefix] = new_ids
            elif old_ids:
                del ids[prefix]
        return self._withdrawals(family, batches.withdraw) + self._announcements(
            family, batches.announce
        )

    def _choose(self, family: Family, prefix: Nlri) -> dict[PathKey, Exported]:
        """The first `send_paths` paths, best first, that the group may be sent."""
        chosen: dict[PathKey, Exported] = {}
        for path, route in self._paths(family, prefix):
            exported = self.export(family, route, prefix)
            if exported is not None:
                chosen[path] = exported
                if len(chosen) >= self._limit:
                    break
        return chosen

    def _keys(self, family: Family, prefixes: list[Nlri]) -> list[Nlri]:
        if family in self.multi:
            return prefixes  # the table's keys carry their path ids already
        return super()._keys(family, prefixes)
