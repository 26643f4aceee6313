"""labelSelector and fieldSelector, parsed as the API server parses them.

A parse error is a 400 BadRequest, as on the real server, so a client bug in building
selectors shows up in tests instead of silently matching everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kuberouter.testing.errors import bad_request
from kuberouter.testing.resources import Resource

Predicate = Callable[[dict[str, Any]], bool]

_KEY = r"(?:[A-Za-z0-9.-]+/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_CMP_RE = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|!=|=|>|<)\s*(?P<value>{_VALUE})$")
_EXISTS_RE = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "!":
            return value is None
        if self.op in ("=", "in"):
            return value in self.values
        if self.op in ("!=", "notin"):
            return value not in self.values  # an absent label matches, as upstream
        return _compare(value, self.op, self.values[0])


def _compare(value: str | None, op: str, bound: str) -> bool:
    try:
        number, limit = int(value or ""), int(bound)
    except ValueError:
        return False
    return number > limit if op == ">" else number < limit


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b` is two requirements."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _parse_requirement(text: str) -> Requirement:
    if match := _SET_RE.match(text):
        values = tuple(v.strip() for v in match["values"].split(","))
        if not all(_VALUE_RE.match(v) for v in values):
            raise bad_request(f"unable to parse requirement: invalid values in {text!r}")
        return Requirement(match["key"], match["op"], values)
    if match := _CMP_RE.match(text):
        op = "=" if match["op"] == "==" else match["op"]
        if op in (">", "<") and not match["value"].lstrip("-").isdigit():
            raise bad_request(
                f"unable to parse requirement: {text!r}: for 'gt', 'lt' operators,"
                " the value must be an integer"
            )
        return Requirement(match["key"], op, (match["value"],))
    if match := _EXISTS_RE.match(text):
        return Requirement(match["key"], "!" if match["neg"] else "exists")
    raise bad_request(f"unable to parse requirement: {text!r}")


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    if not text.strip():
        return ()
    return tuple(_parse_requirement(part) for part in _split_top_level(text))


def label_predicate(text: str) -> Predicate:
    requirements = parse_label_selector(text)

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches


def field_value(obj: dict[str, Any], path: str) -> str:
    """A field as the API server renders it for selection: booleans as true/false, absent as ""."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_predicate(resource: Resource, text: str) -> Predicate:
    allowed = ("metadata.name", "metadata.namespace", *resource.selectable_fields)
    terms: list[tuple[str, bool, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if match is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in allowed:
            raise bad_request(
                f'"{field}" is not a known field selector: only "{", ".join(allowed)}"'
            )
        terms.append((field, op != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, f) == v) == equal for f, equal, v in terms)

    return matches


def object_predicate(
    resource: Resource, namespace: str | None, label_selector: str, field_selector: str
) -> Predicate:
    """One test for list and watch: in the namespace (None = all) and matching both selectors."""
    labels = label_predicate(label_selector)
    fields = field_predicate(resource, field_selector)

    def matches(obj: dict[str, Any]) -> bool:
        in_namespace = namespace is None or obj["metadata"].get("namespace") == namespace
        return in_namespace and labels(obj) and fields(obj)

    return matches
