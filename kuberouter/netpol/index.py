"""Label indexes so selecting pods costs about the size of the answer, not of the cluster.

A selector is answered by taking the smallest candidate set its positive terms give
(matchLabels, In, Exists) from a per-namespace label index, then filtering with
`LabelSelector.matches` (the index only narrows, it never decides). Answers are cached
per (namespace, selector): clusters reuse a handful of selectors across many policies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from kuberouter.model import LabelSelector, Pod, PolicyPeer
from kuberouter.netpol.cluster import Cluster

_Bucket = dict[str, set[str]]  # label value -> pod keys


class PodIndex:
    def __init__(self, cluster: Cluster, pods: Iterable[Pod]) -> None:
        self._cluster = cluster
        self._pods: dict[str, Pod] = {}
        self._by_namespace: dict[str, set[str]] = defaultdict(set)
        self._labels: dict[tuple[str, str], _Bucket] = defaultdict(lambda: defaultdict(set))
        self._named: dict[tuple[str, str], list[tuple[Pod, int]]] | None = None
        self._selected: dict[tuple[str, LabelSelector], frozenset[str]] = {}
        self._namespaces: dict[LabelSelector, tuple[str, ...]] = {}
        for pod in pods:
            self._add(pod)

    def _add(self, pod: Pod) -> None:
        self._pods[pod.key] = pod
        self._by_namespace[pod.namespace].add(pod.key)
        for key, value in pod.labels.items():
            self._labels[(pod.namespace, key)][value].add(pod.key)

    def pod(self, key: str) -> Pod:
        return self._pods[key]

    def select(self, namespace: str, selector: LabelSelector) -> frozenset[str]:
        """Keys of the indexed pods of `namespace` that `selector` matches."""
        cache_key = (namespace, selector)
        found = self._selected.get(cache_key)
        if found is None:
            candidates = self._candidates(namespace, selector)
            found = frozenset(key for key in candidates if selector.matches(self._pods[key].labels))
            self._selected[cache_key] = found
        return found

    def _candidates(self, namespace: str, selector: LabelSelector) -> set[str]:
        options: list[set[str]] = []
        for key, value in selector.match_labels.items():
            options.append(self._labels.get((namespace, key), {}).get(value, set()))
        for requirement in selector.match_expressions:
            bucket = self._labels.get((namespace, requirement.key), {})
            if requirement.operator == "In":
                options.append(set().union(*(bucket.get(v, set()) for v in requirement.values)))
            elif requirement.operator == "Exists":
                options.append(set().union(*bucket.values()))
        if not options:
            return self._by_namespace.get(namespace, set())
        return min(options, key=len)

    def select_namespaces(self, selector: LabelSelector) -> tuple[str, ...]:
        found = self._namespaces.get(selector)
        if found is None:
            found = tuple(
                name
                for name, namespace in self._cluster.namespaces.items()
                if selector.matches(namespace.labels)
            )
            self._namespaces[selector] = found
        return found

    def peer_pods(self, policy_namespace: str, peer: PolicyPeer) -> set[str]:
        """Pods a pod/namespace-selector peer of a policy in `policy_namespace` selects."""
        pods = peer.pod_selector or LabelSelector.everything()
        if peer.namespace_selector is None:
            return set(self.select(policy_namespace, pods))
        chosen: set[str] = set()
        for namespace in self.select_namespaces(peer.namespace_selector):
            chosen.update(self.select(namespace, pods))
        return chosen

    def named_port(self, name: str, protocol: str) -> list[tuple[Pod, int]]:
        """(pod, number) for every indexed pod that declares port `name`/`protocol`."""
        if self._named is None:
            self._named = defaultdict(list)
            for pod in self._pods.values():
                for declared in pod.container_ports:
                    if declared.name:
                        self._named[(declared.name, declared.protocol)].append((pod, declared.port))
        return self._named.get((name, protocol), [])
