"""Leader election decisions (the pure Elector) on Lease dicts and explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kuberouter.k8s.lease import Elector, Record, Timings, Write

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
TIMINGS = Timings(lease_duration=15, renew_deadline=10, retry_period=2)


def lease(write: Write, version: str) -> dict[str, Any]:
    """What the API server would answer for `write`."""
    return {"metadata": {"name": "lock", "resourceVersion": version}, "spec": write.record.spec()}


def test_timings_must_leave_room_between_renewing_and_expiring() -> None:
    Timings()  # upstream's 15 s / 10 s / 2 s
    with pytest.raises(ValueError, match="lease_duration > renew_deadline"):
        Timings(lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError, match="identity"):
        Elector("")


def test_the_first_candidate_creates_the_lease() -> None:
    a = Elector("node-a", TIMINGS)
    write = a.attempt(0.0, T0, None)
    assert write is not None and write.version is None  # a create
    assert write.record == Record(
        holder="node-a", duration=15, acquire_time="2025-01-02T03:04:05.000000Z",
        renew_time="2025-01-02T03:04:05.000000Z", transitions=0,
    )  # fmt: skip
    a.written(write, lease(write, "7"), 0.0)
    assert a.is_leader and a.version == "7"


def test_a_held_lease_is_taken_only_after_it_stops_changing_for_its_duration() -> None:
    a, b = Elector("node-a", TIMINGS), Elector("node-b", TIMINGS)
    first = a.attempt(0.0, T0, None)
    assert first is not None
    a.written(first, current := lease(first, "1"), 0.0)
    assert b.attempt(1.0, T0, current) is None  # held, fresh: b waits
    renewal = a.renewal(2.0, T0 + timedelta(seconds=2))
    assert renewal is not None and renewal.version == "1"
    assert renewal.record.acquire_time == first.record.acquire_time  # renewing keeps it
    a.written(renewal, current := lease(renewal, "2"), 2.0)
    assert b.attempt(15.5, T0, current) is None  # changed at 2.0 (b saw it at 15.5): still valid
    assert b.attempt(30.0, T0, current) is None  # b first saw this record at 15.5
    taken = b.attempt(30.6, T0 + timedelta(seconds=30), current)
    assert taken is not None and taken.version == "2"
    assert (taken.record.holder, taken.record.transitions) == ("node-b", 1)


def test_a_released_lease_is_taken_at_once() -> None:
    a, b = Elector("node-a", TIMINGS), Elector("node-b", TIMINGS)
    first = a.attempt(0.0, T0, None)
    assert first is not None
    a.written(first, lease(first, "1"), 0.0)
    released = a.release(T0 + timedelta(seconds=3))
    assert released is not None
    assert (released.record.holder, released.record.duration, released.version) == ("", 1, "1")
    a.written(released, current := lease(released, "2"), 3.0)
    assert not a.is_leader and a.release(T0) is None
    taken = b.attempt(3.1, T0 + timedelta(seconds=3), current)
    assert taken is not None and taken.record.holder == "node-b"


def test_a_leader_that_restarts_with_its_name_renews() -> None:
    a = Elector("node-a", TIMINGS)
    first = a.attempt(0.0, T0, None)
    assert first is not None
    again = Elector("node-a", TIMINGS).attempt(5.0, T0 + timedelta(seconds=5), lease(first, "1"))
    assert again is not None and again.record.acquire_time == first.record.acquire_time
    assert again.record.transitions == 0


def test_times_from_the_lease_round_trip() -> None:
    record = Record.from_lease(
        {"spec": {"holderIdentity": "x", "leaseDurationSeconds": 15, "leaseTransitions": 3}}
    )
    assert record == Record(holder="x", duration=15, transitions=3)
    assert record.spec() == {
        "holderIdentity": "x",
        "leaseDurationSeconds": 15,
        "leaseTransitions": 3,
    }
