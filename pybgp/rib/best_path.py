"""The decision process: RFC 4271 §9.1.2 (phase 2) with the §9.1.2.2 tie-breaks, in order.

Every step is one function that takes the candidates still in the running and returns those
that survive it, so the outcome never depends on the order candidates are given in (the
MED step compares within a neighbour AS only, which is not a total order: a pairwise
"better than" would depend on order). Steps:

  0. next hop resolvable (§9.1.2.1; the `next_hop_reachable` hook)
  1. highest degree of preference: LOCAL_PREF, or the configured default when it is missing
     (§9.1.1; the codec already discards LOCAL_PREF from eBGP peers, RFC 7606 §7.5, so an
     eBGP route has the default unless import policy set one)
  2. shortest AS path: AS_SET counts 1, confederation segments 0 (§9.1.2.2 a)
  3. lowest ORIGIN (§9.1.2.2 b)
  4. lowest MED among routes from the same neighbour AS, or among all with
     `always_compare_med`; a missing MED is 0, or the worst with `med_missing_as_worst`
     (§9.1.2.2 c)
  5. eBGP (and locally originated) over iBGP (§9.1.2.2 d)
  6. lowest IGP cost to the next hop (§9.1.2.2 e; the `igp_cost` hook, default 0)
  7. lowest BGP Identifier, ORIGINATOR_ID standing in for it (§9.1.2.2 f, RFC 4456 §9)
  8. shortest CLUSTER_LIST (RFC 4456 §9)
  9. lowest peer address (§9.1.2.2 g)
 10. lowest next hop, then attribute octets: not in the RFC, only so that two paths from one
     ADD-PATH peer never tie.

ECMP (multipath): the paths equal through step 6 share the traffic, up to `multipath`; for
eBGP they must also come from the best path's neighbour AS unless `multipath_relax`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from pybgp.rib.peer import ip_sort_key
from pybgp.rib.route import Keys, Route

MED_WORST = 0xFFFFFFFF


@attrs.frozen(kw_only=True)
class BestPathConfig:
    default_local_pref: int = 100
    always_compare_med: bool = False
    med_missing_as_worst: bool = False  # FRR: bgp bestpath med missing-as-worst
    multipath: int = 1  # paths installed together, 1 = no ECMP
    multipath_relax: bool = False  # FRR: bgp bestpath as-path multipath-relax
    igp_cost: Callable[[str], int] | None = None  # next hop -> cost
    next_hop_reachable: Callable[[str], bool] | None = None  # None: every next hop is

    @property
    def has_hooks(self) -> bool:
        """Anything beyond the attributes decides: the hooks, or ECMP."""
        return (
            self.igp_cost is not None or self.next_hop_reachable is not None or self.multipath > 1
        )


DEFAULT = BestPathConfig()
Selection = tuple[Route | None, tuple[Route, ...]]
StepFn = Callable[[list[Route], BestPathConfig], list[Route]]


# -- what each step compares (lower is better) -------------------------------------------
def local_pref_key(route: Route, config: BestPathConfig) -> int:
    value = route.facts.local_pref
    return -(config.default_local_pref if value is None else value)


def med_value(route: Route, config: BestPathConfig) -> int:
    value = route.facts.med
    if value is None:
        return MED_WORST if config.med_missing_as_worst else 0
    return value


def ebgp_key(route: Route) -> int:
    peer = route.peer
    return 1 if peer.ibgp or peer.confederation else 0


def igp_cost_key(route: Route, config: BestPathConfig) -> int:
    hook = config.igp_cost
    return 0 if hook is None else hook(route.next_hop)


def tie_key(route: Route) -> tuple[int, int, tuple[int, int], tuple[int, int], bytes]:
    """Steps 7-10 as one key: sorting by it orders paths as those steps would pick them."""
    facts = route.facts
    return (
        facts.router_id,
        facts.cluster_list_length,
        route.peer.address_key,
        _next_hop_key(route.next_hop),
        route.attributes.raw,
    )


_NEXT_HOP_KEYS: dict[str, tuple[int, int]] = {}  # a table has few next hops


def _next_hop_key(text: str) -> tuple[int, int]:
    found = _NEXT_HOP_KEYS.get(text)
    if found is None:
        if len(_NEXT_HOP_KEYS) > 4096:
            _NEXT_HOP_KEYS.clear()
        found = _NEXT_HOP_KEYS[text] = ip_sort_key(text)
    return found


def _keep_lowest(routes: list[Route], key: Callable[[Route], object]) -> list[Route]:
    if len(routes) < 2:
        return routes
    values = [key(route) for route in routes]
    low = min(values)  # type: ignore[type-var]
    return [route for route, value in zip(routes, values, strict=True) if value == low]


# -- the steps, in order -----------------------------------------------------------------
def reachable(routes: list[Route], config: BestPathConfig) -> list[Route]:
    """§9.1.2.1: a route whose next hop does not resolve is not eligible."""
    hook = config.next_hop_reachable
    return routes if hook is None else [r for r in routes if hook(r.next_hop)]


def highest_local_pref(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, lambda r: local_pref_key(r, config))


def shortest_as_path(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, lambda r: r.facts.path_length)


def lowest_origin(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, lambda r: r.facts.origin)


def lowest_med(routes: list[Route], config: BestPathConfig) -> list[Route]:
    """§9.1.2.2 c: a route loses to one from the same neighbour AS with a lower MED."""
    if len(routes) < 2:
        return routes
    if config.always_compare_med:
        return _keep_lowest(routes, lambda r: med_value(r, config))
    lowest: dict[int | None, int] = {}
    for route in routes:
        as_, med = route.facts.neighbour_as, med_value(route, config)
        if med < lowest.get(as_, MED_WORST + 1):
            lowest[as_] = med
    return [r for r in routes if med_value(r, config) == lowest[r.facts.neighbour_as]]


def prefer_ebgp(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, ebgp_key)


def lowest_igp_cost(routes: list[Route], config: BestPathConfig) -> list[Route]:
    if config.igp_cost is None:
        return routes
    return _keep_lowest(routes, lambda r: igp_cost_key(r, config))


def lowest_router_id(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, lambda r: r.facts.router_id)


def shortest_cluster_list(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, lambda r: r.facts.cluster_list_length)


def lowest_peer_address(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, lambda r: r.peer.address_key)


def final_tie_break(routes: list[Route], config: BestPathConfig) -> list[Route]:
    return _keep_lowest(routes, lambda r: (_next_hop_key(r.next_hop), r.attributes.raw))


@attrs.frozen
class Step:
    name: str
    run: StepFn
    shown: Callable[[Route, BestPathConfig], object]  # the value compared, for explain()


STEPS: tuple[Step, ...] = (
    Step("next hop reachable", reachable, lambda r, c: r.next_hop),
    Step("local preference", highest_local_pref, lambda r, c: -local_pref_key(r, c)),
    Step("AS path length", shortest_as_path, lambda r, c: r.facts.path_length),
    Step("origin", lowest_origin, lambda r, c: ("IGP", "EGP", "incomplete")[r.facts.origin]),
    Step("MED", lowest_med, lambda r, c: f"{med_value(r, c)} from AS {r.facts.neighbour_as}"),
    Step("eBGP over iBGP", prefer_ebgp, lambda r, c: ("eBGP", "iBGP")[ebgp_key(r)]),
    Step("IGP cost", lowest_igp_cost, igp_cost_key),
    Step("router ID", lowest_router_id, lambda r, c: r.facts.router_id),
    Step("cluster list length", shortest_cluster_list, lambda r, c: r.facts.cluster_list_length),
    Step("peer address", lowest_peer_address, lambda r, c: r.peer.address),
    Step("next hop and attributes", final_tie_break, lambda r, c: r.next_hop),
)
_MULTIPATH_STEPS = 7  # steps 0-6: paths equal through the IGP cost may share the traffic


def select(candidates: Sequence[Route], config: BestPathConfig = DEFAULT) -> Selection:
    """(best path or None, multipath set): the set holds the best first and the paths that
    share the traffic with it, or is empty when there is no ECMP.

    Without the IGP cost hook and ECMP, steps 1-3 and 5, 7-10 compare keys cached on each
    Route (lexicographic minima are what those steps keep, one after the other); otherwise
    the step functions run one by one."""
    hook = config.next_hop_reachable
    routes = candidates if hook is None else [r for r in candidates if hook(r.next_hop)]
    if len(routes) < 2:
        return (routes[0] if routes else None), ()
    if config.igp_cost is not None or config.multipath > 1:
        return select_stepwise(routes, config)
    ranked = [(route, keys(route, config)) for route in routes]
    low = min(k.rank for _, k in ranked)
    tier = [pair for pair in ranked if pair[1].rank == low]
    if len(tier) > 1:
        tier = _med_filter(tier, config)
    return min(tier, key=_by_tail)[0], ()


def select_stepwise(candidates: Sequence[Route], config: BestPathConfig = DEFAULT) -> Selection:
    """`select`, running every step function in turn."""
    routes = list(candidates)
    for index, step in enumerate(STEPS):
        if index == _MULTIPATH_STEPS and config.multipath > 1 and len(routes) > 1:
            return _with_multipath(routes, config)
        routes = step.run(routes, config)
        if len(routes) < 2:
            break
    return (routes[0] if routes else None), ()


def keys(route: Route, config: BestPathConfig) -> Keys:
    """The route's comparison keys, made once per route and configuration."""
    found = route.keys
    if found is None or found.config is not config:
        # local_pref_key, med_value, ebgp_key and tie_key inlined: this runs once per
        # UPDATE on the ingest path (the property tests hold it to the step functions).
        facts, peer = route.facts, route.peer
        local_pref, med = facts.local_pref, facts.med
        if med is None:
            med = MED_WORST if config.med_missing_as_worst else 0
        found = route.keys = Keys(
            config,
            (
                -(config.default_local_pref if local_pref is None else local_pref),
                facts.path_length,
                facts.origin,
            ),
            med,
            facts.neighbour_as,
            (
                1 if peer.ibgp or peer.confederation else 0,
                facts.router_id,
                facts.cluster_list_length,
                peer.address_key,
                _next_hop_key(route.next_hop),
                route.attributes.raw,
            ),
        )
    return found


def _by_tail(pair: tuple[Route, Keys]) -> tuple[object, ...]:
    return pair[1].tail


def _med_filter(tier: list[tuple[Route, Keys]], config: BestPathConfig) -> list[tuple[Route, Keys]]:
    """Step 4 on (route, keys) pairs, as `lowest_med` does it on routes."""
    if config.always_compare_med:
        low = min(k.med for _, k in tier)
        return [pair for pair in tier if pair[1].med == low]
    lowest: dict[int | None, int] = {}
    for _, k in tier:
        if k.med < lowest.get(k.neighbour_as, MED_WORST + 1):
            lowest[k.neighbour_as] = k.med
    return [pair for pair in tier if pair[1].med == lowest[pair[1].neighbour_as]]


def _with_multipath(equal: list[Route], config: BestPathConfig) -> Selection:
    ordered = sorted(equal, key=tie_key)  # the order steps 7-10 would pick them in
    best = ordered[0]
    if best.peer.external and not config.multipath_relax:
        ordered = [r for r in ordered if r.facts.neighbour_as == best.facts.neighbour_as]
    chosen: list[Route] = []
    hops: set[str] = set()
    for route in ordered:
        if route.next_hop not in hops:  # two paths through one next hop are one path
            hops.add(route.next_hop)
            chosen.append(route)
            if len(chosen) == config.multipath:
                break
    return best, (tuple(chosen) if len(chosen) > 1 else ())


def explain(candidates: Sequence[Route], config: BestPathConfig = DEFAULT) -> list[str]:
    """How the best path was found: one line per step that put paths out, naming the step,
    the paths (by peer address) and the values compared; the last line names the best."""
    routes = list(candidates)
    lines = [f"{len(routes)} candidate path(s)"]
    decided = "only candidate"
    for step in STEPS:
        if len(routes) < 2 and step.run is not reachable:
            break
        kept = step.run(routes, config)
        out = [r for r in routes if not any(r is k for k in kept)]
        if out:
            lines.append(
                f"{step.name}: kept {_show(kept, step, config)}; out {_show(out, step, config)}"
            )
            decided = step.name
        routes = kept
    if not routes:
        lines.append("no eligible path")
    else:
        lines.append(
            f"best: from {routes[0].peer.address} via {routes[0].next_hop}, decided by {decided}"
        )
    return lines


def _show(routes: list[Route], step: Step, config: BestPathConfig) -> str:
    if not routes:
        return "none"
    return ", ".join(f"{r.peer.address} ({step.shown(r, config)})" for r in routes)
