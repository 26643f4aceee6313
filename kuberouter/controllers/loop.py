"""The run loop the controllers share: store changes -> incremental compiler -> back end.

Start: build the compiler from the store's snapshot (in a worker thread: the watch keeps
flowing meanwhile) and repair the kernel to its state. Then, per batch of store changes (a
change and the rest of its burst, so a burst costs a few syncs), feed the changes to the
compiler, which recomputes only what depends on them, and `apply(desired, previous)`: the
back end writes only what changed. Every `sync_period` a `reconcile(desired)` repairs drift:
the kernel is read in a worker thread while updates go on (`read_kernel`; at 50,000 pods
`ipset save` takes a second, which every change of that second would have waited for), then
the repair waits its turn between two updates. The compiler is built from a snapshot at the
start and after a failed sync only: rebuilding it every period made the changes of that
moment wait behind a full compile and left the heap a compiler bigger, and it equals a from-scratch
compile anyway (property tests check it). When no change is waiting, `idle` runs
(the firewall starts there, beside the updates, reading back what its last repair wrote).

A failed sync is logged on one line and retried on the next change or period; the last
programmed state is then unknown, so the retry is a full repair, from a new compiler.
Health only hears of successful syncs, so /healthz turns red if syncs keep failing.
Back-end calls block (they run tools), so they run in a worker thread.

A controller subclasses `SyncLoop` with its compiler (`compiler_for`, `feed`), its state
(`state`) and what a successful sync reports (`synced`, given the changes it programmed).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

import trio

from kuberouter.controllers.batch import BURST, SETTLE, next_batch
from kuberouter.health import Health
from kuberouter.k8s.store import Change, Snapshot, Store
from kuberouter.model import Node

log = logging.getLogger(__name__)

State = TypeVar("State")
Stats = TypeVar("Stats")
Compiler = TypeVar("Compiler")
State_contra = TypeVar("State_contra", contravariant=True)
Stats_co = TypeVar("Stats_co", covariant=True)


class Backend(Protocol[State_contra, Stats_co]):
    def apply(self, desired: State_contra, previous: State_contra | None = None) -> Stats_co: ...

    def reconcile(self, desired: State_contra) -> Stats_co: ...


class SyncLoop(abc.ABC, Generic[Compiler, State, Stats]):
    name = "controller"  # in logs
    kinds: tuple[str, ...] = ()
    settle, burst = SETTLE, BURST  # a batch: a change and the rest of its burst (batch.py)

    def __init__(
        self, store: Store, backend: Backend[State, Stats], health: Health, sync_period: float
    ) -> None:
        self.store, self.backend, self.health = store, backend, health
        self.sync_period = sync_period
        self.programmed: State | None = None  # None: unknown, repair next time
        self.compiler: Compiler | None = None  # None: rebuild from a snapshot
        self.syncs = 0  # successful syncs (tests wait on these)
        self.failures = 0
        self._writing = trio.Lock()  # one sync at a time: updates and the periodic repair
        self._repairing = False  # a periodic repair is under way

    @abc.abstractmethod
    def compiler_for(self, snapshot: Snapshot) -> Compiler:
        """A compiler holding every object of `snapshot`."""

    @abc.abstractmethod
    def feed(self, compiler: Compiler, changes: Iterable[Change]) -> None:
        """Hand store changes to the compiler; feeding one twice is harmless."""

    @abc.abstractmethod
    def state(self, compiler: Compiler) -> State: ...

    @abc.abstractmethod
    async def synced(
        self, what: str, desired: State, stats: Stats, seconds: float, changes: Sequence[Change]
    ) -> None:
        """Metrics and heartbeat after a successful sync of `changes` (none: a repair)."""

    async def idle(self, beside: trio.Nursery) -> None:
        """Runs when no change is waiting (after the initial sync and after each batch);
        slow work it starts in `beside` goes on while changes are synced."""

    def read_kernel(self) -> object | None:
        """The kernel's state for the periodic repair, read in a worker thread while
        updates go on (None: the repair reads it itself, between two updates)."""
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        changes = self.store.subscribe(self.kinds)  # before the first snapshot: none missed
        async with changes, trio.open_nursery() as beside:
            await self._sync("initial sync", repair=True)
            task_status.started()
            deadline = trio.current_time() + self.sync_period
            while True:
                if not changes.statistics().current_buffer_used:
                    await self.idle(beside)
                batch = await next_batch(changes, deadline, self.settle, self.burst)
                if batch:
                    await self._sync("update", repair=self.programmed is None, changes=batch)
                if trio.current_time() >= deadline:
                    if not self._repairing:
                        self._repairing = True
                        beside.start_soon(self._reconcile)
                    deadline = trio.current_time() + self.sync_period

    async def _reconcile(self) -> None:
        """Read the kernel beside the updates, then repair from what was read between two
        updates (what an update changed since the read is rewritten once more)."""
        try:
            found = await trio.to_thread.run_sync(self.read_kernel)
        except Exception as error:  # the repair reads the kernel again itself
            log.warning("%s: reading the kernel for the periodic repair failed: %s",
                        self.name, error)  # fmt: skip
            found = None
        try:
            await self._sync("reconcile", repair=True, found=found)
        finally:
            self._repairing = False

    async def _sync(
        self,
        what: str,
        *,
        repair: bool,
        changes: Sequence[Change] | None = None,
        found: object | None = None,
    ) -> None:
        """Feed `changes` to the compiler (without one: build it from a snapshot), apply
        (a repair from `found`, the kernel as read, if given); one sync at a time."""
        start = time.perf_counter()
        async with self._writing:
            try:
                if self.compiler is None:
                    snapshot = self.store.snapshot()
                    self.compiler = await trio.to_thread.run_sync(self.compiler_for, snapshot)
                else:
                    self.feed(self.compiler, changes or ())
                desired = self.state(self.compiler)
                if desired is self.programmed and not repair:
                    return  # the compiler found nothing to change
                stats = await trio.to_thread.run_sync(self._apply, desired, repair, found)
            except Exception as error:  # never crash the agent: retried on the next change
                self.programmed, self.failures = None, self.failures + 1
                self.compiler = None  # start over from a snapshot next time
                log.error("%s %s failed, retrying on the next change or period: %s",
                          self.name, what, error)  # fmt: skip
                return
            self.programmed, self.syncs = desired, self.syncs + 1
        await self.synced(what, desired, stats, time.perf_counter() - start, changes or ())

    def _apply(self, desired: State, repair: bool, found: object | None) -> Stats:
        if self.programmed is None:
            return self.backend.apply(desired, None)
        if repair:
            return self.backend.reconcile(desired)
        return self.backend.apply(desired, self.programmed)


def may_start(what: str, store: Store, node: str, missing: str | None) -> bool:
    """Whether a controller starts: not if its back end misses something here
    (`missing`), nor without this node's Node object; says why once, as a warning."""
    if missing is None and store.get(Node, node) is None:
        missing = f"no Node object named {node!r} (set --hostname-override)"
    if missing is not None:
        log.warning("%s not started: %s", what, missing)
    return missing is None
