"""Reconnect delays: exponential, capped, jittered."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from kuberouter.k8s import Backoff


@given(
    attempt=st.integers(0, 10_000),
    initial=st.floats(0.01, 5),
    cap=st.floats(0.01, 300),
    jitter=st.floats(0, 1),
    seed=st.integers(),
)
def test_delay_is_capped_and_jittered_below_its_base(
    attempt: int, initial: float, cap: float, jitter: float, seed: int
) -> None:
    backoff = Backoff(initial=initial, cap=cap, jitter=jitter)
    base = min(cap, initial * 2.0 ** min(attempt, 64))
    delay = backoff.delay(attempt, random.Random(seed))
    assert base * (1 - jitter) - 1e-9 <= delay <= base <= cap


def test_delays_grow_then_stay_at_the_cap() -> None:
    backoff = Backoff(initial=1.0, cap=8.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    jittered = {Backoff(jitter=0.5).delay(3, random.Random(seed)) for seed in range(20)}
    assert len(jittered) > 1 and all(3.2 <= d <= 6.4 for d in jittered)
