"""Leader election as a trio task: the Elector's decisions (lease.py), the Lease read and
written in a worker thread (writes.py).

    election = LeaderElection(api_client, "kube-system", "kube-router-lballoc", "node-a")
    await nursery.start(election.run)     # tries at once, then every retry period
    changes = election.subscribe()        # True / False as leadership comes and goes
    election.leading_until()              # act as the leader only before this (trio clock)

Leadership is a deadline, not a flag: the last renewal (timed from before its request)
plus the renew deadline. Work that must not run twice checks it before every write, so
a stuck request or a lost API server can never leave two leaders acting at once.
Leaving `run` gives the Lease up, so another candidate takes over at its next try.
A leader that loses the Lease goes back to trying, as a candidate.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import trio

from kuberouter.k8s import writes
from kuberouter.k8s.client import ApiClient
from kuberouter.k8s.lease import Elector, Timings, Write

log = logging.getLogger(__name__)
JITTER = 1.2  # candidates retry after retry_period * [1, JITTER], as client-go
FAILURES = writes.FAILURES


def _wall_now() -> datetime:
    return datetime.now(UTC)


class LeaderElection:
    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        name: str,
        identity: str,
        timings: Timings | None = None,
        *,
        wall: Callable[[], datetime] = _wall_now,
    ) -> None:
        self.api_client, self.namespace, self.name = api_client, namespace, name
        self.elector = Elector(identity, timings)
        self.timings = self.elector.timings
        self._wall = wall
        self._renewed_at: float | None = None  # trio clock, before the last successful write
        self._lock = threading.Lock()  # one Lease exchange at a time, abandoned ones included
        self._subscribers: list[trio.MemorySendChannel[bool]] = []
        self._leading = False
        self.terms = 0  # times this candidate became the leader

    @property
    def identity(self) -> str:
        return self.elector.identity

    @property
    def holder(self) -> str:
        """Who holds the Lease, as last seen ("" when nobody or not read yet)."""
        return self.elector.holder

    def leading_until(self) -> float:
        if self._renewed_at is None or not self._leading:
            return -math.inf
        return self._renewed_at + self.timings.renew_deadline

    def leading(self) -> bool:
        return trio.current_time() < self.leading_until()

    def subscribe(self) -> trio.MemoryReceiveChannel[bool]:
        send, receive = trio.open_memory_channel[bool](math.inf)
        self._subscribers.append(send)
        return receive

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await self._acquire()
                self._set_leading(True)
                await self._keep()
                self._set_leading(False)
        finally:
            self._set_leading(False)
            with trio.move_on_after(self.timings.renew_deadline) as scope:
                scope.shield = True
                await trio.to_thread.run_sync(self._release, abandon_on_cancel=True)

    async def _acquire(self) -> None:
        while not await self._try():
            await trio.sleep(self.timings.retry_period * random.uniform(1.0, JITTER))

    async def _keep(self) -> None:
        """Renew every retry period until a renewal is overdue by the renew deadline."""
        while True:
            await trio.sleep(self.timings.retry_period)
            if not await self._try() and trio.current_time() >= self.leading_until():
                log.warning(
                    "lost the %s/%s lease: not renewed for %gs",
                    self.namespace, self.name, self.timings.renew_deadline,
                )  # fmt: skip
                return

    async def _try(self) -> bool:
        started = trio.current_time()
        succeeded = await trio.to_thread.run_sync(
            self._exchange, started, self._wall(), abandon_on_cancel=True
        )
        if succeeded:
            self._renewed_at = started
        return succeeded

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            self.terms += 1
            log.info("%s leads through the %s/%s lease", self.identity, self.namespace, self.name)
        for channel in self._subscribers:
            channel.send_nowait(leading)

    # Worker-thread side.

    def _exchange(self, now: float, wall: datetime) -> bool:
        """One tryAcquireOrRenew: the leader's fast renewal, else read, decide and write."""
        with self._lock:
            fast = self.elector.renewal(now, wall)
            if fast is not None and self._write(fast, now):
                return True
            try:
                lease: dict[str, Any] | None = writes.get_lease(
                    self.api_client, self.namespace, self.name, timeout=self._timeout()
                )
            except writes.ApiError as error:
                if error.code != 404:
                    log.info("reading the %s lease failed: %s", self.name, error)
                    return False
                lease = None
            except FAILURES as error:
                log.info("reading the %s lease failed: %s", self.name, error)
                return False
            before = self.elector.holder
            write = self.elector.attempt(now, wall, lease)
            if self.elector.holder not in (before, self.identity):
                log.info("the %s lease is held by %s", self.name, self.elector.holder or "nobody")
            return write is not None and self._write(write, now)

    def _write(self, write: Write, now: float) -> bool:
        lease: dict[str, Any] = {
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": write.record.spec(),
        }
        try:
            if write.version is None:
                answer = writes.create_lease(
                    self.api_client, self.namespace, lease, timeout=self._timeout()
                )
            else:
                lease["metadata"]["resourceVersion"] = write.version
                answer = writes.replace_lease(
                    self.api_client, self.namespace, lease, timeout=self._timeout()
                )
        except FAILURES as error:  # a 409 means another candidate wrote first
            log.debug("writing the %s lease failed: %s", self.name, error)
            return False
        self.elector.written(write, answer, now)
        return True

    def _release(self) -> None:
        with self._lock:
            write = self.elector.release(self._wall())
            if write is not None and self._write(write, 0.0):
                log.info("gave up the %s/%s lease", self.namespace, self.name)

    def _timeout(self) -> tuple[float, float]:
        """A renewal must end well within the renew deadline."""
        read = self.timings.renew_deadline / 2
        return min(2.0, read), read
