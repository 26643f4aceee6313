"""The in-memory object store: one global resourceVersion, and a bounded event history.

Rules:
- Every change takes the next resourceVersion and appends one event to the history;
  watches and paginated lists read the history, never a copy of the objects.
- Stored objects are never mutated in place (each write stores a new dict), so events
  can share them; callers get deep copies, except a list page's items, which are
  shallow copies (the HTTP layer only drops their kind and serializes them).
- Each kind's keys are also kept sorted, and the service IPs and node ports in use are
  counted as services come and go, so a page of a list, a create and a seed of 100,000
  objects cost about what they touch, not the size of the store.
- The history keeps the last `history_size` events. A watch or a continue token older
  than the oldest kept event is answered with 410 Expired, as etcd compaction does.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import ipaddress
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kuberouter.testing import errors, objects
from kuberouter.testing.resources import RESOURCES, Resource

Key = tuple[str, str]  # (namespace or "", name): sorts like the etcd keys of the real server
Object = dict[str, Any]
Predicate = Callable[[Object], bool]
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    resource: Resource
    type: str
    obj: Object  # the object after the change (for DELETED: as deleted, with the deletion's rv)
    old: Object | None  # before the change; None for ADDED


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Object]
    resource_version: str
    continue_token: str
    remaining: int | None


class WatchDroppedError(Exception):
    """The test asked for every watch connection to be cut (drop_watches) or the server stops."""


def key_of(obj: Object) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Store:
    def __init__(
        self,
        *,
        history_size: int = 10000,
        service_cidr: str = "10.96.0.0/12",
        namespace_deletion_delay: float = 0.0,
    ) -> None:
        self.history_size = history_size
        # > 0: a deleted namespace stays Terminating this long before it and its contents
        # go (as the namespace controller does); 0: all go at once.
        self.namespace_deletion_delay = namespace_deletion_delay
        self._timers: list[threading.Timer] = []
        # One range, or two (one per family) for dual-stack: "10.96.0.0/12,fd00:96::/108".
        self.service_cidrs = tuple(ipaddress.ip_network(c) for c in service_cidr.split(","))
        self.latency = 0.0  # seconds the HTTP layer waits before answering (a slow server)
        self._cond = threading.Condition(threading.RLock())
        self._objects: dict[Resource, dict[Key, Object]] = {r: {} for r in RESOURCES}
        self._keys: dict[Resource, list[Key]] = {r: [] for r in RESOURCES}  # sorted
        self._service_ips: set[str] = set()
        self._service_ports: set[int] = set()
        self._history: list[Event] = []
        self._start = 0  # events before this index are forgotten (dropped in batches)
        self._rv = 0
        self._floor = 0  # events with rv <= floor are no longer in the history
        self._epoch = 0  # bumped by drop_watches(); a watch started in an older epoch ends
        self._closed = False

    # Reads.

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def get(self, resource: Resource, namespace: str | None, name: str) -> Object:
        with self._cond:
            return copy.deepcopy(self._require(resource, namespace, name))

    def list_page(
        self,
        resource: Resource,
        predicate: Predicate,
        *,
        limit: int = 0,
        continue_token: str = "",
        exact_rv: int | None = None,
        namespace: str | None = None,
        selective: bool = False,
    ) -> Page:
        """One page of a list, consistent at one resourceVersion across pages (as etcd MVCC).

        `namespace`: the list's namespace (None: every one), so only its keys are walked;
        `selective`: a label or field selector was given, so, as on the real server, the
        number of remaining items is left out (it would take a walk to the end)."""
        with self._cond:
            list_rv, after = self._rv, ("", "")
            if continue_token:
                list_rv, after = _decode_continue(continue_token)
            elif exact_rv is not None:
                list_rv = exact_rv
            state, keys = self._state_at(resource, list_rv, bool(continue_token))
            low, high = _key_range(keys, namespace)
            index = max(low, bisect.bisect_right(keys, after, low, high))
            page: list[Object] = []
            while index < high and (limit <= 0 or len(page) < limit):
                obj = state[keys[index]]
                index += 1
                if predicate(obj):
                    page.append(obj)
            token, remaining = "", None
            more = (
                any(predicate(state[key]) for key in keys[index:high])
                if selective
                else (index < high)
            )
            if more:
                token = _encode_continue(list_rv, key_of(page[-1]))
                remaining = None if selective else high - index
            return Page([dict(obj) for obj in page], str(list_rv), token, remaining)

    def _state_at(
        self, resource: Resource, rv: int, for_continue: bool
    ) -> tuple[dict[Key, Object], list[Key]]:
        """The objects of one kind as they were at `rv` (undoing the newer events) and
        their keys, sorted; at the current version, the store's own (do not change them)."""
        if rv >= self._rv:
            return self._objects[resource], self._keys[resource]
        state = dict(self._objects[resource])
        if rv < self._floor:
            if for_continue:
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list"
                    " result. You can start a new list without the continue parameter."
                )
            raise errors.expired(f"too old resource version: {rv} ({self._floor + 1})")
        for event in reversed(self._history[self._index_after(rv) :]):
            if event.resource is resource:
                if event.old is None:
                    state.pop(key_of(event.obj), None)
                else:
                    state[key_of(event.old)] = event.old
        return state, sorted(state)

    def _require(self, resource: Resource, namespace: str | None, name: str) -> Object:
        obj = self._objects[resource].get((namespace or "", name))
        if obj is None:
            raise errors.not_found(resource, name)
        return obj

    # Writes through the API.

    def create(
        self,
        resource: Resource,
        body: Any,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        check_namespace: bool = True,
    ) -> Object:
        return copy.deepcopy(
            self._create(resource, body, namespace, dry_run, check_namespace=check_namespace)
        )

    def _create(
        self,
        resource: Resource,
        body: Any,
        namespace: str | None,
        dry_run: bool,
        *,
        check_namespace: bool = True,
    ) -> Object:
        obj = objects.prepare_create(resource, body, namespace)
        with self._cond:
            ns, name = key_of(obj)
            if check_namespace and resource.namespaced:
                self._check_namespace_open(resource, ns, name)
            if (ns, name) in self._objects[resource]:
                raise errors.already_exists(resource, name)
            self._default(resource, obj, None)
            return self._commit(resource, ADDED, obj, None, dry_run)

    def update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Object:
        with self._cond:
            old = self._require(resource, namespace, name)
            if not resource.unconditional_update:
                objects.require_resource_version(resource, name, body)
            return copy.deepcopy(self._update_locked(resource, old, body, subresource, dry_run))

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        apply: Callable[[Object], Object],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Object:
        """Read-modify-write under the lock; a resourceVersion in the patch is a precondition."""
        with self._cond:
            old = self._require(resource, namespace, name)
            new = apply(copy.deepcopy(old))
            return copy.deepcopy(self._update_locked(resource, old, new, subresource, dry_run))

    def _update_locked(
        self, resource: Resource, old: Object, body: Any, subresource: str | None, dry_run: bool
    ) -> Object:
        """The stored object after the update (not a copy: do not change it)."""
        name = old["metadata"]["name"]
        meta = body.get("metadata") if isinstance(body, dict) else None
        if isinstance(meta, dict):
            if meta.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({meta['name']}) does not match"
                    f" the name on the URL ({name})"
                )
            wanted = meta.get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise errors.stale_resource_version(resource, name)
        new = objects.prepare_update(resource, old, body, subresource)
        self._default(resource, new, old)
        objects.bump_generation(old, new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return old  # a no-op write: no new resourceVersion, no event
        return self._commit(resource, MODIFIED, new, old, dry_run)

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        preconditions: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> Object:
        with self._cond:
            old = self._require(resource, namespace, name)
            for field in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(field)
                actual = old["metadata"].get(field)
                if wanted and wanted != actual:
                    why = (
                        f"Precondition failed: {field}: {wanted}, {field} in object meta: {actual}"
                    )
                    raise errors.conflict(resource, name, why)
            if resource.kind == "Namespace" and not dry_run:
                if self.namespace_deletion_delay > 0:
                    return copy.deepcopy(self._terminate_namespace(resource, old))
                self._delete_namespace_contents(name)
            return copy.deepcopy(self._commit(resource, DELETED, copy.deepcopy(old), old, dry_run))

    def _check_namespace_open(self, resource: Resource, namespace: str, name: str) -> None:
        found = self._namespaces().get(("", namespace))
        if found is None:
            raise errors.namespace_not_found(namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise errors.namespace_terminating(resource, name, namespace)

    def _terminate_namespace(self, resource: Resource, old: Object) -> Object:
        if old["metadata"].get("deletionTimestamp"):
            return old
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = objects.now_timestamp()
        new.setdefault("status", {})["phase"] = "Terminating"
        result = self._commit(resource, MODIFIED, new, old, False)
        timer = threading.Timer(
            self.namespace_deletion_delay,
            self._finish_namespace,
            (resource, old["metadata"]["uid"]),
        )
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()
        return result

    def _finish_namespace(self, resource: Resource, uid: str) -> None:
        with self._cond:
            found = [ns for ns in self._namespaces().values() if ns["metadata"]["uid"] == uid]
            if self._closed or not found:
                return
            self._delete_namespace_contents(found[0]["metadata"]["name"])
            self._commit(resource, DELETED, copy.deepcopy(found[0]), found[0], False)

    def _delete_namespace_contents(self, namespace: str) -> None:
        # Upstream the namespace controller does this object by object; here all at once.
        for resource in RESOURCES:
            if resource.namespaced:
                for key, obj in sorted(self._objects[resource].items()):
                    if key[0] == namespace:
                        self._commit(resource, DELETED, copy.deepcopy(obj), obj, False)

    def _namespaces(self) -> dict[Key, Object]:
        return next(v for r, v in self._objects.items() if r.kind == "Namespace")

    def _default(self, resource: Resource, obj: Object, old: Object | None) -> None:
        """Defaults and allocations; a service's own addresses and ports count as free."""
        used_ips, used_ports = self._service_ips, self._service_ports
        if resource.kind == "Service" and old is not None:
            own_ips, own_ports = objects.service_allocations([old])
            used_ips, used_ports = used_ips - own_ips, used_ports - own_ports
        objects.apply_defaults(resource, obj, self.service_cidrs, used_ips, used_ports, old)

    def _commit(
        self, resource: Resource, kind: str, obj: Object, old: Object | None, dry_run: bool
    ) -> Object:
        """Store the change; returns `obj` (not a copy: do not change it)."""
        if dry_run:
            return obj
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key, keys = key_of(obj), self._keys[resource]
        if kind == DELETED:
            del self._objects[resource][key]
            del keys[bisect.bisect_left(keys, key)]
        else:
            if old is None:
                bisect.insort(keys, key)
            self._objects[resource][key] = obj
        if resource.kind == "Service":
            self._count_allocations(old, obj if kind != DELETED else None)
        self._history.append(Event(self._rv, resource, kind, obj, old))
        self._trim()
        self._cond.notify_all()
        return obj

    def _count_allocations(self, old: Object | None, new: Object | None) -> None:
        if old is not None:
            ips, ports = objects.service_allocations([old])
            self._service_ips -= ips
            self._service_ports -= ports
        if new is not None:
            ips, ports = objects.service_allocations([new])
            self._service_ips |= ips
            self._service_ports |= ports

    def _trim(self) -> None:
        excess = len(self._history) - self._start - self.history_size
        if excess > 0:
            self._start += excess
            self._floor = self._history[self._start - 1].rv
            if self._start >= self.history_size:  # one move per history's worth of writes
                del self._history[: self._start]
                self._start = 0

    # Direct access for tests: writes that bypass the API rules (status included).

    def put(self, obj: Object) -> Object:
        """Create or replace an object, status included, as a controller or kubelet would."""
        return copy.deepcopy(self._put(obj))

    def _put(self, obj: Object) -> Object:
        resource = resource_of(obj)
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name = meta.get("name")
        with self._cond:
            if not name:  # let create say what is wrong
                return self._create(resource, obj, None, False, check_namespace=False)
            namespace = (meta.get("namespace") or "default") if resource.namespaced else ""
            old = self._objects[resource].get((namespace, name))
            if old is None:
                return self._create(resource, obj, None, False, check_namespace=False)
            return self._update_locked(resource, old, obj, objects.WHOLE_OBJECT, False)

    def remove(self, obj: Object) -> Object:
        """Delete the object named by obj's kind, metadata.name and metadata.namespace."""
        meta = obj.get("metadata", {})
        return self.delete(resource_of(obj), meta.get("namespace"), meta["name"])

    def load(self, documents: Iterable[Object]) -> int:
        """Seed from manifests (a `List` is unpacked); namespaces first, so order is free."""
        flat = [item for doc in documents if doc for item in _unpack(doc)]
        flat.sort(key=lambda doc: doc.get("kind") != "Namespace")
        for doc in flat:
            self._put(doc)
        return len(flat)

    def compact(self) -> None:
        """Forget the whole history: every older resourceVersion now gets 410 Expired."""
        with self._cond:
            self._floor = self._rv
            self._history.clear()
            self._start = 0

    def drop_watches(self) -> None:
        """Cut every open watch connection, as a killed connection or restarted server would."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
            self._cond.notify_all()

    # Watch support (see watch.py).

    def watch_start(self, resource: Resource, since: int | None) -> tuple[int, int, list[Object]]:
        """(cursor, epoch, initial objects): `since` None means start from the current state."""
        with self._cond:
            if since is None:
                return self._rv, self._epoch, list(self._objects[resource].values())
            if since < self._floor:
                raise errors.expired(f"too old resource version: {since} ({self._floor + 1})")
            return since, self._epoch, []

    def wait_events(self, cursor: int, epoch: int, timeout: float) -> tuple[list[Event], int]:
        """Events after `cursor`, waiting up to `timeout` for one; returns the new cursor."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._closed or self._epoch != epoch or self._rv > cursor, timeout
            )
            if self._closed or self._epoch != epoch:
                raise WatchDroppedError
            if cursor < self._floor:
                raise errors.expired(f"too old resource version: {cursor} ({self._floor + 1})")
            return self._history[self._index_after(cursor) :], max(cursor, self._rv)

    def _index_after(self, rv: int) -> int:
        return bisect.bisect_right(self._history, rv, lo=self._start, key=lambda event: event.rv)


def resource_of(obj: Object) -> Resource:
    """The resource of a manifest; apiVersion may be left out, as kinds are unique here."""
    kind, api_version = obj.get("kind", ""), obj.get("apiVersion")
    for resource in RESOURCES:
        if resource.kind == kind and api_version in (None, resource.api_version):
            return resource
    raise errors.bad_request(f"no kind {kind!r} in version {api_version!r} is served here")


def _unpack(doc: Object) -> list[Object]:
    return list(doc.get("items") or []) if doc.get("kind") == "List" else [doc]


def _key_range(keys: list[Key], namespace: str | None) -> tuple[int, int]:
    """Where a namespace's keys lie in a sorted key list (None: all of them)."""
    if namespace is None:
        return 0, len(keys)
    return bisect.bisect_left(keys, (namespace, "")), bisect.bisect_left(
        keys, (namespace + "\0", "")
    )


def _encode_continue(rv: int, after: Key) -> str:
    payload = {"v": "meta.k8s.io/v1", "rv": rv, "start": "/".join(after)}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _decode_continue(token: str) -> tuple[int, Key]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        namespace, _, name = str(payload["start"]).partition("/")
        return int(payload["rv"]), (namespace, name)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request("invalid continue token") from None
