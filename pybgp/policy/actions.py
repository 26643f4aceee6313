"""Actions compiled: an attribute edit per statement, and a next-hop rewrite.

An edit works on the decoded values and builds a new interned `PathAttributes` only when
a value really changed; the attributes it did not touch are copied as they are on the wire
(unknown ones included). Its result is cached per (attributes, our AS): attributes are
interned and shared, so a table of routes with a few attribute sets is edited a few times.

A path from a 2-octet AS speaker (`asn4=False`) that gets an AS prepended comes out in
4-octet form: its true path (AS_PATH merged with AS4_PATH, RFC 6793) with the prepend, no
AS4_PATH, AGGREGATOR from AS4_AGGREGATOR when that one counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

from pybgp.policy.conditions import CompiledSets
from pybgp.policy.context import RouteContext
from pybgp.policy.match import ValueMatcher
from pybgp.policy.model import Actions, CommunityAction, LargeCommunityAction, MedAction, Prepend
from pybgp.rib.route import attribute_slices
from pybgp.wire import aspath
from pybgp.wire.attributes import SPECS, encode_attribute
from pybgp.wire.constants import AS_TRANS, AttrType
from pybgp.wire.pathattrs import PathAttributes, intern

Step = Callable[[dict[int, Any], int], None]  # (decoded values, our AS): change in place
NextHopRewrite = Callable[[RouteContext, str], str]
MAX_U32 = 0xFFFFFFFF
_CACHE_LIMIT = 65536
_LISTS = (AttrType.COMMUNITIES, AttrType.LARGE_COMMUNITIES)  # empty: the attribute goes


class AttributeEdit:
    __slots__ = ("_cache", "_steps")

    def __init__(self, steps: list[Step]) -> None:
        self._steps = tuple(steps)
        self._cache: dict[tuple[PathAttributes, int], PathAttributes] = {}

    def apply(self, attributes: PathAttributes, local_asn: int) -> PathAttributes:
        key = (attributes, local_asn)
        found = self._cache.get(key)
        if found is None:
            found = edit(attributes, local_asn, self._steps)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found


def compile_edit(actions: Actions, sets: CompiledSets) -> AttributeEdit | None:
    steps: list[Step] = []
    if actions.local_pref is not None:
        steps.append(_set_value(AttrType.LOCAL_PREF, actions.local_pref))
    if actions.med is not None:
        steps.append(_med(actions.med))
    if actions.communities is not None:
        steps.append(_communities(actions.communities, sets))
    if actions.large_communities is not None:
        steps.append(_large_communities(actions.large_communities, sets))
    if actions.as_path_prepend is not None:
        steps.append(_prepend(actions.as_path_prepend))
    return AttributeEdit(steps) if steps else None


def compile_next_hop(actions: Actions) -> NextHopRewrite | None:
    target = actions.next_hop
    if target is None:
        return None
    if target == "self":
        return lambda ctx, next_hop: ctx.local_address or next_hop
    return lambda ctx, next_hop: target


def _set_value(code: int, value: int) -> Step:
    def step(values: dict[int, Any], _asn: int) -> None:
        values[code] = value

    return step


def _med(action: MedAction) -> Step:
    operation, amount = action.operation, action.value

    def step(values: dict[int, Any], _asn: int) -> None:
        current = values.get(AttrType.MULTI_EXIT_DISC) or 0
        if operation == "set":
            values[AttrType.MULTI_EXIT_DISC] = amount
        elif operation == "add":
            values[AttrType.MULTI_EXIT_DISC] = min(current + amount, MAX_U32)
        else:
            values[AttrType.MULTI_EXIT_DISC] = max(current - amount, 0)

    return step


def _list_step(
    code: int,
    replace: tuple[Any, ...] | None,
    remove: ValueMatcher[Any] | None,
    add: tuple[Any, ...],
) -> Step:
    def step(values: dict[int, Any], _asn: int) -> None:
        current: tuple[Any, ...] = values.get(code, ())
        if replace is not None:
            current = tuple(dict.fromkeys(replace))
        if remove is not None:
            current = tuple(v for v in current if not remove.matches_value(v))
        if add:
            current += tuple(v for v in dict.fromkeys(add) if v not in current)
        values[code] = current

    return step


def _communities(action: CommunityAction, sets: CompiledSets) -> Step:
    remove = sets.community[action.remove] if action.remove is not None else None
    return _list_step(AttrType.COMMUNITIES, action.replace, remove, action.add)


def _large_communities(action: LargeCommunityAction, sets: CompiledSets) -> Step:
    remove = sets.large_community[action.remove] if action.remove is not None else None
    return _list_step(AttrType.LARGE_COMMUNITIES, action.replace, remove, action.add)


def _prepend(action: Prepend) -> Step:
    asn, repeat = action.asn, action.repeat

    def step(values: dict[int, Any], local_asn: int) -> None:
        path: aspath.AsPath = values.get(AttrType.AS_PATH, ())
        number = local_asn if asn == "self" else aspath.first_as(path) if asn == "last-as" else asn
        if isinstance(number, int):
            values[AttrType.AS_PATH] = aspath.prepend(path, number, repeat)

    return step


def edit(attributes: PathAttributes, local_asn: int, steps: tuple[Step, ...]) -> PathAttributes:
    """`attributes` after `steps`; the same object when nothing changed."""
    original = attributes.values
    values = dict(original)
    true_path = attributes.as_path
    values[AttrType.AS_PATH] = true_path  # steps see the true path (RFC 6793)
    for step in steps:
        step(values, local_asn)
    asn4 = attributes.asn4
    if values[AttrType.AS_PATH] == true_path:
        _restore(values, original, AttrType.AS_PATH)
    elif not asn4:
        asn4 = True
        _four_octet(values, original)
    for code in _LISTS:
        if values.get(code) == ():
            del values[code]
    changed = {
        code: values.get(code)
        for code in original.keys() | values.keys()
        if values.get(code) != original.get(code)
    }
    if asn4 != attributes.asn4 and AttrType.AGGREGATOR in values:
        changed[AttrType.AGGREGATOR] = values[AttrType.AGGREGATOR]  # re-encode 4 octets wide
    if not changed:
        return attributes
    return rebuild(attributes, changed, asn4)


def _restore(values: dict[int, Any], original: Mapping[int, Any], code: int) -> None:
    if code in original:
        values[code] = original[code]
    else:
        del values[code]


def _four_octet(values: dict[int, Any], original: Mapping[int, Any]) -> None:
    values.pop(AttrType.AS4_PATH, None)
    four = values.pop(AttrType.AS4_AGGREGATOR, None)
    aggregator = original.get(AttrType.AGGREGATOR)
    if aggregator is not None and aggregator[0] == AS_TRANS and four is not None:
        values[AttrType.AGGREGATOR] = four


def rebuild(
    attributes: PathAttributes, changed: Mapping[int, Any | None], asn4: bool
) -> PathAttributes:
    """The attributes with `changed` encoded in (None: left out), in type code order; the
    others copied from the wire form."""
    width = 4 if asn4 else 2
    pieces = [(c, tlv) for c, tlv in attribute_slices(attributes.raw) if c not in changed]
    for code, value in changed.items():
        if value is not None:
            spec = SPECS[code]
            pieces.append((code, encode_attribute(spec.flags, code, spec.encode(value, width))))
    pieces.sort(key=itemgetter(0))
    return intern(PathAttributes(b"".join(tlv for _, tlv in pieces), asn4))
