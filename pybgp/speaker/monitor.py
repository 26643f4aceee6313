"""`pybgp monitor`'s events: best-path and neighbour-state changes of a running Speaker, as
they happen, as JSON objects (one per change) for the control socket's streaming reply.

{"type": "best-path", "time", "family", "prefix", "next_hops", "as_path", "withdrawn"}
{"type": "peer-state", "time", "address", "old", "new"}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import trio

from pybgp.control import Emit, Stream
from pybgp.speaker.pipeline import BestPathChange
from pybgp.speaker.sessions import PeerStateChange
from pybgp.speaker.views import families_named

Event = dict[str, Any]
T = TypeVar("T")


class Watched(Protocol):
    def subscribe_best_paths(self) -> trio.MemoryReceiveChannel[BestPathChange]: ...
    def subscribe_peer_states(self) -> trio.MemoryReceiveChannel[PeerStateChange]: ...


def monitor(
    speaker: Watched,
    *,
    rib: bool = True,
    peers: bool = True,
    family: str | None = None,
    address: str | None = None,
) -> Stream:
    """The stream of changes: best paths (of `family`, or all) and neighbour states (of
    `address`, or all). Bad arguments raise ValueError before anything streams."""
    families = {f.name for f in families_named(family)}

    def best(change: BestPathChange) -> Event | None:
        if change.family.name not in families:
            return None
        return {
            "type": "best-path",
            "time": round(time.time(), 3),
            "family": change.family.name,
            "prefix": change.prefix,
            "next_hops": list(change.next_hops),
            "as_path": change.as_path,
            "withdrawn": not change.next_hops,
        }

    def state(change: PeerStateChange) -> Event | None:
        if address is not None and change.address != address:
            return None
        return {
            "type": "peer-state",
            "time": round(time.time(), 3),
            "address": change.address,
            "old": change.old,
            "new": change.new,
        }

    async def run(emit: Emit) -> None:
        # Both subscriptions feed one channel, so one task writes to the client.
        send, receive = trio.open_memory_channel[Event](math.inf)
        async with trio.open_nursery() as nursery:
            if rib:
                nursery.start_soon(_pump, speaker.subscribe_best_paths(), best, send.clone())
            if peers:
                nursery.start_soon(_pump, speaker.subscribe_peer_states(), state, send.clone())
            async for event in receive:
                await emit(event)

    return Stream(run)


async def _pump(
    changes: trio.MemoryReceiveChannel[T],
    convert: Callable[[T], Event | None],
    out: trio.MemorySendChannel[Event],
) -> None:
    async with changes, out:  # closed when the client goes: the Speaker drops it
        async for change in changes:
            event = convert(change)
            if event is not None:
                out.send_nowait(event)
