"""Already-parsed Kubernetes documents (YAML/JSON) -> model values, as the offline tools
(`policy simulate`, `service trace`) read them.

Invalid objects are collected, not raised, so one bad object costs only itself; kinds the
model does not know are counted and skipped; `kind: List` is flattened; a later object
with the same kind and name replaces an earlier one, as `kubectl apply` would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from kuberouter.model import KINDS, InvalidObject


@attrs.frozen(kw_only=True)
class Parsed:
    objects: Mapping[tuple[str, str], object]  # (kind, namespace/name or name) -> value
    problems: tuple[InvalidObject, ...] = ()
    ignored: Mapping[str, int] = attrs.field(factory=dict)  # kind -> objects skipped

    def of_kind(self, kind: str) -> dict[str, Any]:
        return {key: value for (each, key), value in self.objects.items() if each == kind}


def parse_documents(documents: Iterable[Any]) -> Parsed:
    found: dict[tuple[str, str], object] = {}
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
        key = getattr(value, "key", None) or getattr(value, "name", "")
        found[(str(kind), str(key))] = value
    return Parsed(objects=found, problems=tuple(problems), ignored=dict(ignored))


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
