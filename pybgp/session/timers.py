"""Session timers as deadlines (RFC 4271 §8.1.3, RFC 9687) and the back-off of automatic
restarts (RFC 4271 §8.1.1 IdleHoldTime). Times are plain floats passed in by the caller."""

from __future__ import annotations

import enum

import attrs

from pybgp.session.fsm import FsmEvent


class Timer(enum.Enum):
    """In the order they fire when due at the same time: the ones that end a session first."""

    SEND_HOLD = FsmEvent.SEND_HOLD_TIMER_EXPIRES
    HOLD = FsmEvent.HOLD_TIMER_EXPIRES
    KEEPALIVE = FsmEvent.KEEPALIVE_TIMER_EXPIRES
    CONNECT_RETRY = FsmEvent.CONNECT_RETRY_TIMER_EXPIRES
    IDLE_HOLD = FsmEvent.IDLE_HOLD_TIMER_EXPIRES

    @property
    def event(self) -> FsmEvent:
        return self.value


class Timers:
    """A deadline per running timer."""

    def __init__(self) -> None:
        self._deadlines: dict[Timer, float] = {}

    def start(self, timer: Timer, deadline: float) -> None:
        self._deadlines[timer] = deadline

    def stop(self, *timers: Timer) -> None:
        for timer in timers:
            self._deadlines.pop(timer, None)

    def deadline(self, timer: Timer) -> float | None:
        return self._deadlines.get(timer)

    def running(self, timer: Timer) -> bool:
        return timer in self._deadlines

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def due(self, now: float) -> Timer | None:
        """The timer to fire first at `now`: the earliest, ties in `Timer` order."""
        ready = [t for t in Timer if t in self._deadlines and self._deadlines[t] <= now]
        return min(ready, key=self._deadlines.__getitem__) if ready else None  # first of ties


_MAX_DOUBLINGS = 32  # 2**32 times any sane base is past any cap


@attrs.define
class Backoff:
    """Waits before automatic restarts: base, 2 x base, 4 x base ... up to `cap`. A session that
    stayed Established for `reset_after` seconds starts the count again."""

    base: float
    cap: float
    reset_after: float
    failures: int = 0
    up_since: float | None = None

    def session_up(self, now: float) -> None:
        self.up_since = now

    def reset(self) -> None:
        self.failures, self.up_since = 0, None

    def next_delay(self, now: float) -> float:
        """The wait before the next automatic start, counting this failure."""
        if self.up_since is not None and now - self.up_since >= self.reset_after:
            self.failures = 0
        self.up_since = None
        delay: float = min(self.base * 2.0 ** min(self.failures, _MAX_DOUBLINGS), self.cap)
        self.failures += 1
        return delay
