"""Build a Cluster from already-parsed Kubernetes documents (model/documents.py reads
them: invalid objects are collected, `kind: List` flattened, later objects replace
earlier ones). Kinds the firewall does not use are counted as ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from kuberouter.model import InvalidObject
from kuberouter.model.documents import parse_documents
from kuberouter.netpol.cluster import Cluster

_USED = {"Namespace", "Pod", "NetworkPolicy"}


@attrs.frozen(kw_only=True)
class Loaded:
    cluster: Cluster
    problems: tuple[InvalidObject, ...] = ()
    ignored: Mapping[str, int] = attrs.field(factory=dict)  # kind -> objects skipped


def load_objects(documents: Iterable[Any]) -> Loaded:
    parsed = parse_documents(documents)
    ignored = Counter(parsed.ignored)
    for kind, _ in parsed.objects:
        if kind not in _USED:
            ignored[kind] += 1  # a kind the model knows but the firewall does not use
    cluster = Cluster.build(
        namespaces=parsed.of_kind("Namespace").values(),
        pods=parsed.of_kind("Pod").values(),
        policies=parsed.of_kind("NetworkPolicy").values(),
    )
    return Loaded(cluster=cluster, problems=parsed.problems, ignored=dict(ignored))
