"""Conditions compiled into small functions, in two kinds:

- route conditions read the prefix, the peer, the next hop or the route type:
  `(RouteContext, next hop) -> bool` (the next hop as earlier statements left it);
- attribute conditions read only the path attributes: `(PathAttributes) -> bool`. Since
  attributes are interned and shared by many routes, a statement caches their verdict per
  attribute set (`pybgp.policy.engine`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from pybgp.policy.context import RouteContext
from pybgp.policy.match import AddressMatcher, AsPathMatcher, PrefixTable, ValueMatcher
from pybgp.policy.model import Conditions, Definitions, MatchSet, PolicyError
from pybgp.policy.sets import community_member, ext_community_member, large_community_member
from pybgp.wire import aspath
from pybgp.wire.communities import (
    community_to_str,
    extended_community_to_str,
    large_community_to_str,
)
from pybgp.wire.constants import Origin
from pybgp.wire.pathattrs import PathAttributes

RouteTest = Callable[[RouteContext, str], bool]
AttrTest = Callable[[PathAttributes], bool]
T = TypeVar("T")


class Condition(NamedTuple):
    """One compiled condition; exactly one of the tests is set. `label` is what `explain`
    shows: "prefix-set pods", "community-set blackhole (invert)". `reads`: "prefix" or
    "peer" when the verdict can differ between the prefixes of one route or between peers
    (the RIBs then evaluate per prefix, or keep peers apart); else "route"."""

    label: str
    on_route: RouteTest | None = None
    on_attributes: AttrTest | None = None
    reads: str = "route"


class CompiledSets:
    """Every defined set compiled once, by name; a statement that names a missing set is
    a `PolicyError`."""

    def __init__(self, definitions: Definitions) -> None:
        d = definitions
        self.prefix = _by_name("prefix", d.prefix_sets, lambda s: PrefixTable(s.entries))
        self.neighbor = _by_name("neighbor", d.neighbor_sets, lambda s: AddressMatcher(s.members))
        self.as_path = _by_name("as-path", d.as_path_sets, lambda s: AsPathMatcher(s.members))
        self.community = _by_name(
            "community",
            d.community_sets,
            lambda s: ValueMatcher([community_member(m) for m in s.members], community_to_str),
        )
        self.ext_community = _by_name(
            "ext-community",
            d.ext_community_sets,
            lambda s: ValueMatcher(
                [ext_community_member(m) for m in s.members], extended_community_to_str
            ),
        )
        self.large_community = _by_name(
            "large-community",
            d.large_community_sets,
            lambda s: ValueMatcher(
                [large_community_member(m) for m in s.members], large_community_to_str
            ),
        )


def _by_name(kind: str, sets: Sequence[Any], build: Callable[[Any], T]) -> _Named[T]:
    table: dict[str, T] = {}
    for defined in sets:
        if defined.name in table:
            raise PolicyError(f"{kind} set {defined.name!r} is defined twice")
        table[defined.name] = build(defined)
    return _Named(kind, table)


class _Named(dict[str, T]):
    def __init__(self, kind: str, table: dict[str, T]) -> None:
        super().__init__(table)
        self.kind = kind

    def __missing__(self, name: str) -> T:
        raise PolicyError(f"no {self.kind} set named {name!r}")


def _label(kind: str, match: MatchSet) -> str:
    option = "" if match.option == "any" else f" ({match.option})"
    return f"{kind}-set {match.set_name}{option}"


def compile_conditions(conditions: Conditions, sets: CompiledSets) -> tuple[Condition, ...]:
    """The statement's conditions in a fixed order (the order `explain` shows them in)."""
    c = conditions
    out: list[Condition] = []
    if c.prefix_set is not None:
        out.append(_prefix(c.prefix_set, sets))
    if c.neighbor_set is not None:
        matcher = sets.neighbor[c.neighbor_set.set_name]
        invert = c.neighbor_set.option == "invert"
        out.append(
            Condition(
                _label("neighbor", c.neighbor_set),
                on_route=lambda ctx, nh: matcher.contains(ctx.peer.address) != invert,
                reads="peer",
            )
        )
    if c.next_hop is not None:
        hops, hop_invert = AddressMatcher(c.next_hop.members), c.next_hop.invert
        label = f"next-hop {'not ' if hop_invert else ''}in {', '.join(c.next_hop.members)}"
        out.append(Condition(label, on_route=lambda ctx, nh: hops.contains(nh) != hop_invert))
    if c.route_type is not None:
        wanted = c.route_type
        out.append(
            Condition(f"route-type {wanted}", on_route=lambda ctx, nh: ctx.route_type() == wanted)
        )
    out += _attribute_conditions(c, sets)
    return tuple(out)


def _prefix(match: MatchSet, sets: CompiledSets) -> Condition:
    test = sets.prefix[match.set_name].route_test(match.option == "invert")
    return Condition(_label("prefix", match), on_route=test, reads="prefix")


def _attribute_conditions(c: Conditions, sets: CompiledSets) -> list[Condition]:
    out: list[Condition] = []
    if c.origin is not None:
        origin = c.origin
        out.append(
            Condition(
                f"origin {Origin(origin).name.lower()}", on_attributes=lambda a: a.origin == origin
            )
        )
    if c.as_path_length is not None:
        out.append(_as_path_length(c.as_path_length.operator, c.as_path_length.value))
    if c.as_path_set is not None:
        out.append(_as_path_set(c.as_path_set, sets.as_path[c.as_path_set.set_name]))
    for kind, match, table, read in (
        ("community", c.community_set, sets.community, _communities),
        ("ext-community", c.ext_community_set, sets.ext_community, _ext_communities),
        ("large-community", c.large_community_set, sets.large_community, _large_communities),
    ):
        if match is not None:
            out.append(_values(_label(kind, match), table[match.set_name], match.option, read))
    return out


def _communities(a: PathAttributes) -> tuple[Any, ...]:
    return a.communities


def _ext_communities(a: PathAttributes) -> tuple[Any, ...]:
    return a.extended_communities


def _large_communities(a: PathAttributes) -> tuple[Any, ...]:
    return a.large_communities


def _values(
    label: str,
    matcher: ValueMatcher[Any],
    option: str,
    read: Callable[[PathAttributes], tuple[Any, ...]],
) -> Condition:
    return Condition(label, on_attributes=lambda a: matcher.test(read(a), option))


def _as_path_length(operator: str, value: int) -> Condition:
    compare: Callable[[int], bool] = {
        "eq": lambda n: n == value,
        "ge": lambda n: n >= value,
        "le": lambda n: n <= value,
    }[operator]
    return Condition(
        f"as-path-length {operator} {value}",
        on_attributes=lambda a: compare(aspath.path_length(a.as_path)),
    )


def _as_path_set(match: MatchSet, matcher: AsPathMatcher) -> Condition:
    option = match.option

    def test(attributes: PathAttributes) -> bool:
        hits = matcher.hits(aspath.as_path_to_str(attributes.as_path))
        if option == "all":
            return all(hits)
        return any(hits) != (option == "invert")

    return Condition(_label("as-path", match), on_attributes=test)
