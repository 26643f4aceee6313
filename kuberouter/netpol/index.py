"""Label indexes so selecting pods costs about the size of the answer, not of the cluster.

A selector is answered by taking the smallest candidate set its positive terms give
(matchLabels, In, Exists) from a label index, then filtering with
`LabelSelector.matches` (the index only narrows, it never decides). Pods are indexed per
namespace (a namespace of a few pods is simply scanned: its index would cost more than
it saves), and the namespaces holding pods by their own labels, so a namespace selector
too looks at the namespaces it may match, not at all of them. Answers are cached per
(namespace, selector) and per namespace selector: clusters reuse a handful of selectors
across many policies.

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
from collections.abc import Set as AbstractSet

from kuberouter.model import LabelSelector, Namespace, Pod, PolicyPeer
from kuberouter.model.labels import Labels
from kuberouter.model.shared import shared_tuple

_NamedPort = tuple[str, str]  # (port name, protocol)
_SCAN_UP_TO = 32  # pods in a namespace that a selector just scans (no label index)


def named_ports(pod: Pod) -> dict[_NamedPort, tuple[int, ...]]:
    """The named container ports of a pod: (name, protocol) -> numbers."""
    found: dict[_NamedPort, tuple[int, ...]] = {}
    for name, number, protocol in pod.container_ports:
        if name:
            key = (name, protocol)
            found[key] = (*found.get(key, ()), number)
    return found


class _Buckets:
    """Members (pod keys or namespace names) by label key and value."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[str, set[str]]] = {}

    def add(self, member: str, labels: Mapping[str, str]) -> None:
        by_key = self._by_key
        for key, value in labels.items():
            values = by_key.get(key)
            if values is None:
                values = by_key[key] = {}
            members = values.get(value)
            if members is None:
                members = values[value] = set()
            members.add(member)

    def remove(self, member: str, labels: Mapping[str, str]) -> None:
        for key, value in labels.items():
            values = self._by_key[key]
            values[value].discard(member)
            if not values[value]:
                del values[value]
                if not values:
                    del self._by_key[key]

    def candidates(self, selector: LabelSelector) -> set[str] | None:
        """The smallest set its positive terms allow; None when it has none."""
        options: list[set[str]] = []
        for key, value in selector.match_labels.items():
            options.append(self._by_key.get(key, {}).get(value, set()))
        for requirement in selector.match_expressions:
            values = self._by_key.get(requirement.key, {})
            if requirement.operator == "In":
                options.append(set().union(*(values.get(v, set()) for v in requirement.values)))
            elif requirement.operator == "Exists":
                options.append(set().union(*values.values()))
        return min(options, key=len) if options else None


class PodIndex:
    def __init__(self, namespaces: Iterable[Namespace] = (), pods: Iterable[Pod] = ()) -> None:
        self._pods: dict[str, Pod] = {}
        self._by_namespace: dict[str, set[str]] = {}
        # per namespace, once it holds enough pods for an index to beat a scan
        self._pod_labels: dict[str, _Buckets] = {}
        self._named: dict[_NamedPort, dict[str, tuple[int, ...]]] = defaultdict(dict)
        self._namespace_labels: dict[str, Labels] = {ns.name: ns.labels for ns in namespaces}
        self._space_labels = _Buckets()  # the namespaces holding pods, by their labels
        # namespace -> selector -> keys; selector -> namespaces
        self._selected: dict[str, dict[LabelSelector, frozenset[str]]] = defaultdict(dict)
        self._namespaces: dict[LabelSelector, frozenset[str]] = {}
        for pod in pods:
            self.add(pod)

    # -- changes ------------------------------------------------------------------------

    def add(self, pod: Pod) -> None:
        """Index `pod` (replacing an earlier version under the same key)."""
        key, namespace = pod.key, pod.namespace
        if key in self._pods:
            self.remove(key)
        self._pods[key] = pod
        members = self._by_namespace.get(namespace)
        if members is None:  # a namespace with pods appeared
            members = self._by_namespace[namespace] = set()
            self._space_labels.add(namespace, self.namespace_labels(namespace))
            self._namespaces.clear()
        members.add(key)
        buckets = self._pod_labels.get(namespace)
        if buckets is not None:
            buckets.add(key, pod.labels)
        elif len(members) >= _SCAN_UP_TO:
            buckets = self._pod_labels[namespace] = _Buckets()
            for member in members:
                buckets.add(member, self._pods[member].labels)
        for name, numbers in named_ports(pod).items():
            self._named[name][key] = shared_tuple(numbers)
        self._selected.pop(namespace, None)

    def remove(self, key: str) -> None:
        pod = self._pods.pop(key, None)
        if pod is None:
            return
        namespace = pod.namespace
        members = self._by_namespace[namespace]
        members.discard(key)
        buckets = self._pod_labels.get(namespace)
        if buckets is not None:
            buckets.remove(key, pod.labels)
        if not members:
            del self._by_namespace[namespace]
            self._pod_labels.pop(namespace, None)
            self._space_labels.remove(namespace, self.namespace_labels(namespace))
            self._namespaces.clear()
        for name in named_ports(pod):
            self._named[name].pop(key, None)
        self._selected.pop(namespace, None)

    def set_namespace(self, name: str, namespace: Namespace | None) -> None:
        """A Namespace object added, changed or (None) deleted."""
        holds_pods = name in self._by_namespace
        if holds_pods:
            self._space_labels.remove(name, self.namespace_labels(name))
        if namespace is None:
            self._namespace_labels.pop(name, None)
        else:
            self._namespace_labels[name] = namespace.labels
        if holds_pods:
            self._space_labels.add(name, self.namespace_labels(name))
        self._namespaces.clear()

    def forget_answers(self) -> None:
        """Drop the cached selections (memory; they are made again when asked)."""
        self._selected.clear()
        self._namespaces.clear()

    # -- reads --------------------------------------------------------------------------

    def pod(self, key: str) -> Pod:
        return self._pods[key]

    def get(self, key: str) -> Pod | None:
        return self._pods.get(key)

    def namespace_labels(self, name: str) -> Mapping[str, str]:
        found = self._namespace_labels.get(name)
        return found if found is not None else Namespace.implicit(name).labels

    def pods_in(self, namespace: str) -> AbstractSet[str]:
        """Keys of the indexed pods of `namespace` (a live view: do not keep it)."""
        return self._by_namespace.get(namespace, frozenset())

    def select(self, namespace: str, selector: LabelSelector) -> frozenset[str]:
        """Keys of the indexed pods of `namespace` that `selector` matches."""
        cache = self._selected[namespace]
        found = cache.get(selector)
        if found is None:
            labels = self._pod_labels.get(namespace)
            candidates = labels.candidates(selector) if labels is not None else None
            if candidates is None:
                candidates = self._by_namespace.get(namespace, set())
            found = frozenset(key for key in candidates if selector.matches(self._pods[key].labels))
            cache[selector] = found
        return found

    def select_namespaces(self, selector: LabelSelector) -> frozenset[str]:
        """The namespaces holding indexed pods whose labels `selector` matches."""
        found = self._namespaces.get(selector)
        if found is None:
            candidates = self._space_labels.candidates(selector)
            found = frozenset(
                name
                for name in (self._by_namespace if candidates is None else candidates)
                if selector.matches(self.namespace_labels(name))
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
