"""Pod egress: traffic from a pod to anything outside the cluster's pods leaves with the
node's address (MASQUERADE), with the names operators of kube-router already know.

Per address family, two sets filled from every Node object (both kept whole: a node
that comes or goes changes its own members only):
- kube-router-pod-subnets (hash:net): every node's pod CIDRs (the kube-router.io/pod-cidrs
  annotation, else spec.podCIDRs);
- kube-router-node-ips (hash:ip): every node's InternalIP and ExternalIP addresses;
IPv6 sets carry the "inet6:" prefix. One rule, appended to the nat table's POSTROUTING:

  -m set --match-set kube-router-pod-subnets src
  -m set ! --match-set kube-router-pod-subnets dst
  -m set ! --match-set kube-router-node-ips dst -j MASQUERADE [--random-fully]

Traffic to a service address has been DNATed to a pod (or a node) before POSTROUTING, so
the rule needs no service range. The same rule text and set options as upstream
kube-router, so a node moving between the two agents keeps one rule and one set each.
Older forms of the rule (without the node-address match; without --random-fully where
iptables has it) are removed when found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from kuberouter.model import Node
from kuberouter.netpol.names import IPV6_SET_PREFIX
from kuberouter.netpol.ruleset import Family, IPSet, SetType
from kuberouter.podnet.bridge import family_of

POD_SUBNETS_SET = "kube-router-pod-subnets"
NODE_IPS_SET = "kube-router-node-ips"
TABLE, CHAIN = "nat", "POSTROUTING"


@attrs.frozen(kw_only=True)
class FamilyEgress:
    family: Family
    pod_subnets: IPSet
    node_ips: IPSet


@attrs.frozen(kw_only=True)
class EgressState:
    """What one node programs for egress: a FamilyEgress per enabled family. A family
    without one has neither our rule nor our sets."""

    families: Mapping[int, FamilyEgress] = attrs.field(factory=dict)


NO_EGRESS = EgressState()


def set_name(name: str, family: int) -> str:
    return IPV6_SET_PREFIX + name if family == 6 else name


def egress_state(nodes: Iterable[Node], families: Iterable[Family]) -> EgressState:
    """The sets for every node of the cluster, for each enabled family."""
    wanted = tuple(families)
    subnets: dict[int, set[str]] = {family: set() for family in wanted}
    addresses: dict[int, set[str]] = {family: set() for family in wanted}
    for node in nodes:
        for cidr in node.effective_pod_cidrs:
            subnets.get(family_of(cidr), set()).add(cidr)
        for ip in (*node.internal_ips, *node.external_ips):
            addresses.get(6 if ":" in ip else 4, set()).add(ip)
    return EgressState(
        families={
            family: FamilyEgress(
                family=family,
                pod_subnets=_set(POD_SUBNETS_SET, "hash:net", family, subnets[family]),
                node_ips=_set(NODE_IPS_SET, "hash:ip", family, addresses[family]),
            )
            for family in wanted
        }
    )


def _set(name: str, kind: SetType, family: Family, entries: set[str]) -> IPSet:
    return IPSet(
        name=set_name(name, family), type=kind, family=family, entries=tuple(sorted(entries))
    )


def masquerade_rule(family: int, *, random_fully: bool) -> tuple[str, ...]:
    """The rule's arguments after `-A POSTROUTING`, as iptables-save prints them."""
    pods, nodes = set_name(POD_SUBNETS_SET, family), set_name(NODE_IPS_SET, family)
    args = (
        "-m", "set", "--match-set", pods, "src",
        "-m", "set", "!", "--match-set", pods, "dst",
        "-m", "set", "!", "--match-set", nodes, "dst",
        "-j", "MASQUERADE",
    )  # fmt: skip
    return (*args, "--random-fully") if random_fully else args


def stale_rules(family: int, *, random_fully: bool) -> tuple[tuple[str, ...], ...]:
    """Older forms of the rule that a node may still hold; removed when seen."""
    pods = set_name(POD_SUBNETS_SET, family)
    no_node_match = (
        "-m", "set", "--match-set", pods, "src",
        "-m", "set", "!", "--match-set", pods, "dst",
        "-j", "MASQUERADE",
    )  # fmt: skip
    older = [no_node_match, (*no_node_match, "--random-fully")]
    if random_fully:
        older.append(masquerade_rule(family, random_fully=False))
    return tuple(older)


def every_rule(family: int) -> tuple[tuple[str, ...], ...]:
    """Every form of our rule, current or old (what cleanup removes)."""
    forms = {masquerade_rule(family, random_fully=flag) for flag in (True, False)}
    forms.update(stale_rules(family, random_fully=True))
    return tuple(sorted(forms))
