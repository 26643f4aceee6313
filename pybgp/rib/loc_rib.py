"""Loc-RIB: the best path per prefix of one family, and the ECMP set (RFC 4271 §3.2, §9.1.2).

Sans-IO: every change is returned as `(prefix, old best, new best)` and the caller hands it
on (Adj-RIB-Out, the FIB, API subscribers). A change is reported when the best path or the
multipath set changed; re-announcing the same path reports nothing.

Storage: prefix -> best `Route` (a reference to the shared Route, no per-prefix object);
the multipath set lives in a second dict, only for prefixes that have one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat

from pybgp.rib.addpath import Ranked, ranked
from pybgp.rib.adj_in import AdjRibIn, Touched
from pybgp.rib.best_path import DEFAULT, BestPathConfig, keys, select
from pybgp.rib.incremental import RECOMPUTE, Undecided, replace_one
from pybgp.rib.route import Route
from pybgp.rib.tables import AddPathTable, PlainTable
from pybgp.wire.constants import Family
from pybgp.wire.nlri import Nlri

BestChange = tuple[Nlri, Route | None, Route | None]  # (prefix, old best, new best)


def candidates(sources: Iterable[AdjRibIn], family: Family, prefix: Nlri) -> list[Route]:
    """Every eligible path for `prefix` in the given Adj-RIBs-In."""
    found: list[Route] = []
    for source in sources:
        table = source.table(family)
        if table is not None:
            found.extend(table.paths(prefix).values())
    return found


def _same_set(a: tuple[Route, ...], b: tuple[Route, ...]) -> bool:
    return len(a) == len(b) and all(x.same(y) for x, y in zip(a, b, strict=True))


def _all_one(items: Sequence[Route | None]) -> bool:
    """Every item is the same object (or None), and there is at least one."""
    return bool(items) and items.count(items[0]) == len(items)


class LocRib:
    def __init__(self, family: Family, config: BestPathConfig = DEFAULT) -> None:
        self.family = family
        self.config = config
        self._has_hooks = config.has_hooks
        self._best: dict[Nlri, Route] = {}
        self._multipath: dict[Nlri, tuple[Route, ...]] = {}

    # -- reading ------------------------------------------------------------------------
    def best(self, prefix: Nlri) -> Route | None:
        return self._best.get(prefix)

    def multipath(self, prefix: Nlri) -> tuple[Route, ...]:
        """The paths sharing the traffic, best first; just the best without ECMP."""
        found = self._multipath.get(prefix)
        if found is not None:
            return found
        best = self._best.get(prefix)
        return () if best is None else (best,)

    def items(self) -> Iterator[tuple[Nlri, Route]]:
        return iter(self._best.items())

    def ranked(self, prefix: Nlri, sources: Iterable[AdjRibIn]) -> Ranked:
        """Every eligible path for `prefix` in `sources`, in decision-process order (the
        best first), named by (peer address, its path id): what ADD-PATH send and
        `pybgp rib` show (`pybgp.rib.addpath.ranked`)."""
        paths = []
        for source in sources:
            table = source.table(self.family)
            if table is not None:
                address = source.peer.address
                paths += [((address, path_id), r) for path_id, r in table.paths(prefix).items()]
        return ranked(paths, self.config)

    def __len__(self) -> int:
        return len(self._best)

    def __contains__(self, prefix: object) -> bool:
        return prefix in self._best

    # -- changing -----------------------------------------------------------------------
    def update(self, prefix: Nlri, routes: Sequence[Route]) -> BestChange | None:
        """Run the decision process for one prefix over all its candidate paths."""
        best, multipath = select(routes, self.config)
        return self._store(prefix, best, multipath)

    def apply(
        self,
        touched: Touched,
        sources: Sequence[AdjRibIn],
        lone_as: Callable[[int | None], bool] | None = None,
    ) -> list[BestChange]:
        """Take in what one Adj-RIB-In change did (`AdjRibIn.apply`): decided from the
        current best path and the changed path where that is sound (`replace_one`), from
        all candidates in `sources` otherwise. `lone_as(asn)`: no two sources can hold
        paths with that neighbour AS (see `replace_one`'s `alone`)."""
        config = self.config
        previous = touched.previous
        if previous is None or self._has_hooks:
            return self.recompute(touched.prefixes, sources)
        best_of, after = self._best, touched.route
        prefixes = touched.prefixes
        if after is not None and not any(previous) and best_of.keys().isdisjoint(prefixes):
            # New prefixes, the usual case while a table comes in.
            best_of.update(zip(prefixes, repeat(after)))
            return list(zip(prefixes, repeat(None), repeat(after)))
        after_keys = None if after is None else keys(after, config)
        alone = lone_as is not None and after_keys is not None and lone_as(after_keys.neighbour_as)
        olds = list(map(best_of.get, prefixes))
        if _all_one(olds) and _all_one(previous):
            # One best path and one path before for all: the peer packed the prefixes as a
            # neighbour did (the usual case with many peers), so one decision does for all.
            one = replace_one(olds[0], previous[0], after, config, after_keys, alone)
            return self._apply_all(prefixes, olds[0], one, sources)
        changes: list[BestChange] = []
        again: list[Nlri] = []
        seen: tuple[Route | None, Route | None] = (None, None)  # (old, before): same answer
        decided: Route | Undecided | None = None
        for prefix, old, before in zip(prefixes, olds, previous, strict=True):
            if old is None or seen[0] is not old or seen[1] is not before:
                decided = replace_one(old, before, after, config, after_keys, alone)
                seen = (old, before)
            new = decided
            if new is old:
                continue
            if new is RECOMPUTE:
                again.append(prefix)
            elif new is None:
                del best_of[prefix]
                changes.append((prefix, old, None))
            else:
                best_of[prefix] = new
                if not new.same(old):
                    changes.append((prefix, old, new))
        if again:
            changes += self.recompute(again, sources)
        return changes

    def _apply_all(
        self,
        prefixes: Sequence[Nlri],
        old: Route | None,
        new: Route | Undecided | None,
        sources: Sequence[AdjRibIn],
    ) -> list[BestChange]:
        """`apply` for prefixes that all had the best path `old` and now have `new`."""
        if new is old:
            return []
        if new is RECOMPUTE:
            return self.recompute(prefixes, sources)
        best_of = self._best
        if new is None:
            for prefix in prefixes:
                del best_of[prefix]
            return list(zip(prefixes, repeat(old), repeat(None)))
        best_of.update(zip(prefixes, repeat(new)))
        if new.same(old):
            return []
        return list(zip(prefixes, repeat(old), repeat(new)))

    def recompute(self, prefixes: Iterable[Nlri], sources: Sequence[AdjRibIn]) -> list[BestChange]:
        """`update` for each prefix, its candidates gathered from `sources` (every
        Adj-RIB-In, the local origin's included)."""
        tables = [t for s in sources if (t := s.table(self.family)) is not None]
        plain = [t.routes for t in tables if isinstance(t, PlainTable)]
        addpath = [t.routes for t in tables if isinstance(t, AddPathTable)]
        changes: list[BestChange] = []
        for prefix in prefixes:
            routes = [r for table in plain if (r := table.get(prefix)) is not None]
            for table in addpath:
                paths = table.get(prefix)
                if paths:
                    routes.extend(paths.values())
            change = self.update(prefix, routes)
            if change is not None:
                changes.append(change)
        return changes

    def reevaluate(self, sources: Sequence[AdjRibIn]) -> list[BestChange]:
        """Run the decision process again for every prefix (an IGP cost or next-hop
        reachability changed)."""
        prefixes = set(self._best)
        for source in sources:
            table = source.table(self.family)
            if table is not None:
                prefixes.update(table.prefixes())
        return self.recompute(prefixes, sources)

    # -- internals ----------------------------------------------------------------------
    def _store(
        self, prefix: Nlri, new: Route | None, multipath: tuple[Route, ...]
    ) -> BestChange | None:
        old = self._best.get(prefix)
        old_multipath = self._multipath.get(prefix, ())
        if new is None:
            if old is None:
                return None
            del self._best[prefix]
            self._multipath.pop(prefix, None)
            return prefix, old, None
        self._best[prefix] = new
        if multipath:
            self._multipath[prefix] = multipath
        elif old_multipath:
            del self._multipath[prefix]
        if new.same(old) and _same_set(multipath, old_multipath):
            return None
        return prefix, old, new
