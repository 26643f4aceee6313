"""Log lines that a peer can make us repeat, at most once per interval per key.

A peer that reconnects as fast as we let it, or a stranger knocking on port 179, must not
flood the log: the first line of a kind goes out, repeats within the interval are counted,
and the next line that goes out says how many were held back. Time comes in as an argument.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable


class Throttle:
    def __init__(self, logger: logging.Logger, interval: float, max_keys: int = 4096) -> None:
        self._log, self._interval, self._max_keys = logger, interval, max_keys
        self._entries: dict[Hashable, tuple[float, int]] = {}  # next time, held back

    def log(self, now: float, key: Hashable, level: int, message: str, *args: object) -> bool:
        """Log `message % args` unless `key` was logged less than `interval` ago; whether
        the line went out."""
        next_time, held = self._entries.get(key, (-math.inf, 0))
        if now < next_time:
            self._entries[key] = (next_time, held + 1)
            return False
        if held:
            message += f" ({held} more since last logged)"
        self._log.log(level, message, *args)
        if len(self._entries) >= self._max_keys:
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
        self._entries[key] = (now + self._interval, 0)
        return True

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)
