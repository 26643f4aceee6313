"""The typed in-memory store: frozen model views by kind and key, and their change events.

Rules:
- Single writer: only the trio task that applies watch results writes (`apply`,
  `replace`); everyone else reads, takes a `snapshot()` or `subscribe()`s.
- Only model views are kept, never the API's dicts: a Pod is a few hundred bytes here,
  not the tens of kilobytes of its full object (upstream agents grow to gigabytes).
- A write that leaves the view equal (a status heartbeat, managedFields, an annotation no
  controller reads) is no change: no new version, no event.
- Keys are "namespace/name" for namespaced kinds and "name" otherwise; `version` grows by
  one per change.
- An object the model refuses (`InvalidObject`) is treated as absent, and logged once per
  distinct problem: not again on every resync, again if the problem changes.
- Snapshots are copy-on-write: taking one is O(kinds); the first write to a kind after
  it copies that kind's table once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal, TypeVar, cast

import attrs
import trio

from kuberouter.model import (
    EndpointSlice,
    InvalidObject,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    Service,
)

log = logging.getLogger(__name__)

Model = Node | Namespace | Pod | Service | EndpointSlice | NetworkPolicy
M = TypeVar("M", Node, Namespace, Pod, Service, EndpointSlice, NetworkPolicy)
MODEL_TYPES: tuple[type[Model], ...] = (Node, Namespace, Pod, Service, EndpointSlice, NetworkPolicy)
KIND_NAMES: tuple[str, ...] = tuple(cls.__name__ for cls in MODEL_TYPES)
ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]


@attrs.frozen
class Change:
    kind: str
    key: str
    old: Model | None  # None: the object is new (or was refused until now)
    new: Model | None  # None: the object is gone (or is now refused)
    # time.monotonic() when the event behind it reached the agent (latency metrics)
    received: float = attrs.field(factory=time.monotonic, eq=False, repr=False)

    @property
    def type(self) -> ChangeType:
        if self.old is None:
            return "ADDED"
        return "DELETED" if self.new is None else "MODIFIED"


def namespace_of(key: str) -> str:
    namespace, slash, _ = key.partition("/")
    return namespace if slash else ""


class Snapshot:
    """The store at one version; never changes afterwards."""

    def __init__(self, version: int, tables: Mapping[str, Mapping[str, Model]]) -> None:
        self.version = version
        self._tables = tables
        self._by_namespace: dict[str, dict[str, dict[str, Model]]] = {}

    def kind(self, kind: str) -> Mapping[str, Model]:
        return self._tables[kind]

    def items(self, cls: type[M]) -> Mapping[str, M]:
        """Every object of a kind by key, typed: `snapshot.items(Pod)`."""
        return cast(Mapping[str, M], self._tables[cls.__name__])

    def get(self, cls: type[M], key: str) -> M | None:
        return self.items(cls).get(key)

    def in_namespace(self, cls: type[M], namespace: str) -> Mapping[str, M]:
        """The objects of a namespaced kind in one namespace (indexed on first use)."""
        index = self._by_namespace.get(cls.__name__)
        if index is None:
            index = {}
            for key, value in self._tables[cls.__name__].items():
                index.setdefault(namespace_of(key), {})[key] = value
            self._by_namespace[cls.__name__] = index
        return cast(Mapping[str, M], MappingProxyType(index.get(namespace, {})))

    def sizes(self) -> dict[str, int]:
        return {kind: len(table) for kind, table in self._tables.items()}


@attrs.define
class _Subscriber:
    kinds: frozenset[str] | None
    channel: trio.MemorySendChannel[Change]


class Store:
    def __init__(self, kinds: Iterable[str] = KIND_NAMES) -> None:
        self._tables: dict[str, dict[str, Model]] = {kind: {} for kind in kinds}
        self._shared: set[str] = set()  # kinds whose table a snapshot still references
        self._snapshot: Snapshot | None = None
        self._invalid: dict[tuple[str, str], str] = {}  # (kind, key) -> problem logged
        self._subscribers: list[_Subscriber] = []
        self.version = 0
        self.changes: dict[str, int] = dict.fromkeys(self._tables, 0)  # per kind, for metrics

    # Reads.

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._tables)

    def get(self, cls: type[M], key: str) -> M | None:
        return cast(M | None, self._tables[cls.__name__].get(key))

    def items(self, cls: type[M]) -> Mapping[str, M]:
        """A live read-only view of one kind (use `snapshot()` to keep it)."""
        return cast(Mapping[str, M], MappingProxyType(self._tables[cls.__name__]))

    def sizes(self) -> dict[str, int]:
        return {kind: len(table) for kind, table in self._tables.items()}

    def invalid(self) -> dict[tuple[str, str], str]:
        """(kind, key) -> why, for every object currently refused."""
        return dict(self._invalid)

    def snapshot(self) -> Snapshot:
        if self._snapshot is None or self._snapshot.version != self.version:
            tables = {kind: MappingProxyType(table) for kind, table in self._tables.items()}
            self._snapshot = Snapshot(self.version, tables)
            self._shared.update(self._tables)
        return self._snapshot

    # Subscriptions.

    def subscribe(self, kinds: Iterable[str] | None = None) -> trio.MemoryReceiveChannel[Change]:
        """Every later change (of these kinds), in order. Close the channel to unsubscribe.

        The buffer is unbounded, as client-go's listeners are: the watch layer never waits
        for a slow controller. Take `snapshot()` in the same step (no await between) for a
        consistent start.
        """
        send, receive = trio.open_memory_channel[Change](math.inf)
        wanted = frozenset(kinds) if kinds is not None else None
        self._subscribers.append(_Subscriber(wanted, send))
        return receive

    def _publish(self, change: Change) -> None:
        for subscriber in list(self._subscribers):
            if subscriber.kinds is not None and change.kind not in subscriber.kinds:
                continue
            try:
                subscriber.channel.send_nowait(change)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(subscriber)

    # Writes (the single writer only).

    def apply(
        self,
        kind: str,
        key: str,
        value: Model | InvalidObject | None,
        received: float | None = None,
    ) -> Change | None:
        """Set (a model), refuse (InvalidObject: as absent) or delete (None) one object;
        `received`: when its event reached the agent (time.monotonic(); default now)."""
        if isinstance(value, InvalidObject):
            self._refuse(kind, key, value)
            value = None
        elif (kind, key) in self._invalid:
            del self._invalid[(kind, key)]
            if value is not None:
                log.info("%s %s is valid again", kind, key)
        return self._set(kind, key, value, received)

    def replace(self, kind: str, values: Mapping[str, Model | InvalidObject]) -> list[Change]:
        """Make one kind equal to a fresh list; returns (and publishes) only the differences."""
        gone = [key for key in self._tables[kind] if key not in values]
        gone += [key for k, key in self._invalid if k == kind and key not in values]
        changes = [self.apply(kind, key, None) for key in gone]
        changes += [self.apply(kind, key, value) for key, value in values.items()]
        return [change for change in changes if change is not None]

    def _refuse(self, kind: str, key: str, problem: InvalidObject) -> None:
        if self._invalid.get((kind, key)) != problem.reason:
            log.warning("ignoring %s %s until it is fixed: %s", kind, key, problem.reason)
        self._invalid[(kind, key)] = problem.reason

    def _set(
        self, kind: str, key: str, value: Model | None, received: float | None
    ) -> Change | None:
        table = self._tables[kind]
        old = table.get(key)
        if old == value:
            return None
        if kind in self._shared:
            table = self._tables[kind] = dict(table)
            self._shared.discard(kind)
        if value is None:
            del table[key]
        else:
            table[key] = value
        self.version += 1
        self.changes[kind] += 1
        change = Change(kind, key, old, value, time.monotonic() if received is None else received)
        self._publish(change)
        return change
