"""Adj-RIB-Out (RFC 4271 §3.2, §9.2): every update group, and the Loc-RIB changes not yet
sent.

Changes are batched: `enqueue` keeps the newest best path per prefix, `flush` has each group
(`pybgp.rib.update_group`) pack all prefixes with equal attributes and next hop into as few
UPDATEs as the message size allows, withdrawals first.

Peers that take several paths per prefix (`ExportKey.send_paths`, ADD-PATH send, RFC 7911)
are in a `PathsGroup` (`pybgp.rib.adj_out_paths`), which learns of every prefix whose paths
changed (`enqueue_paths`); while there is no such group nothing of that is kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TypeVar

from pybgp.rib.addpath import PathSource
from pybgp.rib.adj_out_paths import PathsGroup
from pybgp.rib.export import ExportKey
from pybgp.rib.loc_rib import BestChange, LocRib
from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route
from pybgp.rib.update_group import Outgoing, UpdateGroup
from pybgp.wire.constants import Family
from pybgp.wire.nlri import Nlri

V = TypeVar("V")


class AdjRibOut:
    """All update groups, and the best-path changes not yet sent. `paths`: every eligible
    path of a prefix, best first (the Loc-RIB's `ranked`), for peers that take several
    paths per prefix; without it no peer may ask for that."""

    def __init__(self, paths: PathSource | None = None) -> None:
        self._groups: dict[ExportKey, UpdateGroup] = {}
        self._group_of: dict[str, UpdateGroup] = {}
        self._pending: dict[Family, dict[Nlri, Route | None]] = {}
        self._paths = paths
        self._several: list[PathsGroup] = []
        self._touched: dict[Family, dict[Nlri, None]] = {}  # prefixes whose paths changed

    @property
    def groups(self) -> list[UpdateGroup]:
        return list(self._groups.values())

    def group_of(self, address: str) -> UpdateGroup | None:
        return self._group_of.get(address)

    def add_peer(
        self, peer: PeerInfo, key: ExportKey, loc_ribs: Mapping[Family, LocRib]
    ) -> UpdateGroup:
        """Put an established peer in the group for its key (made, and filled from the
        Loc-RIBs, if new). Send it `group.table_messages(peer.address)` next."""
        self.remove_peer(peer.address)
        for family in key.families:
            if (key.external or key.next_hop_self) and key.self_address(family) is None:
                raise ValueError(f"{peer.address}: {family.name} needs our local address")
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = self._new_group(key)
            for family in key.families:
                if family in loc_ribs:
                    group.load(family, loc_ribs[family])
        group.add_member(peer, loc_ribs, self._pending)
        self._group_of[peer.address] = group
        return group

    def _new_group(self, key: ExportKey) -> UpdateGroup:
        if key.send_paths < 2 or not key.addpath_tx & key.families:
            return UpdateGroup(key)
        if self._paths is None:
            raise ValueError("sending several paths per prefix needs AdjRibOut(paths=...)")
        group = PathsGroup(key, self._paths)
        self._several.append(group)
        return group

    def remove_peer(self, address: str) -> None:
        group = self._group_of.pop(address, None)
        if group is not None:
            group.remove_member(address)
            if not group.members:
                del self._groups[group.key]
                if group.several_paths:
                    self._several = [g for g in self._several if g is not group]
                    if not self._several:
                        self._touched.clear()

    def enqueue(self, family: Family, changes: Iterable[BestChange]) -> None:
        """Note Loc-RIB changes; only the newest per prefix is sent at `flush`."""
        pending = self._pending.setdefault(family, {})
        if self._several:
            changes = list(changes)
            self.enqueue_paths(family, [prefix for prefix, _old, _new in changes])
        for prefix, _old, new in changes:
            pending[prefix] = new

    @property
    def wants_paths(self) -> bool:
        """Whether some group takes several paths per prefix: then tell `enqueue_paths`
        about every prefix whose paths changed."""
        return bool(self._several)

    def enqueue_paths(self, family: Family, prefixes: Iterable[Nlri]) -> None:
        """Note prefixes whose paths changed (any path, not only the best)."""
        if self._several:
            self._touched.setdefault(family, {}).update(dict.fromkeys(prefixes))

    @property
    def has_pending(self) -> bool:
        return any(self._pending.values()) or any(self._touched.values())

    def flush(self, limit: int | None = None) -> dict[UpdateGroup, list[Outgoing]]:
        """The UPDATEs for what was enqueued since the last flush, per group: everything,
        or the oldest `limit` prefixes (so a caller can yield between parts)."""
        pending = _take(self._pending, limit)
        out: dict[UpdateGroup, list[Outgoing]] = {}
        for group in self._groups.values():
            messages: list[Outgoing] = []
            for family, changes in pending.items():
                if family in group.key.families:
                    messages += group.build(family, changes)
            if messages:
                out[group] = messages
        if self._touched:
            touched = _take(self._touched, limit)
            for several in self._several:
                for family, prefixes in touched.items():
                    if family in several.multi:
                        messages = several.build_paths(family, prefixes)
                        if messages:
                            out.setdefault(several, []).extend(messages)
        return out

    def advertised(self, address: str, family: Family) -> int:
        group = self._group_of.get(address)
        return 0 if group is None else group.advertised(address, family)


def _take(queued: dict[Family, dict[Nlri, V]], limit: int | None) -> dict[Family, dict[Nlri, V]]:
    """Everything queued, or the oldest `limit` prefixes; what is taken leaves `queued`."""
    taken: dict[Family, dict[Nlri, V]] = {}
    if limit is None:
        taken.update(queued)
        queued.clear()
        return taken
    for family, changes in queued.items():
        if limit <= 0:
            break
        if len(changes) <= limit:
            taken[family], queued[family] = changes, {}
        else:
            prefixes = list(itertools.islice(changes, limit))
            taken[family] = {prefix: changes.pop(prefix) for prefix in prefixes}
        limit -= len(taken[family])
    return taken
