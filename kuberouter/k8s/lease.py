"""Leader election on a coordination.k8s.io/v1 Lease, pure half (client-go's semantics).

- A candidate takes the Lease when nobody holds it or it has expired: its record has not
  changed for leaseDurationSeconds, timed on our own clock from when we saw it change
  (clocks of different nodes are never compared).
- The holder renews every retry period, and stops leading when it has not renewed for
  renew_deadline (shorter than the lease duration, so it stops before anyone else may
  start). A renewal is timed from before its request was sent.
- On a clean stop the holder releases: no holder and a 1 s duration, so another
  candidate takes over at its next try.
- Concurrent writers are settled by the resourceVersion: the API server answers the
  loser 409 Conflict.

Time arrives as arguments: `now` is a monotonic clock, `wall` the time written into
the Lease (acquireTime, renewTime).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime


def micro_time(wall: datetime) -> str:
    return wall.astimezone(UTC).strftime(MICRO_TIME)


@attrs.frozen(kw_only=True)
class Timings:
    """client-go's LeaderElectionConfig durations, in seconds (upstream's are the defaults)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __attrs_post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period * 1.2 > 0:
            raise ValueError("need lease_duration > renew_deadline > 1.2 * retry_period > 0")


@attrs.frozen(kw_only=True)
class Record:
    """The Lease's spec, as leader election reads and writes it."""

    holder: str = ""
    duration: int = 0  # leaseDurationSeconds
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time:
            spec["renewTime"] = self.renew_time
        return spec


@attrs.frozen
class Write:
    """A Lease write to make: create it (`version` None) or replace that resourceVersion."""

    record: Record
    version: str | None


class Elector:
    """One candidate's view of the Lease: what it last saw, and when."""

    def __init__(self, identity: str, timings: Timings | None = None) -> None:
        if not identity:
            raise ValueError("a leader election identity must not be empty")
        self.identity = identity
        self.timings = timings or Timings()
        self.observed: Record | None = None
        self.observed_at = 0.0  # our clock, when `observed` last changed
        self.version: str | None = None  # resourceVersion of the Lease we last saw or wrote

    @property
    def is_leader(self) -> bool:
        return self.observed is not None and self.observed.holder == self.identity

    @property
    def holder(self) -> str:
        return self.observed.holder if self.observed is not None else ""

    def lease_valid(self, now: float) -> bool:
        if self.observed is None:
            return False
        return self.observed_at + self.observed.duration > now

    def renewal(self, now: float, wall: datetime) -> Write | None:
        """The leader's optimistic renewal over the version it saw last (None: not leader)."""
        if not (self.is_leader and self.lease_valid(now) and self.observed is not None):
            return None
        return Write(self._record(wall, self.observed), self.version)

    def attempt(self, now: float, wall: datetime, lease: Mapping[str, Any] | None) -> Write | None:
        """Given the Lease as just read (None: there is none), the write to make, if any."""
        if lease is None:
            return Write(self._record(wall, None), None)
        self.seen(lease, now)
        current = Record.from_lease(lease)
        if current.holder and self.lease_valid(now) and not self.is_leader:
            return None  # held by another and not expired
        return Write(self._record(wall, current), self.version)

    def seen(self, lease: Mapping[str, Any], now: float) -> None:
        record = Record.from_lease(lease)
        self.version = (lease.get("metadata") or {}).get("resourceVersion")
        if record != self.observed:
            self.observed, self.observed_at = record, now

    def written(self, write: Write, lease: Mapping[str, Any], now: float) -> None:
        """`write` succeeded; `lease` is what the server answered."""
        self.observed, self.observed_at = write.record, now
        self.version = (lease.get("metadata") or {}).get("resourceVersion")

    def release(self, wall: datetime) -> Write | None:
        """Give the Lease up (None: we do not hold it)."""
        if not self.is_leader or self.observed is None:
            return None
        stamp = micro_time(wall)
        record = Record(
            duration=1, acquire_time=stamp, renew_time=stamp, transitions=self.observed.transitions
        )
        return Write(record, self.version)

    def _record(self, wall: datetime, current: Record | None) -> Record:
        stamp = micro_time(wall)
        duration = max(1, int(self.timings.lease_duration))
        mine = Record(holder=self.identity, duration=duration, acquire_time=stamp, renew_time=stamp)
        if current is None:
            return mine
        if self.is_leader:  # a renewal keeps when we took it
            return attrs.evolve(
                mine, acquire_time=current.acquire_time, transitions=current.transitions
            )
        return attrs.evolve(mine, transitions=current.transitions + 1)
