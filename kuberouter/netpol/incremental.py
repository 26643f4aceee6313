"""Incremental compile: one node's firewall kept up to date one object change at a time.

`compile_node` stays the reference (a pure function of a snapshot); this builds the same
DesiredState from the same pieces (policy_chain, pod_chain, top_chains), kept per object,
and on a change recomputes only what depends on it:

- a policy's unit (its chains and own sets, per family) depends on the policy, the local
  pods it selects, the pods its peers select anywhere in the cluster, and the labels of
  the namespaces its namespace-selector peers look at;
- a shared named-port set depends on the pods declaring that port name;
- a local pod's chains depend on the pod and on which policies isolate it;
- the top chains depend on every local pod's chains (one rule per local address: cheap).

A pod change is matched against the targets of the policies of its namespace (if the
pod is local) and against the peers of the policies active on this node (those selecting
a local pod; a policy selecting none compiles to nothing); a namespace change against
their namespace selectors. Changes are only recorded until `state()`, so a burst costs
one recompute per object. Unchanged objects are reused as they are, which keeps the back
end's diff cheap. The result equals `compile_node` of the same objects (a property test
checks it); the controller's periodic reconcile starts over from a snapshot anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from kuberouter.model import LabelSelector, Namespace, NetworkPolicy, Pod
from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol import names
from kuberouter.netpol.cluster import actionable
from kuberouter.netpol.compiler import DIRECTIONS, family_cidrs
from kuberouter.netpol.index import PodIndex, named_ports
from kuberouter.netpol.pod_chains import (
    common_chain,
    default_deny_chains,
    pod_chain,
    top_chains,
)
from kuberouter.netpol.policy_chains import named_port_ipset, named_ports_used, policy_chain
from kuberouter.netpol.ruleset import FAMILIES, Chain, DesiredState, Family, IPSet, Ruleset

# A selecting peer: (namespace selector, or None for the policy's own namespace; pods)
_Peer = tuple[LabelSelector | None, LabelSelector]


@attrs.frozen(kw_only=True)
class _Unit:
    """What one policy active on this node compiles to."""

    policy: NetworkPolicy
    targets: frozenset[str]  # local pod keys it selects
    chains: Mapping[int, tuple[Chain, ...]]  # family -> its chains, ingress first
    sets: Mapping[int, Mapping[str, IPSet]]  # family -> its own sets
    named: Mapping[int, tuple[str, ...]]  # family -> shared named-port sets it uses
    peers: tuple[_Peer, ...]  # what its peer sets depend on


def _peers(policy: NetworkPolicy) -> tuple[_Peer, ...]:
    found = {
        (peer.namespace_selector, peer.pod_selector or LabelSelector.everything())
        for direction in DIRECTIONS
        for rule in policy.rules(direction)
        for peer in rule.peers
        if peer.ip_block is None
    }
    return tuple(found)


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
        self._local: set[str] = set()  # this node's policy-actionable pods
        self._policies: dict[str, NetworkPolicy] = {}
        self._policies_by_namespace: dict[str, set[str]] = {}
        self._units: dict[str, _Unit] = {}
        self._isolating: dict[str, set[str]] = {}  # local pod -> policies selecting it
        self._named: dict[str, IPSet] = {}  # shared named-port sets by name
        self._pod_chains: dict[str, Mapping[int, tuple[Chain, ...]]] = {}
        self._top: dict[int, list[Chain]] = {}
        self._deny: dict[int, list[Chain]] = {}
        self._common = {family: common_chain(family) for family in self.families}
        self._dirty_policies: set[str] = set()
        self._dirty_pods: set[str] = set()
        self._dirty_named: set[tuple[str, str]] = set()
        self._state: DesiredState | None = None
        self.recomputed = 0  # policy units rebuilt (tests and the bench look)

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
        old = self._index.get(key)
        new = pod if pod is not None and actionable(pod) else None
        for version in (old, new):
            if version is not None:
                self._touch_pod(version)
        if pod is not None and pod.node_name == self.node:
            self._node_pods[key] = pod
        else:
            self._node_pods.pop(key, None)
        self._index.remove(key)
        self._local.discard(key)
        if new is not None:
            self._index.add(new)
            if new.node_name == self.node:
                self._local.add(key)
        self._state = None

    def _touch_pod(self, pod: Pod) -> None:
        """Mark what depends on this version of a pod."""
        if pod.node_name == self.node:
            self._dirty_pods.add(pod.key)
            for policy_key in self._policies_by_namespace.get(pod.namespace, ()):
                if self._policies[policy_key].pod_selector.matches(pod.labels):
                    self._dirty_policies.add(policy_key)
        namespace_labels = self._index.namespace_labels(pod.namespace)
        for policy_key, unit in self._units.items():
            if any(
                pods.matches(pod.labels)
                and (
                    pod.namespace == unit.policy.namespace
                    if spaces is None
                    else spaces.matches(namespace_labels)
                )
                for spaces, pods in unit.peers
            ):
                self._dirty_policies.add(policy_key)
        self._dirty_named.update(named_ports(pod))

    def set_namespace(self, name: str, namespace: Namespace | None) -> None:
        """A Namespace object added, changed or (None) deleted."""
        old = self._index.namespace_labels(name)
        self._index.set_namespace(name, namespace)
        new = self._index.namespace_labels(name)
        if old == new:
            return
        for policy_key, unit in self._units.items():
            if any(
                spaces is not None and (spaces.matches(old) or spaces.matches(new))
                for spaces, _ in unit.peers
            ):
                self._dirty_policies.add(policy_key)
        self._state = None

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
        """The DesiredState `compile_node` would give for the objects set so far."""
        if self._state is None or self._dirty_policies or self._dirty_pods:
            self._flush()
            rulesets: dict[int, Ruleset] = {
                family: self._ruleset(family) for family in self.families
            }
            self._state = DesiredState(node=self.node, rulesets=rulesets)
        return self._state

    def _flush(self) -> None:
        for port, protocol in self._dirty_named:
            for family in self.families:
                name = names.named_port_set(port, protocol, family)
                if name in self._named:
                    self._named[name] = named_port_ipset(port, protocol, family, self._index)
        self._dirty_named.clear()
        dirty, self._dirty_policies = self._dirty_policies, set()
        for key in dirty:
            self._rebuild_unit(key)
        pods, self._dirty_pods = self._dirty_pods, set()
        for key in pods:
            self._rebuild_pod(key)
        if pods or not self._top:
            self._top = {family: self._top_chains(family) for family in self.families}
            self._deny = {family: self._deny_chains(family) for family in self.families}

    def _rebuild_unit(self, key: str) -> None:
        old = self._units.pop(key, None)
        policy = self._policies.get(key)
        unit = self._compile_unit(policy) if policy is not None else None
        before = old.targets if old is not None else frozenset()
        after = unit.targets if unit is not None else frozenset()
        if unit is not None:
            self._units[key] = unit
        for pod_key in before - after:
            self._isolating.get(pod_key, set()).discard(key)
        for pod_key in after - before:
            self._isolating.setdefault(pod_key, set()).add(key)
        if old is None or unit is None or before != after or old.policy != policy:
            self._dirty_pods.update(before | after)
        self.recomputed += 1

    def _compile_unit(self, policy: NetworkPolicy) -> _Unit | None:
        keys = self._index.select(policy.namespace, policy.pod_selector) & self._local
        directions = [direction for direction in DIRECTIONS if policy.affects(direction)]
        if not keys or not directions:
            return None
        targets = [self._index.pod(pod_key) for pod_key in sorted(keys)]
        chains: dict[int, tuple[Chain, ...]] = {}
        own: dict[int, Mapping[str, IPSet]] = {}
        shared: dict[int, tuple[str, ...]] = {}
        for family in self.families:
            in_family = [pod for pod in targets if pod.ips_of_family(family)]
            if not in_family:
                continue
            seeded = self._seed_named(policy, directions, family)
            sets = dict(seeded)
            chains[family] = tuple(
                policy_chain(
                    policy, direction, family, targets=in_family, index=self._index, sets=sets
                )
                for direction in directions
            )
            own[family] = {name: ipset for name, ipset in sets.items() if name not in seeded}
            shared[family] = tuple(seeded)
        return _Unit(
            policy=policy,
            targets=frozenset(keys),
            chains=chains,
            sets=own,
            named=shared,
            peers=_peers(policy),
        )

    def _seed_named(
        self, policy: NetworkPolicy, directions: Sequence[Direction], family: Family
    ) -> dict[str, IPSet]:
        """The shared named-port sets the policy's chains will use, made if new."""
        seeded: dict[str, IPSet] = {}
        for direction in directions:
            for port, protocol in sorted(named_ports_used(policy, direction)):
                name = names.named_port_set(port, protocol, family)
                if name not in self._named:
                    self._named[name] = named_port_ipset(port, protocol, family, self._index)
                seeded[name] = self._named[name]
        return seeded

    def _rebuild_pod(self, key: str) -> None:
        pod = self._index.get(key)
        if pod is None or key not in self._local:
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
        return default_deny_chains(family, [self._index.pod(key) for key in sorted(self._local)])

    def _ruleset(self, family: Family) -> Ruleset:
        chains = [self._common[family], *self._deny[family]]
        sets: dict[str, IPSet] = {}
        for key in sorted(self._units):
            unit = self._units[key]
            chains += unit.chains.get(family, ())
            sets.update(unit.sets.get(family, {}))
            sets.update((name, self._named[name]) for name in unit.named.get(family, ()))
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
