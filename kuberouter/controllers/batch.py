"""Gathering a burst of events into one batch, so a burst costs one sync."""

from __future__ import annotations

from typing import TypeVar

import trio

T = TypeVar("T")
DEBOUNCE = 0.05  # seconds to gather a burst of changes into one sync


async def next_batch(
    events: trio.MemoryReceiveChannel[T], deadline: float, debounce: float = DEBOUNCE
) -> list[T]:
    """Wait for an event (until `deadline`: then []), let the burst settle, drain it."""
    with trio.move_on_at(deadline):
        batch = [await events.receive()]
        await trio.sleep(debounce)
        while True:
            try:
                batch.append(events.receive_nowait())
            except trio.WouldBlock:
                return batch
    return []
