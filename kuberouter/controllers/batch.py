"""Gathering a burst of events into one batch, so a burst costs a few syncs, not one each.

A batch is an event and the rest of its burst: the events that follow it less than
`settle` seconds apart, for at most `burst` seconds. A lone event waits only `settle`;
events that come while the caller is busy with a batch make the next one.
"""

from __future__ import annotations

from typing import TypeVar

import trio

T = TypeVar("T")
SETTLE = 0.002  # seconds: longer would only add to every lone change's latency
BURST = 0.05


async def next_batch(
    events: trio.MemoryReceiveChannel[T],
    deadline: float,
    settle: float = SETTLE,
    burst: float = BURST,
) -> list[T]:
    """Wait for an event (until `deadline`: then []), then for the rest of its burst."""
    batch: list[T] = []
    with trio.move_on_at(deadline):
        batch.append(await events.receive())
    end = trio.current_time() + burst
    while batch and trio.current_time() < end:
        with trio.move_on_at(min(end, trio.current_time() + settle)) as quiet:
            batch.append(await events.receive())
        if quiet.cancelled_caught:
            break
    return batch
