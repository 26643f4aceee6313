"""The two per-family layouts of an Adj-RIB-In (see `pybgp.rib.adj_in`).

`announce` and `withdraw` take the wire-form keys of one UPDATE and return the prefixes whose
eligible paths changed, with the eligible path each had before (None: none) when the layout
knows it in one lookup (one path per prefix), else None. Paths that are not eligible (AS
loop) sit in a second dict, so `received` and `accepted` are two `len` calls. Stale marks
(RFC 4724 §4.2) are a set of the wire keys (with path id under ADD-PATH), so a fresh
announcement or withdrawal clears them with one set operation per UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat

from pybgp.rib.route import Route
from pybgp.wire.nlri import Nlri

# (prefixes whose eligible paths changed, the path each had before or None if not known)
Delta = tuple[Sequence[Nlri], Sequence[Route | None] | None]


class Table:
    """What both layouts offer."""

    __slots__ = ("stale",)
    addpath = False

    def __init__(self) -> None:
        self.stale: set[Nlri] = set()

    def announce(self, keys: Sequence[Nlri], route: Route, eligible: bool) -> Delta:
        raise NotImplementedError

    def withdraw(self, keys: Sequence[Nlri]) -> Delta:
        raise NotImplementedError

    def received(self) -> int:
        raise NotImplementedError

    def accepted(self) -> int:
        raise NotImplementedError

    def paths(self, prefix: Nlri) -> dict[int, Route]:
        raise NotImplementedError

    def rejected_paths(self, prefix: Nlri) -> dict[int, Route]:
        """The paths held but not eligible (AS loop, import policy)."""
        raise NotImplementedError

    def items(self) -> Iterator[tuple[Nlri, int, Route]]:
        raise NotImplementedError

    def prefixes(self) -> list[Nlri]:
        raise NotImplementedError

    def wire_keys(self) -> set[Nlri]:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.received()

    def mark_stale(self) -> int:
        self.stale = self.wire_keys()
        return len(self.stale)

    def take_stale(self) -> list[Nlri]:
        keys = list(self.stale)
        self.stale = set()
        return keys


class PlainTable(Table):
    """prefix -> Route (one path per prefix)."""

    __slots__ = ("ineligible", "routes")

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[Nlri, Route] = {}
        self.ineligible: dict[Nlri, Route] = {}

    def announce(self, keys: Sequence[Nlri], route: Route, eligible: bool) -> Delta:
        if eligible:
            routes = self.routes
            previous: list[Route | None]
            if routes.keys().isdisjoint(keys):  # new prefixes: a table coming in
                previous = [None] * len(keys)
            else:
                previous = list(map(routes.get, keys))
            routes.update(zip(keys, repeat(route)))
            if self.ineligible:
                drop = self.ineligible.pop
                for key in keys:
                    drop(key, None)
            if self.stale:
                self.stale.difference_update(keys)
            return keys, previous
        self.ineligible.update(zip(keys, repeat(route)))
        return self._remove(keys)

    def withdraw(self, keys: Sequence[Nlri]) -> Delta:
        if self.ineligible:
            drop = self.ineligible.pop
            for key in keys:
                drop(key, None)
        return self._remove(keys)

    def _remove(self, keys: Sequence[Nlri]) -> Delta:
        removed = list(map(self.routes.pop, keys, repeat(None)))
        if self.stale:
            self.stale.difference_update(keys)
        touched = [key for key, old in zip(keys, removed, strict=True) if old is not None]
        return touched, [old for old in removed if old is not None]

    def received(self) -> int:
        return len(self.routes) + len(self.ineligible)

    def accepted(self) -> int:
        return len(self.routes)

    def paths(self, prefix: Nlri) -> dict[int, Route]:
        route = self.routes.get(prefix)
        return {} if route is None else {0: route}

    def rejected_paths(self, prefix: Nlri) -> dict[int, Route]:
        route = self.ineligible.get(prefix)
        return {} if route is None else {0: route}

    def items(self) -> Iterator[tuple[Nlri, int, Route]]:
        for prefix, route in self.routes.items():
            yield prefix, 0, route

    def prefixes(self) -> list[Nlri]:
        return list(self.routes)

    def wire_keys(self) -> set[Nlri]:
        return set(self.routes).union(self.ineligible)


class AddPathTable(Table):
    """prefix -> {path id: Route} (RFC 7911: several paths per prefix from one peer)."""

    __slots__ = ("_accepted", "_ineligible_count", "ineligible", "routes")
    addpath = True

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[Nlri, dict[int, Route]] = {}
        self.ineligible: dict[Nlri, dict[int, Route]] = {}
        self._accepted = 0
        self._ineligible_count = 0

    def announce(self, keys: Sequence[Nlri], route: Route, eligible: bool) -> Delta:
        touched: list[Nlri] = []
        for key in keys:
            prefix, path_id = key[4:], int.from_bytes(key[:4], "big")
            if eligible:
                self._ineligible_count -= _remove(self.ineligible, prefix, path_id)
                self._accepted += _put(self.routes, prefix, path_id, route)
                touched.append(prefix)
            else:
                self._ineligible_count += _put(self.ineligible, prefix, path_id, route)
                if _remove(self.routes, prefix, path_id):
                    self._accepted -= 1
                    touched.append(prefix)
        if self.stale:
            self.stale.difference_update(keys)
        return list(dict.fromkeys(touched)), None

    def withdraw(self, keys: Sequence[Nlri]) -> Delta:
        touched: list[Nlri] = []
        for key in keys:
            prefix, path_id = key[4:], int.from_bytes(key[:4], "big")
            if _remove(self.routes, prefix, path_id):
                self._accepted -= 1
                touched.append(prefix)
            self._ineligible_count -= _remove(self.ineligible, prefix, path_id)
        if self.stale:
            self.stale.difference_update(keys)
        return list(dict.fromkeys(touched)), None

    def received(self) -> int:
        return self._accepted + self._ineligible_count

    def accepted(self) -> int:
        return self._accepted

    def paths(self, prefix: Nlri) -> dict[int, Route]:
        return dict(self.routes.get(prefix, {}))

    def rejected_paths(self, prefix: Nlri) -> dict[int, Route]:
        return dict(self.ineligible.get(prefix, {}))

    def items(self) -> Iterator[tuple[Nlri, int, Route]]:
        for prefix, paths in self.routes.items():
            for path_id, route in paths.items():
                yield prefix, path_id, route

    def prefixes(self) -> list[Nlri]:
        return list(self.routes)

    def wire_keys(self) -> set[Nlri]:
        return {
            path_id.to_bytes(4, "big") + prefix
            for table in (self.routes, self.ineligible)
            for prefix, paths in table.items()
            for path_id in paths
        }


def _put(table: dict[Nlri, dict[int, Route]], prefix: Nlri, path_id: int, route: Route) -> int:
    """Store; 1 when the path is new, 0 when it replaced one."""
    paths = table.get(prefix)
    if paths is None:
        table[prefix] = {path_id: route}
        return 1
    new = path_id not in paths
    paths[path_id] = route
    return int(new)


def _remove(table: dict[Nlri, dict[int, Route]], prefix: Nlri, path_id: int) -> int:
    """Delete; 1 when the path was there."""
    paths = table.get(prefix)
    if paths is None or paths.pop(path_id, None) is None:
        return 0
    if not paths:
        del table[prefix]
    return 1
