"""The route pipeline: changes of the Adj-RIBs-In (the peers' and our own routes) through the
decision process (one Loc-RIB per family) to the update groups (Adj-RIB-Out), sent to the
peers in chunks, and to the best-path subscribers and the FIB.

While our own graceful restart defers selection (RFC 4724 §4.1) nothing goes out
(`deferral`), and the kernel keeps the routes of before the restart (`fib_deferral`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import trio

from pybgp.restart import Deferral
from pybgp.rib import AdjRibIn, AdjRibOut, BestPathConfig, LocRib, Touched, local_origin
from pybgp.rib.addpath import Ranked
from pybgp.rib.fanout import fan_out
from pybgp.rib.loc_rib import BestChange
from pybgp.rib.update_group import Outgoing, UpdateGroup
from pybgp.speaker.peer import FAMILIES, Peer
from pybgp.speaker.subscribers import Subscribers
from pybgp.wire import aspath
from pybgp.wire.constants import Family
from pybgp.wire.nlri import Nlri, nlri_to_str

FLUSH_CHUNK = 5_000  # prefixes per step of the outbound flush (about 10-25 ms)


@attrs.frozen
class BestPathChange:
    """What subscribers of best paths receive."""

    family: Family
    prefix: str
    next_hops: tuple[str, ...]  # empty: the prefix is gone
    as_path: str = ""


class RoutePipeline:
    def __init__(
        self, *, asn: int, router_id: str, multipath: int, fib: Any, peers: Mapping[str, Peer]
    ) -> None:
        best = BestPathConfig(multipath=multipath)
        self.loc = {family: LocRib(family, best) for family in FAMILIES}
        self.local = AdjRibIn(local_origin(asn, router_id))  # the routes we originate
        self.out = AdjRibOut(paths=self.ranked_paths)  # several paths: ADD-PATH send
        self.fib = fib
        self.deferral: Deferral | None = None  # our advertising, after our restart
        self.fib_deferral: Deferral | None = None  # removing kernel routes gone meanwhile
        self._peers = peers
        self._sources_cache: list[AdjRibIn] | None = None  # every Adj-RIB-In: see sources
        self._lone_as: Callable[[int | None], bool] | None = None
        self._flush = trio.Event()
        self._fib_pending: dict[str, tuple[str, ...]] = {}
        self._fib_wake = trio.Event()
        self._fib_reconcile = False  # the kernel to be brought in line with the Loc-RIB
        self._subscribers = Subscribers[BestPathChange]()

    def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._flusher)
        if self.fib is not None:
            nursery.start_soon(self._fib_writer)

    def subscribe(self) -> trio.MemoryReceiveChannel[BestPathChange]:
        return self._subscribers.subscribe()

    # -- the decision process -----------------------------------------------------------
    def sources(self) -> list[AdjRibIn]:
        found = self._sources_cache
        if found is None:
            found = self._sources_cache = [
                self.local,
                *(p.adj_in for p in self._peers.values() if p.adj_in is not None),
            ]
            self._lone_as = lone_as(found)
        return found

    def sources_changed(self) -> None:
        """A peer's Adj-RIB-In came, went or was kept for its restart."""
        self._sources_cache = None

    def ranked_paths(self, family: Family, prefix: Nlri) -> Ranked:
        """Every path of `prefix`, best first: for peers that take several (ADD-PATH)."""
        return self.loc[family].ranked(prefix, self.sources())

    def apply(self, touched: Iterable[Touched]) -> None:
        sources = self.sources()
        for item in touched:
            changes = self.loc[item.family].apply(item, sources, self._lone_as)
            if changes:
                self.out.enqueue(item.family, changes)
                self._publish(item.family, changes)
            if self.out.wants_paths:  # ADD-PATH send: any path of the prefixes may go out
                self.out.enqueue_paths(item.family, item.prefixes)
        self._flush.set()

    def _publish(self, family: Family, changes: list[BestChange]) -> None:
        if not (self._subscribers or self.fib is not None):
            return
        loc = self.loc[family]
        for prefix, _old, new in changes:
            text = nlri_to_str(prefix, family)
            hops = tuple(r.next_hop for r in loc.multipath(prefix)) if new is not None else ()
            if self.fib is not None and (new is None or not new.peer.local):
                self._fib_pending[text] = hops
                self._fib_wake.set()
            if self._subscribers:
                path = aspath.as_path_to_str(new.attributes.as_path) if new is not None else ""
                self._subscribers.publish(BestPathChange(family, text, hops, path))

    # -- out to the peers ---------------------------------------------------------------
    async def _flusher(self) -> None:
        while True:
            await self._flush.wait()
            self._flush = trio.Event()
            if self.deferral is not None:
                continue  # nothing goes out before our selection is complete (RFC 4724 §4.1)
            # In parts, yielding between them: a whole table's worth of changes at once
            # would hold the event loop (and every session's timers) for seconds.
            while self.out.has_pending:
                self._send_out(self.out.flush(limit=FLUSH_CHUNK))
                await trio.sleep(0)

    def _send_out(self, groups: dict[UpdateGroup, list[Outgoing]]) -> None:
        for outgoing in groups.values():
            for address, chunks in fan_out(outgoing).items():
                peer = self._peers.get(address)
                if peer is not None and peer.established:
                    peer.session.send(chunks)

    def send_table(self, peer: Peer) -> None:
        """Everything the peer is to have from us, then End-of-RIB per family."""
        group = self.out.group_of(peer.address)
        if group is not None:
            peer.session.send(group.table_messages(peer.address))

    # -- the FIB feed -------------------------------------------------------------------
    async def _fib_writer(self) -> None:
        while True:
            await self._fib_wake.wait()
            self._fib_wake = trio.Event()
            if self.fib_deferral is not None:
                continue  # the kernel keeps the routes of before our restart meanwhile
            pending, self._fib_pending = self._fib_pending, {}
            if self._fib_reconcile:
                self._fib_reconcile = False
                await trio.to_thread.run_sync(self.fib.reconcile, self._fib_table())
            await trio.to_thread.run_sync(self.fib.apply, pending)

    def _fib_table(self) -> dict[str, tuple[str, ...]]:
        """Every best path the kernel should have (not our own routes)."""
        wanted: dict[str, tuple[str, ...]] = {}
        for family, loc in self.loc.items():
            for key, route in loc.items():
                if not route.peer.local:
                    wanted[nlri_to_str(key, family)] = tuple(r.next_hop for r in loc.multipath(key))
        return wanted

    def repair_fib(self) -> None:
        """The kernel read back and made to hold exactly our best paths (a route someone
        deleted comes back); not while our restart defers."""
        if self.fib is not None and self.fib_deferral is None:
            self._fib_reconcile = True
            self._fib_wake.set()

    def end_fib_deferral(self) -> None:
        """The kernel is brought in line with the Loc-RIB: routes gone while we were away
        are removed."""
        if self.fib_deferral is None:
            return
        self.fib_deferral = None
        if self.fib is not None:
            self._fib_reconcile = True
        self._fib_wake.set()


def lone_as(sources: Sequence[AdjRibIn]) -> Callable[[int | None], bool] | None:
    """Whether no two sources can hold paths of one neighbour AS: every source (but our own
    routes) an eBGP peer whose paths must start with its AS. None when some source is not."""
    counts: dict[int, int] = {}
    for source in sources:
        peer = source.peer
        if peer.local:
            continue
        if not (peer.external and peer.enforce_first_as):
            return None
        counts[peer.asn] = counts.get(peer.asn, 0) + 1
    return lambda asn: asn is not None and counts.get(asn, 0) <= 1
