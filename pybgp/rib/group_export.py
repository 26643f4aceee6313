"""A Loc-RIB route as one update group sends it: the export rules (`pybgp.rib.export`), then
the group's export policy. Worked out once per route and cached, as many prefixes share a
route; a policy that reads the prefix is applied per prefix, after the per-route export."""

from __future__ import annotations

from pybgp.rib.export import Exported, ExportKey, after_policy, export
from pybgp.rib.route import Route
from pybgp.wire.constants import Family
from pybgp.wire.nlri import Nlri

_CACHE_LIMIT = 1 << 16


class GroupExport:
    def __init__(self, key: ExportKey) -> None:
        self.key = key
        # route -> what the group sends for it (None: nothing), per family.
        self.routes: dict[Family, dict[Route, Exported | None]] = {f: {} for f in key.families}
        self._policy = key.export_filter
        self.per_prefix = self._policy is not None and "prefix" in self._policy.reads
        self._as_route: dict[Exported, Route] = {}
        self._filtered: dict[Route, Exported] = {}

    def __call__(self, family: Family, route: Route, prefix: Nlri) -> Exported | None:
        """The route as this group sends it for `prefix`; worked out once per route (and
        the export policy once per prefix when it reads the prefix)."""
        cache = self.routes[family]
        if route in cache:
            found = cache[route]
        else:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            found = cache[route] = self._export_route(family, route, prefix)
        if found is not None and self.per_prefix:
            return self._apply_policy(family, prefix, found, route)
        return found

    def _export_route(self, family: Family, route: Route, prefix: Nlri) -> Exported | None:
        exported = export(route, self.key, family)
        if exported is None or self._policy is None or self.per_prefix:
            return exported
        return self._apply_policy(family, prefix, exported, route)

    def _apply_policy(
        self, family: Family, prefix: Nlri, exported: Exported, route: Route
    ) -> Exported | None:
        """The export policy on the route as the group would send it (shared objects, so
        an unchanged result is the same `Exported`)."""
        assert self._policy is not None
        as_route = self._as_route.get(exported)
        if as_route is None:
            if len(self._as_route) >= _CACHE_LIMIT:
                self._as_route.clear()
            as_route = self._as_route[exported] = Route(
                exported.attributes, exported.next_hop, route.peer
            )
        kept = self._policy(family, prefix, as_route)
        if kept is None:
            return None
        if kept is as_route:
            return exported
        found = self._filtered.get(kept)
        if found is None:
            if len(self._filtered) >= _CACHE_LIMIT:
                self._filtered.clear()
            fitted = after_policy(kept.attributes, self.key)
            found = self._filtered[kept] = Exported(fitted, kept.next_hop, exported.source)
        return found
