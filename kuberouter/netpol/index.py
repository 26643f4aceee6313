"""Label indexes so selecting pods costs about the size of the answer, not of the cluster.

A selector is answered by taking the smallest candidate set its positive terms give
(matchLabels, In, Exists) from a per-namespace label index, then filtering with
`LabelSelector.matches` (the index only narrows, it never decides). Answers are cached
per (namespace, selector): clusters reuse a handful of selectors across many policies.

The index can change in place (`add`, `remove`, `set_namespace`) for the incremental
compiler: a pod change drops only the cached answers of its own namespace, a namespace
change only the namespace-selector answers.

Namespaces: a namespace with no object of its own (the pod came first, or the object was
deleted) carries only the automatic name label, as in `Cluster`. Only namespaces that
hold indexed pods are ever answered: an empty namespace contributes no pods anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from kuberouter.model import LabelSelector, Namespace, Pod, PolicyPeer
from kuberouter.model.labels import Labels

_Bucket = dict[str, set[str]]  # label value -> pod keys
_NamedPort = tuple[str, str]  # (port name, protocol)


def named_ports(pod: Pod) -> dict[_NamedPort, tuple[int, ...]]:
    """The named container ports of a pod: (name, protocol) -> numbers."""
    found: dict[_NamedPort, tuple[int, ...]] = {}
    for declared in pod.container_ports:
        if declared.name:
            key = (declared.name, declared.protocol)
            found[key] = (*found.get(key, ()), declared.port)
    return found


class PodIndex:
    def __init__(self, namespaces: Iterable[Namespace] = (), pods: Iterable[Pod] = ()) -> None:
        self._pods: dict[str, Pod] = {}
        self._by_namespace: dict[str, set[str]] = defaultdict(set)
        self._labels: dict[tuple[str, str], _Bucket] = defaultdict(lambda: defaultdict(set))
        self._named: dict[_NamedPort, dict[str, tuple[int, ...]]] = defaultdict(dict)
        self._namespace_labels: dict[str, Labels] = {ns.name: ns.labels for ns in namespaces}
        # namespace -> selector -> keys; selector -> namespaces
        self._selected: dict[str, dict[LabelSelector, frozenset[str]]] = defaultdict(dict)
        self._namespaces: dict[LabelSelector, frozenset[str]] = {}
        for pod in pods:
            self.add(pod)

    # -- changes ------------------------------------------------------------------------

    def add(self, pod: Pod) -> None:
        """Index `pod` (replacing an earlier version under the same key)."""
        if pod.key in self._pods:
            self.remove(pod.key)
        self._pods[pod.key] = pod
        if not self._by_namespace[pod.namespace]:
            self._namespaces.clear()  # a namespace with pods appeared
        self._by_namespace[pod.namespace].add(pod.key)
        for key, value in pod.labels.items():
            self._labels[(pod.namespace, key)][value].add(pod.key)
        for name, numbers in named_ports(pod).items():
            self._named[name][pod.key] = numbers
        self._selected.pop(pod.namespace, None)

    def remove(self, key: str) -> None:
        pod = self._pods.pop(key, None)
        if pod is None:
            return
        members = self._by_namespace[pod.namespace]
        members.discard(key)
        if not members:
            del self._by_namespace[pod.namespace]
            self._namespaces.clear()
        for label, value in pod.labels.items():
            bucket = self._labels[(pod.namespace, label)]
            bucket[value].discard(key)
            if not bucket[value]:
                del bucket[value]
        for name in named_ports(pod):
            self._named[name].pop(key, None)
        self._selected.pop(pod.namespace, None)

    def set_namespace(self, name: str, namespace: Namespace | None) -> None:
        """A Namespace object added, changed or (None) deleted."""
        if namespace is None:
            self._namespace_labels.pop(name, None)
        else:
            self._namespace_labels[name] = namespace.labels
        self._namespaces.clear()

    # -- reads --------------------------------------------------------------------------

    def pod(self, key: str) -> Pod:
        return self._pods[key]

    def get(self, key: str) -> Pod | None:
        return self._pods.get(key)

    def namespace_labels(self, name: str) -> Mapping[str, str]:
        found = self._namespace_labels.get(name)
        return found if found is not None else Namespace.implicit(name).labels

    def select(self, namespace: str, selector: LabelSelector) -> frozenset[str]:
        """Keys of the indexed pods of `namespace` that `selector` matches."""
        cache = self._selected[namespace]
        found = cache.get(selector)
        if found is None:
            candidates = self._candidates(namespace, selector)
            found = frozenset(key for key in candidates if selector.matches(self._pods[key].labels))
            cache[selector] = found
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

    def select_namespaces(self, selector: LabelSelector) -> frozenset[str]:
        """The namespaces holding indexed pods whose labels `selector` matches."""
        found = self._namespaces.get(selector)
        if found is None:
            found = frozenset(
                name for name in self._by_namespace if selector.matches(self.namespace_labels(name))
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
        declared = self._named.get((name, protocol), {})
        return [
            (self._pods[key], number) for key, numbers in declared.items() for number in numbers
        ]
