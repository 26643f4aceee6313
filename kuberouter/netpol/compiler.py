"""The pure firewall compiler: cluster snapshot + this node -> desired ipsets and chains.

Only this node's pods get chains; a policy contributes a chain only when it selects a
local pod; peers anywhere in the cluster become set entries. Work per compile is about
(local pods x policies of their namespaces) + the size of the peer sets used, helped by
the label index, so a node with 50 pods in a 5,000-pod cluster stays cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from kuberouter.model import NetworkPolicy, Pod
from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol.cluster import Cluster, actionable
from kuberouter.netpol.index import PodIndex
from kuberouter.netpol.pod_chains import (
    common_chain,
    default_deny_chains,
    pod_chain,
    top_chains,
)
from kuberouter.netpol.policy_chains import IndexSource, policy_chain
from kuberouter.netpol.ruleset import FAMILIES, Chain, DesiredState, Family, IPSet, Ruleset

DIRECTIONS: tuple[Direction, ...] = ("ingress", "egress")
# (policy, direction) -> the local pods it selects
_Selection = dict[tuple[NetworkPolicy, Direction], list[Pod]]


def build_index(cluster: Cluster) -> PodIndex:
    """The peer index over every policy-actionable pod; share it across nodes."""
    return PodIndex(cluster.namespaces.values(), (pod for pod in cluster.pods if actionable(pod)))


def compile_node(
    cluster: Cluster,
    node: str,
    node_ips: Iterable[str] | None = None,
    families: Sequence[Family] = FAMILIES,
    index: PodIndex | None = None,
    default_deny: Sequence[str] = (),
) -> DesiredState:
    """`default_deny`: this node's pod CIDRs when --netpol-default-deny is on."""
    index = index or build_index(cluster)
    local = sorted(
        (pod for pod in cluster.pods if actionable(pod) and pod.node_name == node),
        key=lambda pod: pod.key,
    )
    selection = _select_targets(cluster.policies, local)
    addresses = frozenset(cluster.node_ips.get(node, ()) if node_ips is None else node_ips)
    rulesets: dict[int, Ruleset] = {
        family: _compile_family(
            node,
            family,
            local=local,
            selection=selection,
            index=index,
            addresses=addresses,
            deny_cidrs=family_cidrs(default_deny, family),
        )
        for family in families
    }
    return DesiredState(node=node, rulesets=rulesets)


def family_cidrs(cidrs: Iterable[str], family: Family) -> tuple[str, ...]:
    return tuple(cidr for cidr in cidrs if (":" in cidr) == (family == 6))


def _select_targets(policies: Iterable[NetworkPolicy], local: Sequence[Pod]) -> _Selection:
    by_namespace: dict[str, list[Pod]] = defaultdict(list)
    for pod in local:
        by_namespace[pod.namespace].append(pod)
    selection: _Selection = {}
    for policy in sorted(policies, key=lambda policy: policy.key):
        candidates = by_namespace.get(policy.namespace)
        if not candidates:
            continue
        targets = [pod for pod in candidates if policy.pod_selector.matches(pod.labels)]
        for direction in DIRECTIONS:
            if targets and policy.affects(direction):
                selection[(policy, direction)] = targets
    return selection


def _compile_family(
    node: str,
    family: Family,
    *,
    local: Sequence[Pod],
    selection: _Selection,
    index: PodIndex,
    addresses: frozenset[str],
    deny_cidrs: Sequence[str],
) -> Ruleset:
    sets: dict[str, IPSet] = {}
    policy_chains: list[Chain] = []
    isolating: dict[tuple[str, Direction], list[NetworkPolicy]] = defaultdict(list)
    for (policy, direction), targets in selection.items():
        in_family = [pod for pod in targets if pod.ips_of_family(family)]
        if not in_family:
            continue
        source = IndexSource(index, policy)
        policy_chains.append(
            policy_chain(policy, direction, family, targets=in_family, sets=sets, source=source)
        )
        for pod in in_family:
            isolating[(pod.key, direction)].append(policy)
    pod_chains: list[tuple[Pod, str, Chain]] = []
    for pod in local:
        ips = pod.ips_of_family(family)
        for direction in DIRECTIONS:
            policies = isolating.get((pod.key, direction))
            if ips and policies:
                chain = pod_chain(pod, direction, family, policies)
                pod_chains.extend((pod, ip, chain) for ip in ips)
    chains = [common_chain(family)]
    if deny_cidrs:
        chains += default_deny_chains(family, local)
    chains += policy_chains
    chains += list({chain.name: chain for _, _, chain in pod_chains}.values())
    chains += top_chains(pod_chains, deny_cidrs)
    return Ruleset(
        node=node,
        family=family,
        local_addresses=frozenset(ip for ip in addresses if (":" in ip) == (family == 6)),
        sets=dict(sorted(sets.items())),
        chains={chain.name: chain for chain in chains},
    )
