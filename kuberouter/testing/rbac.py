"""RBAC rule matching, as the API server's authorizer does it, to check a ClusterRole against
the requests an audit log recorded (see audit.py): which requests it would refuse, and which
of its grants no request needed.

A rule (rbac.authorization.k8s.io/v1 PolicyRule) allows a resource request when its verbs,
apiGroups and resources all name the request's ("*" for any; a subresource is written
"pods/status"), and, when it lists resourceNames, the request names one of them. A
non-resource URL (discovery, /version) is allowed by a rule whose nonResourceURLs holds the
path or a prefix ending in "*". Every authenticated user has the cluster's default
discovery roles (system:discovery, system:public-info-viewer): DISCOVERY.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

Rule = dict[str, Any]
Record = dict[str, Any]
Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

DISCOVERY: tuple[Rule, ...] = (
    {"verbs": ["get"], "nonResourceURLs": [
        "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
        "/readyz", "/version", "/version/",
    ]},
)  # fmt: skip
NAMELESS_VERBS = ("create", "list", "watch", "deletecollection")  # resourceNames cannot limit


def _names(values: Iterable[str] | None, wanted: str) -> bool:
    listed = list(values or ())
    return "*" in listed or wanted in listed


def _resource(record: Record) -> str:
    ref = record["objectRef"]
    return f"{ref['resource']}/{ref['subresource']}" if ref.get("subresource") else ref["resource"]


def _path_matches(patterns: Iterable[str] | None, path: str) -> bool:
    return any(
        path == pattern or (pattern.endswith("*") and path.startswith(pattern[:-1]))
        for pattern in patterns or ()
    )


def rule_allows(rule: Rule, record: Record) -> bool:
    if not _names(rule.get("verbs"), record["verb"]):
        return False
    ref = record.get("objectRef")
    if ref is None:
        return _path_matches(rule.get("nonResourceURLs"), urlsplit(record["requestURI"]).path)
    if not (_names(rule.get("apiGroups"), ref.get("apiGroup", ""))
            and _names(rule.get("resources"), _resource(record))):  # fmt: skip
        return False
    limited = rule.get("resourceNames")
    if not limited:
        return True
    return record["verb"] not in NAMELESS_VERBS and ref.get("name") in limited


def refused(rules: Sequence[Rule], records: Iterable[Record]) -> list[Record]:
    """The records no rule (nor the default discovery roles) allows."""
    every = [*rules, *DISCOVERY]
    return [record for record in records if not any(rule_allows(r, record) for r in every)]


def grants(rules: Iterable[Rule]) -> set[Grant]:
    """(apiGroup, resource, verb) for each combination the resource rules spell out."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups") or ()
        for resource in rule.get("resources") or ()
        for verb in rule.get("verbs") or ()
    }


def used(records: Iterable[Record]) -> set[Grant]:
    return {
        (record["objectRef"].get("apiGroup", ""), _resource(record), record["verb"])
        for record in records
        if record.get("objectRef")
    }
