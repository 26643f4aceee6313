"""One watch: the events a client sees, as dicts, from a start point until a deadline.

The HTTP layer only frames what this yields. As on the real server, an object that
starts or stops matching the selectors arrives as ADDED or DELETED, bookmarks carry
only a resourceVersion, and a start point older than the history is an ERROR event
with a 410 Expired Status (HTTP 200: the stream has already begun).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kuberouter.testing.errors import ApiError
from kuberouter.testing.resources import Resource
from kuberouter.testing.store import ADDED, DELETED, MODIFIED, Event, Predicate, Store, key_of

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
IDLE_CHECK = 1.0  # seconds between chances for the caller to notice a vanished client


@dataclass(frozen=True)
class WatchRequest:
    resource: Resource
    predicate: Predicate
    since: int | None  # None: first the current objects as ADDED, then changes
    timeout: float
    bookmarks: bool = False
    bookmark_interval: float = 60.0
    send_initial_events: bool = False


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def bookmark(resource: Resource, rv: int, initial_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}
    return _event("BOOKMARK", obj)


def visible(event: Event, resource: Resource, predicate: Predicate) -> dict[str, Any] | None:
    """The event as this watcher sees it, or None when it concerns other objects."""
    if event.resource is not resource:
        return None
    matches_now = predicate(event.obj)
    if event.type != MODIFIED:
        return _event(event.type, event.obj) if matches_now else None
    matched_before = event.old is not None and predicate(event.old)
    if matches_now:
        return _event(MODIFIED if matched_before else ADDED, event.obj)
    return _event(DELETED, event.obj) if matched_before else None


def stream(store: Store, request: WatchRequest) -> Iterator[dict[str, Any] | None]:
    """Yield watch events, and None when idle for IDLE_CHECK seconds (to check the client).

    Raises store.WatchDroppedError when the test cuts connections or the store closes.
    """
    deadline = time.monotonic() + request.timeout
    try:
        cursor, epoch, initial = store.watch_start(request.resource, request.since)
    except ApiError as error:
        yield _event("ERROR", error.status())
        return
    for obj in sorted(filter(request.predicate, initial), key=key_of):
        yield _event(ADDED, obj)
    if request.send_initial_events and request.bookmarks:
        yield bookmark(request.resource, cursor, initial_end=True)
    next_bookmark = time.monotonic() + request.bookmark_interval
    while (now := time.monotonic()) < deadline:
        wake = min(deadline, next_bookmark) if request.bookmarks else deadline
        try:
            events, cursor = store.wait_events(cursor, epoch, min(max(wake - now, 0.0), IDLE_CHECK))
        except ApiError as error:
            yield _event("ERROR", error.status())
            return
        if not events:
            yield None
        for event in events:
            if (seen := visible(event, request.resource, request.predicate)) is not None:
                yield seen
        if request.bookmarks and time.monotonic() >= next_bookmark:
            yield bookmark(request.resource, cursor)
            next_bookmark = time.monotonic() + request.bookmark_interval
    if request.bookmarks:
        yield bookmark(request.resource, cursor)  # as upstream: a last bookmark before timing out
