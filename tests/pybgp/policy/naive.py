"""A naive evaluation written from the rules in pybgp.policy.model, sharing no code with the
engine: every statement scanned in order, every prefix-set entry scanned, every set member
tested, the attributes kept as a plain dict of decoded values."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pybgp.policy import Actions, Conditions, Definitions, RouteContext
from pybgp.wire import aspath
from pybgp.wire.communities import extended_community_from_str, extended_community_to_str
from pybgp.wire.constants import AttrType
from pybgp.wire.nlri import nlri_to_str

from .helpers import LOCAL_AS

NAMES = {"no-export": 0xFFFFFF01, "no-advertise": 0xFFFFFF02, "blackhole": 0xFFFF029A}
SEPARATOR = "(^|[ ,{}()\\[\\]]|$)"


def member_matches(member: str, value: Any, kind: str) -> bool:
    if kind == "community":
        name = member.lower().replace("_", "-")
        if name in NAMES:
            return bool(value == NAMES[name])
        if re.fullmatch(r"\d+:\d+", member):
            high, low = member.split(":")
            return bool(value == int(high) << 16 | int(low))
        return re.search(member, f"{value >> 16}:{value & 0xFFFF}") is not None
    if kind == "large":
        if re.fullmatch(r"\d+:\d+:\d+", member):
            return bool(value == tuple(int(p) for p in member.split(":")))
        return re.search(member, ":".join(map(str, value))) is not None
    if re.fullmatch(r"(rt|soo):[\d.]+:\d+", member.lower()):
        return bool(value == extended_community_from_str(member.lower()))
    return re.search(member, extended_community_to_str(value), re.IGNORECASE) is not None


def set_matches(
    set_members: tuple[str, ...], values: tuple[Any, ...], option: str, kind: str
) -> bool:
    if option == "all":
        return all(any(member_matches(m, v, kind) for v in values) for m in set_members)
    found = any(member_matches(m, v, kind) for m in set_members for v in values)
    return found != (option == "invert")


def address_in(address: str, listed: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    for member in listed:
        net = ipaddress.ip_network(member)
        if ip.version == net.version and ip in net:
            return True
    return False


def find(sets: tuple[Any, ...], name: str) -> Any:
    return next(s for s in sets if s.name == name)


def naive_conditions(
    d: Definitions, c: Conditions, route: RouteContext, values: dict[int, Any], next_hop: str
) -> bool:
    checks: list[bool] = []
    if c.prefix_set is not None:
        net = ipaddress.ip_network(nlri_to_str(route.prefix, route.family))
        hit = any(
            e.network.version == net.version
            and e.ge <= net.prefixlen <= e.le
            and net.subnet_of(e.network)  # type: ignore[arg-type]
            for e in find(d.prefix_sets, c.prefix_set.set_name).entries
        )
        checks.append(hit != (c.prefix_set.option == "invert"))
    if c.neighbor_set is not None:
        hit = address_in(route.peer.address, find(d.neighbor_sets, c.neighbor_set.set_name).members)
        checks.append(hit != (c.neighbor_set.option == "invert"))
    if c.next_hop is not None:
        checks.append(address_in(next_hop, c.next_hop.members) != c.next_hop.invert)
    if c.route_type is not None:
        source = route.source or route.peer
        kind = (
            "local"
            if source.local
            else "internal"
            if source.ibgp or source.confederation
            else "external"
        )
        checks.append(kind == c.route_type)
    path = values.get(AttrType.AS_PATH, ())
    if c.origin is not None:
        checks.append(values[AttrType.ORIGIN] == c.origin)
    if c.as_path_length is not None:
        n, op, want = aspath.path_length(path), c.as_path_length.operator, c.as_path_length.value
        checks.append(n == want if op == "eq" else n >= want if op == "ge" else n <= want)
    if c.as_path_set is not None:
        text = aspath.as_path_to_str(path)
        hits = [
            re.search(p.replace("_", SEPARATOR), text) is not None
            for p in find(d.as_path_sets, c.as_path_set.set_name).members
        ]
        checks.append(
            all(hits)
            if c.as_path_set.option == "all"
            else any(hits) != (c.as_path_set.option == "invert")
        )
    for match, sets, code, kind in [
        (c.community_set, d.community_sets, AttrType.COMMUNITIES, "community"),
        (c.ext_community_set, d.ext_community_sets, AttrType.EXTENDED_COMMUNITIES, "ext"),
        (c.large_community_set, d.large_community_sets, AttrType.LARGE_COMMUNITIES, "large"),
    ]:
        if match is not None:
            checks.append(
                set_matches(
                    find(sets, match.set_name).members, values.get(code, ()), match.option, kind
                )
            )
    return all(checks)


def naive_list(
    current: tuple[Any, ...], action: Any, sets: tuple[Any, ...], kind: str
) -> tuple[Any, ...]:
    if action.replace is not None:
        current = tuple(dict.fromkeys(action.replace))
    if action.remove is not None:
        listed = find(sets, action.remove).members
        current = tuple(v for v in current if not any(member_matches(m, v, kind) for m in listed))
    return current + tuple(v for v in dict.fromkeys(action.add) if v not in current)


def naive_actions(
    d: Definitions, a: Actions, route: RouteContext, values: dict[int, Any], next_hop: str
) -> tuple[dict[int, Any], str]:
    values = dict(values)
    if a.local_pref is not None:
        values[AttrType.LOCAL_PREF] = a.local_pref
    if a.med is not None:
        med, n = values.get(AttrType.MULTI_EXIT_DISC, 0), a.med.value
        values[AttrType.MULTI_EXIT_DISC] = {
            "set": n,
            "add": min(med + n, 2**32 - 1),
            "subtract": max(med - n, 0),
        }[a.med.operation]
    for action, code, sets, kind in [
        (a.communities, AttrType.COMMUNITIES, d.community_sets, "community"),
        (a.large_communities, AttrType.LARGE_COMMUNITIES, d.large_community_sets, "large"),
    ]:
        if action is not None:
            values[code] = naive_list(values.get(code, ()), action, sets, kind)
            if not values[code]:
                del values[code]
    if a.as_path_prepend is not None:
        path = values.get(AttrType.AS_PATH, ())
        asn = a.as_path_prepend.asn
        number = LOCAL_AS if asn == "self" else aspath.first_as(path) if asn == "last-as" else asn
        if number is not None:
            values[AttrType.AS_PATH] = aspath.prepend(path, int(number), a.as_path_prepend.repeat)
    if a.next_hop is not None:
        next_hop = (route.local_address or next_hop) if a.next_hop == "self" else a.next_hop
    return values, next_hop


def naive(
    d: Definitions, names: list[str], default: str, route: RouteContext
) -> tuple[bool, dict[int, Any], str, str]:
    original = dict(route.attributes.values)
    values, next_hop = original, route.next_hop
    for name in names:
        p = d.policy(name)
        for s in p.statements:
            if not naive_conditions(d, s.conditions, route, values, next_hop):
                continue
            if s.actions.disposition == "reject":
                return False, original, route.next_hop, f"{name}/{s.name}"
            values, next_hop = naive_actions(d, s.actions, route, values, next_hop)
            if s.actions.disposition == "accept":
                return True, values, next_hop, f"{name}/{s.name}"
        if p.default is not None:
            verdict = p.default == "accept"
            return (
                verdict,
                values if verdict else original,
                next_hop if verdict else route.next_hop,
                f"{name}/default",
            )
    verdict = default == "accept"
    return (
        verdict,
        values if verdict else original,
        next_hop if verdict else route.next_hop,
        "default",
    )
