"""List + watch of one kind, in a worker thread (the official client blocks).

A `Reflector` lists, then watches from the list's resourceVersion with bookmarks. A
dropped connection or a failed request is retried after a capped, jittered exponential
backoff, from the last resourceVersion seen (an event or a bookmark), so nothing is
lost. A 410 Gone (an ERROR event with code 410, or an HTTP 410) means that version was
compacted away: the reflector lists again, and the store turns the fresh list into only
the differences. Results leave already converted to model views (`Listed`, `Observed`)
through `deliver`, which hands them to trio (see sync.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio
import urllib3
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped,unused-ignore]

from kuberouter.k8s import client
from kuberouter.k8s.store import Model
from kuberouter.model import InvalidObject

log = logging.getLogger(__name__)
RETRYABLE = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)


@attrs.frozen
class Backoff:
    """Delay before retry number `attempt` (0-based): initial * factor**attempt, capped,
    then scaled by a random factor in [1 - jitter, 1] so agents do not retry in step."""

    initial: float = 0.8
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * (rng or random).random())


@attrs.define
class KindStats:
    """Counters for one kind (written by its reflector thread only), for /metrics."""

    lists: int = 0  # complete lists (the first and every relist)
    relists: int = 0  # lists forced by 410 Gone
    watches: int = 0  # watch requests the server accepted
    watch_restarts: int = 0  # watches reopened after a dropped connection or an error
    events: int = 0  # ADDED / MODIFIED / DELETED received
    bookmarks: int = 0
    resource_version: str = ""  # the last one seen
    last_error: str = ""


@attrs.frozen
class Listed:
    kind: str
    values: dict[str, Model | InvalidObject]


@attrs.frozen
class Observed:
    kind: str
    key: str
    value: Model | InvalidObject | None  # None: deleted
    received: float | None = None  # time.monotonic() when its event was read


Message = Listed | Observed


class Expired(Exception):
    """The resourceVersion we asked for is gone (410): list again."""


class Stopped(Exception):
    """The trio side is gone or asked us to stop."""


def describe(error: BaseException) -> str:
    """One line for logs and the sync-timeout message (no headers, bodies or secrets)."""
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason or ''}".strip()
    return f"{type(error).__name__}: {error}".splitlines()[0]


class Reflector:
    """List + watch of one kind; `run` blocks until `stop()` (call it from another thread)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        resource: client.Resource,
        deliver: Callable[[list[Message]], None],
        *,
        backoff: Backoff,
        watch_timeout: tuple[int, int],
    ) -> None:
        self.api_client, self.resource, self.kind = api_client, resource, resource.kind
        self.stats = KindStats()
        self._deliver = deliver
        self._backoff, self._watch_timeout = backoff, watch_timeout
        self._failures = 0
        self._since: str | None = None  # None: list (again) first
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._response: client.HTTPResponse | None = None

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._response is not None:
                self._response.shutdown()  # unblocks the read in the reflector's thread

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._since is None:
                    self._list()
                self._watch(self._since)
            except Expired:
                log.info("%s: resourceVersion %s is too old, listing again", self.kind, self._since)
                self._since = None
                self.stats.relists += 1
            except Stopped:
                return
            except RETRYABLE as error:
                self._failed(error)

    def _failed(self, error: BaseException) -> None:
        if self._stopping.is_set():
            return
        delay = self._backoff.delay(self._failures)
        self._failures += 1
        self.stats.last_error = describe(error)
        if self._since is None:
            what = "list"
        else:
            what = f"watch from resourceVersion {self._since}"
            self.stats.watch_restarts += 1
        log.warning(
            "%s %s failed (%s); retrying in %.2fs", self.kind, what, self.stats.last_error, delay
        )
        self._stopping.wait(delay)

    def _send(self, messages: list[Message]) -> None:
        if self._stopping.is_set():
            raise Stopped
        try:
            self._deliver(messages)
        except (
            trio.RunFinishedError, trio.BrokenResourceError, trio.ClosedResourceError,
            trio.Cancelled,
        ):  # fmt: skip
            raise Stopped from None

    def _seen(self, version: str) -> None:
        """Resume from here after a dropped connection."""
        if version:
            self._since = self.stats.resource_version = version

    def _list(self) -> None:
        values: dict[str, Model | InvalidObject] = {}
        version = ""
        try:
            for page in client.list_pages(self.api_client, self.resource):
                version = (page.get("metadata") or {}).get("resourceVersion") or version
                for raw in page.get("items") or []:
                    self._collect(raw, values)
        except ApiException as error:
            if error.status == 410:  # the continue token expired mid-list
                raise Expired from None
            raise
        self.stats.lists += 1
        self._send([Listed(self.kind, values)])
        self._failures = 0
        self._seen(version or "0")

    def _collect(self, raw: dict[str, Any], into: dict[str, Model | InvalidObject]) -> None:
        key = client.object_key(raw)
        if key is None:
            log.warning("%s without a name in a list: skipped", self.kind)
            return
        into[key] = client.convert(self.resource, raw)

    def _watch(self, since: str | None) -> None:
        """Follow one watch until the server ends it (a clean end after its timeout)."""
        timeout = random.randint(*self._watch_timeout)
        try:
            response = client.open_watch(self.api_client, self.resource, since or "0", timeout)
        except ApiException as error:
            if error.status == 410:
                raise Expired from None
            raise
        self.stats.watches += 1
        self._hold(response)
        received, ok = False, False
        try:
            for events in client.read_events(response):
                self._handle(events, time.monotonic())
                received, self._failures = True, 0  # the connection works: reset the backoff
            ok = True
        finally:
            self._hold(None)
            client.finish(response, ok)
        if not received:  # ended at once without a byte: do not spin
            self._stopping.wait(self._backoff.initial)

    def _hold(self, response: client.HTTPResponse | None) -> None:
        """Remember the open watch so that stop() can cut it."""
        with self._lock:
            self._response = response
            if response is not None and self._stopping.is_set():
                response.shutdown()

    def _handle(self, events: Iterable[dict[str, Any]], received: float) -> None:
        messages: list[Message] = []
        try:
            for event in events:
                self._event(event, messages, received)
        finally:
            if messages:  # even when an ERROR follows: these happened
                self._send(messages)

    def _event(self, event: dict[str, Any], messages: list[Message], received: float) -> None:
        kind, raw = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if raw.get("code") == 410:
                raise Expired
            raise ApiException(status=raw.get("code"), reason=raw.get("message"))
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
            self._seen(client.resource_version(raw))
            return
        key = client.object_key(raw)
        if kind not in ("ADDED", "MODIFIED", "DELETED") or key is None:
            log.warning("%s: unexpected watch event %r skipped", self.kind, kind)
            return
        self.stats.events += 1
        value = None if kind == "DELETED" else client.convert(self.resource, raw)
        messages.append(Observed(self.kind, key, value, received))
        self._seen(client.resource_version(raw))
