"""Subscribers of a Speaker's changes (best paths, peer states): each gets every change on
its own unbounded channel; one that closed its end is dropped at the next change, so a
monitor that went away costs nothing and breaks nothing."""

from __future__ import annotations

import math
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Subscribers(Generic[T]):
    def __init__(self) -> None:
        self._channels: list[trio.MemorySendChannel[T]] = []

    def __bool__(self) -> bool:
        return bool(self._channels)

    def subscribe(self) -> trio.MemoryReceiveChannel[T]:
        send, receive = trio.open_memory_channel[T](math.inf)
        self._channels.append(send)
        return receive

    def publish(self, item: T) -> None:
        gone = []
        for channel in self._channels:
            try:
                channel.send_nowait(item)
            except trio.BrokenResourceError:  # the subscriber closed its end
                gone.append(channel)
        for channel in gone:
            self._channels.remove(channel)
