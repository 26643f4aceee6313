"""Build a Cluster from already-parsed Kubernetes documents (YAML/JSON decoding is the
caller's job). Invalid objects are collected, not raised, so one bad object costs only
itself; kinds the firewall does not use are counted and skipped; `kind: List` is
flattened; a later object with the same kind and name replaces an earlier one, as
`kubectl apply` would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from kuberouter.model import KINDS, InvalidObject, Namespace, NetworkPolicy, Pod
from kuberouter.netpol.cluster import Cluster

_Object = Namespace | Pod | NetworkPolicy


@attrs.frozen(kw_only=True)
class Loaded:
    cluster: Cluster
    problems: tuple[InvalidObject, ...] = ()
    ignored: Mapping[str, int] = attrs.field(factory=dict)  # kind -> objects skipped


def load_objects(documents: Iterable[Any]) -> Loaded:
    found: dict[tuple[str, str], _Object] = {}
    problems: list[InvalidObject] = []
    ignored: Counter[str] = Counter()
    for where, document in _flatten(documents):
        if not isinstance(document, Mapping):
            problems.append(InvalidObject("document", where, "not a Kubernetes object"))
            continue
        kind = document.get("kind")
        parser = KINDS.get(kind) if isinstance(kind, str) else None
        if parser is None:
            ignored[str(kind)] += 1
            continue
        try:
            value = parser(document)
        except InvalidObject as problem:
            problems.append(problem)
            continue
        if isinstance(value, Namespace | Pod | NetworkPolicy):
            found[(str(kind), _identity(value))] = value
        else:
            ignored[str(kind)] += 1  # a kind the model knows but the firewall does not use
    values = list(found.values())
    cluster = Cluster.build(
        namespaces=[value for value in values if isinstance(value, Namespace)],
        pods=[value for value in values if isinstance(value, Pod)],
        policies=[value for value in values if isinstance(value, NetworkPolicy)],
    )
    return Loaded(cluster=cluster, problems=tuple(problems), ignored=dict(ignored))


def _identity(value: _Object) -> str:
    return value.name if isinstance(value, Namespace) else value.key


def _flatten(documents: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """(position, object) for each document, descending into `kind: List` items."""
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue  # an empty YAML document ("---" twice)
        if isinstance(document, Mapping) and _is_list(document.get("kind")):
            items = document.get("items") or []
            if not isinstance(items, list):
                yield f"#{number}", items
                continue
            for position, item in enumerate(items):
                yield f"#{number}.items[{position}]", item
        else:
            yield f"#{number}", document


def _is_list(kind: object) -> bool:
    # `kubectl get -o yaml` writes kind: List; API list responses say PodList etc.
    return isinstance(kind, str) and kind.endswith("List")
