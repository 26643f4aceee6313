"""One `[[policy.definitions.statements]]` entry: its conditions and actions (the shape is
documented in pybgp.policy.config). References to sets and policies are checked here, so a
wrong name is reported at the key that holds it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from pybgp.config_values import (
    ConfigError,
    ConfigTable,
    address_value,
    choice,
    int_range,
    list_of,
    string_value,
)
from pybgp.policy.model import (
    DISPOSITIONS,
    LENGTH_OPERATORS,
    MATCH_OPTIONS,
    ROUTE_TYPES,
    Actions,
    AsPathLength,
    CommunityAction,
    Conditions,
    LargeCommunityAction,
    MatchSet,
    MedAction,
    NextHopMatch,
    Prepend,
    Statement,
)
from pybgp.policy.sets import community_member, large_community_member, normalise_address_or_prefix
from pybgp.wire.constants import Origin

_u32 = int_range(0, 2**32 - 1)
_SINGLE_VALUED = ("any", "invert")  # a prefix or an address is one value: "all" means nothing


def _set_names() -> dict[str, set[str]]:
    kinds = ("prefix", "neighbor", "as_path", "community", "ext_community", "large_community")
    return {f"{kind}_sets": set() for kind in kinds}


@attrs.define
class Names:
    """The names defined so far, by kind ("prefix_sets", ...), and the policies."""

    sets: dict[str, set[str]] = attrs.field(factory=_set_names)
    policy: set[str] = attrs.field(factory=set)


def _known(kind: str, known: set[str]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        name = string_value(value)
        if name not in known:
            defined = f" (defined: {', '.join(sorted(known))})" if known else " (none defined)"
            raise ValueError(f"no {kind} named {name!r}{defined}")
        return name

    return convert


def policy_names(known: set[str]) -> Callable[[Any], list[str]]:
    """A policy name or a list of them, each defined."""
    each = _known("policy", known)

    def convert(value: Any) -> list[str]:
        return [each(value)] if isinstance(value, str) else list_of(each)(value)

    return convert


def _match_set(kind: str, known: set[str], options: tuple[str, ...]) -> Callable[[Any], MatchSet]:
    """ "name" or { set = "name", match = "any" | "all" | "invert" }."""
    name_of = _known(f"{kind} set", known)

    def convert(value: Any) -> MatchSet:
        if isinstance(value, str):
            return MatchSet(set_name=name_of(value))
        if not isinstance(value, dict):
            raise ValueError(
                f'expected a set name or {{ set = "NAME", match = "any" }}, got {value!r}'
            )
        unknown = sorted(set(value) - {"set", "match"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (expected set, match)")
        if "set" not in value:
            raise ValueError("set: missing (required)")
        option = choice(*options)(value.get("match", "any"))
        return MatchSet(set_name=name_of(value["set"]), option=option)

    return convert


def parse_statement(t: ConfigTable, default_name: str, seen: set[str], names: Names) -> Statement:
    name = t.get("name", string_value, default=default_name)
    if name in seen:
        raise ConfigError(f"{t.key('name')}: statement {name!r} is defined twice in this policy")
    seen.add(name)
    conditions = _conditions(t.table("conditions"), names)
    actions = _actions(t.table("actions"), names)
    t.done()
    return Statement(name=name, conditions=conditions, actions=actions)


def _conditions(c: ConfigTable, names: Names) -> Conditions:
    sets = names.sets

    def match(key: str, options: tuple[str, ...] = MATCH_OPTIONS) -> MatchSet | None:
        kind = key.removesuffix("_set").replace("_", "-")
        return c.get(key, _match_set(kind, sets[key + "s"], options))

    conditions = Conditions(
        prefix_set=match("prefix_set", _SINGLE_VALUED),
        neighbor_set=match("neighbor_set", _SINGLE_VALUED),
        as_path_set=match("as_path_set"),
        community_set=match("community_set"),
        ext_community_set=match("ext_community_set"),
        large_community_set=match("large_community_set"),
        as_path_length=_as_path_length(c),
        next_hop=c.get("next_hop", _next_hop_match),
        origin=c.get("origin", _origin),
        route_type=c.get("route_type", choice(*ROUTE_TYPES)),
    )
    c.done()
    return conditions


def _as_path_length(c: ConfigTable) -> AsPathLength | None:
    if "as_path_length" not in c.data:
        return None
    t = c.table("as_path_length")
    length = AsPathLength(
        operator=t.get("operator", choice(*LENGTH_OPERATORS), required=True),
        value=t.get("value", int_range(0, 65535), required=True),
    )
    t.done()
    return length


def _next_hop_match(value: Any) -> NextHopMatch:
    """[addresses or prefixes] or { in = [...], match = "any" | "invert" }."""
    members = list_of(string_value)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"in", "match"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (expected in, match)")
        option = choice(*_SINGLE_VALUED)(value.get("match", "any"))
        listed = list_of(normalise_address_or_prefix)(members(value.get("in", [])))
        return NextHopMatch(members=tuple(listed), invert=option == "invert")
    return NextHopMatch(members=tuple(list_of(normalise_address_or_prefix)(members(value))))


def _origin(value: Any) -> int:
    return Origin[choice("igp", "egp", "incomplete")(value).upper()].value


def _actions(a: ConfigTable, names: Names) -> Actions:
    actions = Actions(
        disposition=a.get("disposition", choice(*DISPOSITIONS), default="next"),
        local_pref=a.get("local_pref", _u32),
        med=a.get("med", MedAction.parse),
        next_hop=a.get("next_hop", _next_hop_target),
        communities=_set_action(a, "communities", _community, "community", names, CommunityAction),
        large_communities=_set_action(
            a, "large_communities", _large, "large-community", names, LargeCommunityAction
        ),
        as_path_prepend=_prepend(a),
    )
    a.done()
    return actions


def _next_hop_target(value: Any) -> str:
    return "self" if value == "self" else address_value(value)


def _exact(parse: Callable[[str], Any], what: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        member = parse(string_value(value))
        if isinstance(member, re.Pattern):
            raise ValueError(f"expected {what}, got {value!r}")
        return member

    return convert


_community = _exact(community_member, "a community A:B or a well-known name")
_large = _exact(large_community_member, "a large community A:B:C")


def _set_action(
    a: ConfigTable, key: str, member: Callable[[Any], Any], set_kind: str, names: Names, kind: Any
) -> Any:
    """`communities` / `large_communities` actions: {add = [...], remove = SET, replace = [...]}."""
    if key not in a.data:
        return None
    t = a.table(key)
    replace = t.get("replace", list_of(member))
    action = kind(
        add=tuple(t.get("add", list_of(member), default=[])),
        remove=t.get(
            "remove", _known(f"{set_kind} set", names.sets[f"{set_kind.replace('-', '_')}_sets"])
        ),
        replace=tuple(replace) if replace is not None else None,
    )
    t.done()
    return action


def _prepend_asn(value: Any) -> int | str:
    if value in ("self", "last-as"):
        return str(value)
    try:
        return int_range(1, 2**32 - 1)(value)
    except ValueError:
        raise ValueError(f'expected an AS number, "self" or "last-as", got {value!r}') from None


def _prepend(a: ConfigTable) -> Prepend | None:
    if "as_path_prepend" not in a.data:
        return None
    t = a.table("as_path_prepend")
    prepend = Prepend(
        asn=t.get("asn", _prepend_asn, required=True),
        repeat=t.get("repeat", int_range(1, 255), default=1),
    )
    t.done()
    return prepend
