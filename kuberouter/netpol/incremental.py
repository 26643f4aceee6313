"""Incremental compile: one node's firewall kept up to date one object change at a time.

`compile_node` stays the reference (a pure function of a snapshot); this builds the same
DesiredState from the same pieces (policy_chain, pod_chain, top_chains), kept per object,
and on a change redoes only what depends on it, so its cost follows what changed, not
the size of the cluster:

- a policy active on this node (one selecting a local pod) is a `units.Unit`: compiled
  from the label index when the policy changes, reshaped (chains and target set) when
  its local targets change;
- a pod change moves that one pod in or out of the peer sets of the active policies
  whose peers match its old or new version, and of the shared named-port sets; a
  namespace change does the same for the pods of that namespace and the rules whose
  namespace selectors it starts or stops matching: only the changed sets get new
  versions (`members.Members`, cheap to make and to diff);
- a local pod's chains depend on the pod and on which policies isolate it;
- the top chains depend on every local pod's chains (one rule per local address: cheap).

Target changes are only recorded until `state()`, so a burst costs one reshape per
policy. Unchanged objects are reused as they are, which keeps the back end's diff cheap.
The result equals `compile_node` of the same objects (a property test checks it), which
is why the controller keeps one compiler for its whole life (it starts over from a
snapshot only after a failed sync).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kuberouter.model import Namespace, NetworkPolicy, Pod
from kuberouter.netpol import names
from kuberouter.netpol.cluster import actionable
from kuberouter.netpol.compiler import DIRECTIONS, family_cidrs
from kuberouter.netpol.index import PodIndex
from kuberouter.netpol.pod_chains import common_chain, default_deny_chains, pod_chain, top_chains
from kuberouter.netpol.ruleset import FAMILIES, Chain, DesiredState, Family, IPSet, Ruleset
from kuberouter.netpol.units import NamedSets, Unit


class IncrementalCompiler:
    """This node's compiled firewall, updated by `set_pod`/`set_namespace`/`set_policy`/
    `set_node_ips` and read with `state()`."""

    def __init__(
        self,
        node: str,
        node_ips: Iterable[str] | None = None,
        families: Sequence[Family] = FAMILIES,
        default_deny: Sequence[str] = (),
    ) -> None:
        """`node_ips` None: this node's addresses from `set_node_ips` and its pods, as
        `compile_node` takes them from the snapshot. `default_deny`: as compile_node's."""
        self.node, self.families = node, tuple(families)
        self._deny_cidrs = tuple(default_deny)
        self._fixed_ips = None if node_ips is None else frozenset(node_ips)
        self._node_object_ips: tuple[str, ...] = ()
        self._index = PodIndex()
        self._node_pods: dict[str, Pod] = {}  # every pod on this node (node addresses)
        self._local: dict[str, set[str]] = {}  # namespace -> this node's actionable pods
        self._policies: dict[str, NetworkPolicy] = {}
        self._policies_by_namespace: dict[str, set[str]] = {}
        self._units: dict[str, Unit] = {}
        self._named = NamedSets()
        self._isolating: dict[str, set[str]] = {}  # local pod -> policies selecting it
        self._pod_chains: dict[str, dict[int, tuple[Chain, ...]]] = {}
        self._top: dict[int, list[Chain]] = {}
        self._deny: dict[int, list[Chain]] = {}
        self._common = {family: common_chain(family) for family in self.families}
        self._dirty_policies: set[str] = set()  # compile again from the index
        self._dirty_targets: set[str] = set()  # local targets may have changed
        self._dirty_units: set[str] = set()  # peer sets' members changed
        self._dirty_pods: set[str] = set()  # local pods whose chains to redo
        self._state: DesiredState | None = None
        self.recomputed = 0  # units compiled from the index (tests and the bench look)

    # -- changes ------------------------------------------------------------------------

    def set_node_ips(self, ips: Iterable[str]) -> None:
        """This node's own addresses (its Node object's InternalIPs)."""
        self._node_object_ips = tuple(ips)
        self._state = None

    def set_default_deny(self, cidrs: Sequence[str]) -> None:
        """This node's pod CIDRs for --netpol-default-deny (empty: off)."""
        if tuple(cidrs) != self._deny_cidrs:
            self._deny_cidrs = tuple(cidrs)
            self._top = {}  # rebuilt by the next state()
            self._state = None

    def set_pod(self, key: str, pod: Pod | None) -> None:
        """A pod added, changed or (None) deleted."""
        if pod is not None and pod.node_name == self.node:
            self._node_pods[key] = pod
            self._state = None  # this node's addresses may change
        elif self._node_pods.pop(key, None) is not None:
            self._state = None
        old = self._index.get(key)
        new = pod if pod is not None and actionable(pod) else None
        if old is None and new is None:
            return
        self._index.remove(key)
        namespace = key.partition("/")[0]
        local = self._local.get(namespace)
        if local is not None:
            local.discard(key)
            if not local:
                del self._local[namespace]
        if new is not None:
            self._index.add(new)
            if new.node_name == self.node:
                self._local.setdefault(namespace, set()).add(key)
        labels = self._index.namespace_labels(namespace)
        for policy_key, unit in self._units.items():
            if unit.update_peers(key, old, new, labels):
                self._dirty_units.add(policy_key)
        self._named.update(old, new)
        for version in (old, new):
            if version is not None and version.node_name == self.node:
                self._touch_local(version)

    def _touch_local(self, pod: Pod) -> None:
        """Mark what depends on this version of a local pod."""
        self._dirty_pods.add(pod.key)
        for policy_key in self._policies_by_namespace.get(pod.namespace, ()):
            if self._policies[policy_key].pod_selector.matches(pod.labels):
                self._dirty_targets.add(policy_key)

    def set_namespace(self, name: str, namespace: Namespace | None) -> None:
        """A Namespace object added, changed or (None) deleted."""
        old = self._index.namespace_labels(name)
        self._index.set_namespace(name, namespace)
        new = self._index.namespace_labels(name)
        if old == new:
            return
        pods = [self._index.pod(key) for key in self._index.pods_in(name)]
        for policy_key, unit in self._units.items():
            for peers in unit.peers.values():
                if any(spaces.matches(old) != spaces.matches(new) for spaces in peers.by_namespace):
                    for pod in pods:
                        if peers.update(pod.key, pod, pod, new):
                            self._dirty_units.add(policy_key)

    def set_policy(self, key: str, policy: NetworkPolicy | None) -> None:
        """A NetworkPolicy added, changed or (None) deleted."""
        old = self._policies.pop(key, None)
        if old is not None:
            self._policies_by_namespace[old.namespace].discard(key)
        if policy is not None:
            self._policies[key] = policy
            self._policies_by_namespace.setdefault(policy.namespace, set()).add(key)
        self._dirty_policies.add(key)
        self._state = None

    # -- the result ---------------------------------------------------------------------

    def state(self) -> DesiredState:
        """The DesiredState `compile_node` would give for the objects set so far (the same
        object as last time when the changes since left it as it was)."""
        if self._flush() or self._state is None:
            rulesets: dict[int, Ruleset] = {
                family: self._ruleset(family) for family in self.families
            }
            self._state = DesiredState(node=self.node, rulesets=rulesets)
        return self._state

    def _flush(self) -> bool:
        """Redo what the changes since the last flush touched; whether anything was."""
        policies, self._dirty_policies = self._dirty_policies, set()
        targets, self._dirty_targets = self._dirty_targets - policies, set()
        for key in policies:
            self._place(key, rebuild=True)
        for key in targets:
            self._place(key, rebuild=False)
        units, self._dirty_units = self._dirty_units, set()
        for key in units - policies:
            if key in self._units:
                self._units[key].refresh()
        used = {shared for unit in self._units.values() for shared in _named(unit)}
        named = self._named.refresh(used)
        pods, self._dirty_pods = self._dirty_pods, set()
        for key in pods:
            self._rebuild_pod(key)
        top = pods or not self._top
        if top:
            self._top = {family: self._top_chains(family) for family in self.families}
            self._deny = {family: self._deny_chains(family) for family in self.families}
        self._index.forget_answers()  # single changes select little: keep memory instead
        return bool(policies or targets or units or named or top)

    def _place(self, key: str, *, rebuild: bool) -> None:
        """Make the unit of policy `key` match its local targets now; `rebuild`: compile
        it from the index (the policy changed) even if it exists."""
        old = self._units.get(key)
        before = old.targets if old is not None else frozenset()
        old_policy = old.policy if old is not None else None
        policy = self._policies.get(key)
        keys: frozenset[str] = frozenset()
        if policy is not None and any(policy.affects(d) for d in DIRECTIONS):
            keys = frozenset(
                pod_key
                for pod_key in self._local.get(policy.namespace, ())
                if policy.pod_selector.matches(self._index.pod(pod_key).labels)
            )
        unit = old if old is not None and not rebuild else None
        if keys and policy is not None:
            if unit is None:
                unit = Unit(policy, self.families, self._index)
                self.recomputed += 1
            targets = [self._index.pod(pod_key) for pod_key in sorted(keys)]
            unit.reshape(targets, self._named, self._index)
            self._units[key] = unit
        else:
            unit = None
            self._units.pop(key, None)
        after = unit.targets if unit is not None else frozenset()
        for pod_key in before - after:
            self._isolating.get(pod_key, set()).discard(key)
        for pod_key in after - before:
            self._isolating.setdefault(pod_key, set()).add(key)
        if old is None or unit is None or before != after or old_policy != unit.policy:
            self._dirty_pods.update(before | after)

    def _rebuild_pod(self, key: str) -> None:
        pod = self._index.get(key)
        if pod is None or pod.node_name != self.node:
            self._pod_chains.pop(key, None)
            self._isolating.pop(key, None)
            return
        policies = sorted(
            (self._policies[policy_key] for policy_key in self._isolating.get(key, ())),
            key=lambda policy: policy.key,
        )
        chains: dict[int, tuple[Chain, ...]] = {}
        for family in self.families:
            if not pod.ips_of_family(family):
                continue
            chains[family] = tuple(
                pod_chain(pod, direction, family, isolating)
                for direction in DIRECTIONS
                if (isolating := [policy for policy in policies if policy.affects(direction)])
            )
        self._pod_chains[key] = chains

    def _top_chains(self, family: Family) -> list[Chain]:
        triples = [
            (pod, ip, chain)
            for pod in (self._index.pod(key) for key in sorted(self._pod_chains))
            for chain in self._pod_chains[pod.key].get(family, ())
            for ip in pod.ips_of_family(family)
        ]
        return top_chains(triples, family_cidrs(self._deny_cidrs, family))

    def _deny_chains(self, family: Family) -> list[Chain]:
        if not family_cidrs(self._deny_cidrs, family):
            return []
        local = sorted(key for keys in self._local.values() for key in keys)
        return default_deny_chains(family, [self._index.pod(key) for key in local])

    def _ruleset(self, family: Family) -> Ruleset:
        chains = [self._common[family], *self._deny[family]]
        sets: dict[str, IPSet] = {}
        for key in sorted(self._units):
            unit = self._units[key]
            chains += unit.chains.get(family, ())
            sets.update(unit.sets.get(family, {}))
            for shared in unit.named.get(family, ()):
                sets[names.named_port_set(*shared)] = self._named.get(*shared, self._index)
        for key in sorted(self._pod_chains):
            chains += self._pod_chains[key].get(family, ())
        chains += self._top[family]
        return Ruleset(
            node=self.node,
            family=family,
            local_addresses=frozenset(
                ip for ip in self._addresses() if (":" in ip) == (family == 6)
            ),
            sets=dict(sorted(sets.items())),
            chains={chain.name: chain for chain in chains},
        )

    def _addresses(self) -> frozenset[str]:
        """As `Cluster`: the Node's addresses, its pods' hostIPs and host-network pod IPs."""
        if self._fixed_ips is not None:
            return self._fixed_ips
        found = set(self._node_object_ips)
        for pod in self._node_pods.values():
            found.update(pod.host_ips)
            if pod.host_network:
                found.update(pod.ips)
        return frozenset(found)


def _named(unit: Unit) -> Iterable[tuple[str, str, Family]]:
    return (shared for family_shared in unit.named.values() for shared in family_shared)
