"""What the incremental compiler keeps per policy, and the shared named-port sets, each
updated member by member.

A `Unit` is one policy active on this node (it selects a local pod). Its chains depend
only on the policy and on which families its local targets have addresses in; its sets
are the targets' addresses (local, small), one ipBlock set per block (fixed) and one set
per rule of the pods its pod/namespace-selector peers select anywhere in the cluster.
That last kind is what makes a cluster big, so each rule keeps `RulePeers`: the keys of
the pods it selects and a `Tally` of their addresses per family. A pod or namespace
change is matched against the rule's peers and moves one pod in or out; the unit then
emits new versions of just the sets whose members changed. `NamedSets` does the same for
the shared named-port sets. Only a policy change compiles a unit from the index again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from kuberouter.model import LabelSelector, NetworkPolicy, Pod
from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol import names
from kuberouter.netpol.compiler import DIRECTIONS
from kuberouter.netpol.index import PodIndex, named_ports
from kuberouter.netpol.members import Tally
from kuberouter.netpol.policy_chains import (
    indexed_named_port_entries,
    named_port_entries,
    named_port_ipset,
    named_ports_used,
    policy_chain,
    rule_peer_keys,
)
from kuberouter.netpol.ruleset import Chain, Family, IPSet

# A selecting peer: (namespace selector, or None for the policy's own namespace; pods)
_Peer = tuple[LabelSelector | None, LabelSelector]


class RulePeers:
    """The pods one rule's pod/namespace-selector peers select, and their addresses."""

    __slots__ = ("by_namespace", "namespace", "peers", "selected", "tallies")

    def __init__(self, namespace: str, peers: Iterable[_Peer], families: Sequence[Family]):
        self.namespace = namespace  # the policy's
        self.peers = tuple(peers)
        self.by_namespace = [spaces for spaces, _ in self.peers if spaces is not None]
        self.selected: set[str] = set()
        self.tallies = {family: Tally() for family in families}

    def matches(self, pod: Pod, namespace_labels: Mapping[str, str]) -> bool:
        return any(
            pods.matches(pod.labels)
            and (
                pod.namespace == self.namespace
                if spaces is None
                else spaces.matches(namespace_labels)
            )
            for spaces, pods in self.peers
        )

    def fill(self, pods: Iterable[Pod]) -> None:
        """Count pods the index found selected."""
        for pod in pods:
            self.selected.add(pod.key)
            for family, tally in self.tallies.items():
                tally.add(pod.ips_of_family(family))

    def update(
        self, key: str, old: Pod | None, new: Pod | None, namespace_labels: Mapping[str, str]
    ) -> bool:
        """The pod under `key` was `old` (as counted so far) and is `new` now (None: gone
        or not policy-actionable); whether the addresses selected changed."""
        was = key in self.selected
        now = new is not None and self.matches(new, namespace_labels)
        if not was and not now:
            return False
        if was and now and old is not None and new is not None and old.ips == new.ips:
            return False
        if was and old is not None:
            self.selected.discard(key)
            for family, tally in self.tallies.items():
                tally.remove(old.ips_of_family(family))
        if now and new is not None:
            self.selected.add(key)
            for family, tally in self.tallies.items():
                tally.add(new.ips_of_family(family))
        return True


class NamedSets:
    """The shared named-port sets the active policies use, by (port, protocol, family)."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str, Family], Tally] = {}
        self._sets: dict[tuple[str, str, Family], IPSet] = {}

    def get(self, port: str, protocol: str, family: Family, index: PodIndex) -> IPSet:
        key = (port, protocol, family)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Tally()
            tally.add(indexed_named_port_entries(index, port, protocol, family))
            self._sets[key] = named_port_ipset(port, protocol, family, tally.members())
        elif tally.changed:
            self._sets[key] = attrs.evolve(self._sets[key], entries=tally.members())
        return self._sets[key]

    def update(self, old: Pod | None, new: Pod | None) -> None:
        """A pod's old and new versions (None: absent or not policy-actionable)."""
        for (port, protocol, family), tally in self._tallies.items():
            before = _entries(old, port, protocol, family)
            after = _entries(new, port, protocol, family)
            if before != after:
                tally.remove(before)
                tally.add(after)

    def refresh(self, used: set[tuple[str, str, Family]]) -> bool:
        """Emit the sets whose members changed; forget the ones no policy uses. Whether a
        set in use changed."""
        for key in [key for key in self._tallies if key not in used]:
            del self._tallies[key], self._sets[key]
        changed = False
        for key, tally in self._tallies.items():
            if tally.changed:
                self._sets[key] = attrs.evolve(self._sets[key], entries=tally.members())
                changed = True
        return changed


def _entries(pod: Pod | None, port: str, protocol: str, family: Family) -> list[str]:
    """A pod's members of one named-port set."""
    if pod is None:
        return []
    numbers = named_ports(pod).get((port, protocol), ())
    return [
        entry for number in numbers for entry in named_port_entries(pod, number, protocol, family)
    ]


@attrs.frozen
class _Source:
    """A unit's set contents, as policy_chain asks for them."""

    unit: Unit
    named: NamedSets
    index: PodIndex

    def peer_ips(self, direction: Direction, number: int, family: Family) -> Iterable[str]:
        return self.unit.peers[(direction, number)].tallies[family].members()

    def named_port_set(self, port: str, protocol: str, family: Family) -> IPSet:
        return self.named.get(port, protocol, family, self.index)


class Unit:
    """What one policy active on this node compiles to."""

    def __init__(self, policy: NetworkPolicy, families: Sequence[Family], index: PodIndex):
        """Select the peers of every rule from the index (then `reshape` for the chains)."""
        self.policy, self.families = policy, tuple(families)
        self.directions = [d for d in DIRECTIONS if policy.affects(d)]
        self.peers: dict[tuple[Direction, int], RulePeers] = {}
        for direction in self.directions:
            for number, rule in enumerate(policy.rules(direction)):
                selecting = {
                    (peer.namespace_selector, peer.pod_selector or LabelSelector.everything())
                    for peer in rule.peers
                    if peer.ip_block is None
                }
                if not selecting:
                    continue
                peers = self.peers[(direction, number)] = RulePeers(
                    policy.namespace, selecting, families
                )
                peers.fill(index.pod(key) for key in rule_peer_keys(index, policy, rule))
        self.targets: frozenset[str] = frozenset()
        self.chains: dict[int, tuple[Chain, ...]] = {}  # family -> chains, ingress first
        self.sets: dict[int, dict[str, IPSet]] = {}  # family -> its own sets
        self.named: dict[int, tuple[tuple[str, str, Family], ...]] = {}  # shared sets used

    def reshape(self, targets: Sequence[Pod], named: NamedSets, index: PodIndex) -> None:
        """Chains and sets for these local targets (the peers' members are kept)."""
        self.targets = frozenset(pod.key for pod in targets)
        self.chains, self.sets, self.named = {}, {}, {}
        source = _Source(self, named, index)
        for family in self.families:
            in_family = [pod for pod in targets if pod.ips_of_family(family)]
            if not in_family:
                continue
            sets: dict[str, IPSet] = {}
            self.chains[family] = tuple(
                policy_chain(
                    self.policy, direction, family, targets=in_family, sets=sets, source=source
                )
                for direction in self.directions
            )
            shared = sorted(
                (port, protocol, family)
                for direction in self.directions
                for port, protocol in named_ports_used(self.policy, direction)
            )
            self.named[family] = tuple(shared)
            common = {names.named_port_set(*key) for key in shared}
            self.sets[family] = {name: s for name, s in sets.items() if name not in common}

    def update_peers(
        self, key: str, old: Pod | None, new: Pod | None, namespace_labels: Mapping[str, str]
    ) -> bool:
        """A pod changed; whether any peer set's members did."""
        changed = False
        for peers in self.peers.values():
            changed |= peers.update(key, old, new, namespace_labels)
        return changed

    def refresh(self) -> None:
        """Emit new versions of the peer sets whose members changed."""
        policy = self.policy
        for (direction, number), peers in self.peers.items():
            for family, tally in peers.tallies.items():
                if tally.changed and family in self.sets:
                    name = names.rule_pods_set(
                        policy.namespace, policy.name, direction, number, family
                    )
                    own = self.sets[family]
                    own[name] = attrs.evolve(own[name], entries=tally.members())
