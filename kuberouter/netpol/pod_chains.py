"""Per-pod firewall chains, the common chain and the top-level chains.

Layout (per family; only pods isolated in a direction get that direction's chain):

    KUBE-ROUTER-FORWARD / -OUTPUT:  -d POD -j KUBE-POD-FW-<ingress> for every pod, then
                                    -s POD -j KUBE-POD-FW-<egress> for every pod
    KUBE-ROUTER-INPUT:              -s POD -j KUBE-POD-FW-<egress>
    ... each ending in: mark 0x20000 -j ACCEPT
    KUBE-POD-FW-<hash>:  -j KUBE-NWPLCY-COMMON  (INVALID drop, ESTABLISHED,RELATED and
                         essential ICMP accept), [ingress: source local to node -j ACCEPT],
                         -j KUBE-NWPLCY-<policy> for each isolating policy,
                         NFLOG + REJECT when mark 0x10000 is unset,
                         clear 0x10000, set 0x20000

With --netpol-default-deny, the top chains first send traffic from / to this node's pod
CIDRs through KUBE-NWPLCY-DENY-NEW-SRC / -DST: RETURN for the node's own addresses and
for every local pod the ruleset knows, DROP for the rest. A new pod is known, and so let
through, in the same iptables-restore (or nft transaction) that adds its own chains.

Upstream keeps one chain per pod for both directions and jumps to a policy's single
chain; then a policy selecting both ends of a flow lets its ingress rules allow the
source's egress. One chain per pod and direction (and per policy and direction) keeps
the two checks apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from kuberouter.model import NetworkPolicy, Pod
from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol import names
from kuberouter.netpol.ruleset import MARK_ACCEPT, MARK_ALLOWED, Chain, Family, Rule

HOOKS = ("INPUT", "FORWARD", "OUTPUT")
_ICMP = {
    4: ("echo-request", "destination-unreachable", "time-exceeded"),
    6: (
        "echo-request",
        "destination-unreachable",
        "packet-too-big",
        "time-exceeded",
        "neighbor-solicitation",
        "neighbor-advertisement",
    ),
}


def common_chain(family: Family) -> Chain:
    protocol = "icmp" if family == 4 else "icmpv6"
    rules = [
        Rule(target="DROP", ctstate=("INVALID",), comment="drop invalid state for pod"),
        Rule(
            target="ACCEPT",
            ctstate=("RELATED", "ESTABLISHED"),
            comment="rule for stateful firewall for pod",
        ),
    ]
    rules += [
        Rule(target="ACCEPT", protocol=protocol, icmp_type=kind, comment=f"allow icmp {kind}")
        for kind in _ICMP[family]
    ]
    return Chain(name=names.COMMON_CHAIN, rules=tuple(rules), comment="common pod rules")


def pod_chain(
    pod: Pod, direction: Direction, family: Family, policies: Sequence[NetworkPolicy]
) -> Chain:
    who = f"POD name:{pod.name} namespace: {pod.namespace}"
    rules = [Rule(target=names.COMMON_CHAIN, comment="run through common rules")]
    if direction == "ingress":
        rules.append(
            Rule(
                target="ACCEPT",
                src_local=True,
                comment="rule to permit the traffic to pods when source is the pod's local node",
            )
        )
    for policy in policies:
        rules.append(
            Rule(
                target=names.policy_chain(policy.namespace, policy.name, direction, family),
                comment=f"run through nw policy {policy.key}",
                policy=policy.key,
            )
        )
    way = "destined for" if direction == "ingress" else "from"
    rules += [
        Rule(
            target="NFLOG",
            limit="10/minute",
            mark=(MARK_ALLOWED, MARK_ALLOWED),
            mark_negate=True,
            comment=f"rule to log dropped traffic {who}",
        ),
        Rule(
            target="REJECT",
            mark=(MARK_ALLOWED, MARK_ALLOWED),
            mark_negate=True,
            comment=f"rule to REJECT traffic {way} {who}",
        ),
        Rule(target="MARK", set_mark=(0, MARK_ALLOWED), comment="clear the policy mark"),
        Rule(
            target="MARK",
            set_mark=(MARK_ACCEPT, MARK_ACCEPT),
            comment="set mark to ACCEPT traffic that comply to network policies",
        ),
    ]
    return Chain(
        name=names.pod_chain(pod.namespace, pod.name, direction, family),
        rules=tuple(rules),
        owner=pod.key,
        direction=direction,
        comment=f"{direction} firewall of pod {pod.key}",
    )


def default_deny_chains(family: Family, pods: Sequence[Pod]) -> list[Chain]:
    """The chains that drop traffic of pods this ruleset does not know (`pods`: the local
    policy-actionable pods)."""
    ips = [(pod.key, ip) for pod in pods for ip in pod.ips_of_family(family)]
    drop = Rule(target="DROP", comment="pod without programmed policy yet")
    # The node's own addresses (e.g. its bridge gateway) may lie in the pod CIDR.
    src = [Rule(target="RETURN", src_local=True, comment="an address of this node")]
    src += [Rule(target="RETURN", src_addr=ip, comment=f"programmed pod {key}") for key, ip in ips]
    dst = [Rule(target="RETURN", dst_local=True, comment="an address of this node")]
    dst += [Rule(target="RETURN", dst_addr=ip, comment=f"programmed pod {key}") for key, ip in ips]
    return [
        Chain(name=names.DENY_NEW_SRC_CHAIN, rules=(*src, drop), comment="default deny"),
        Chain(name=names.DENY_NEW_DST_CHAIN, rules=(*dst, drop), comment="default deny"),
    ]


def _default_deny_jumps(cidrs: Sequence[str]) -> dict[str, list[Rule]]:
    jumps: dict[str, list[Rule]] = {hook: [] for hook in HOOKS}
    for cidr in cidrs:
        to_pods = Rule(target=names.DENY_NEW_DST_CHAIN, dst_addr=cidr, comment="to local pods")
        from_pods = Rule(target=names.DENY_NEW_SRC_CHAIN, src_addr=cidr, comment="from local pods")
        jumps["INPUT"].append(from_pods)
        jumps["FORWARD"] += [to_pods, from_pods]
        jumps["OUTPUT"].append(to_pods)
    return jumps


def top_chains(
    pod_chains: Sequence[tuple[Pod, str, Chain]], deny_cidrs: Sequence[str] = ()
) -> list[Chain]:
    """KUBE-ROUTER-INPUT/FORWARD/OUTPUT for (pod, address, pod chain) triples; first the
    default-deny jumps for this node's pod CIDRs `deny_cidrs` (of the ruleset's family)."""
    jumps = _default_deny_jumps(deny_cidrs)
    # Every ingress jump before every egress jump: a packet meets its destination's chain
    # first, then its source's, and each direction's jumps are one run that nft keeps as
    # one verdict map (render_nft), so a new pod adds map elements, not rules.
    ordered = sorted(pod_chains, key=lambda triple: triple[2].direction != "ingress")
    for pod, ip, chain in ordered:
        who = f"POD name:{pod.name} namespace: {pod.namespace} to chain {chain.name}"
        if chain.direction == "ingress":
            comment = f"rule to jump traffic destined to {who}"
            rule = Rule(target=chain.name, dst_addr=ip, comment=comment)
            hooks: tuple[str, ...] = ("FORWARD", "OUTPUT")
        else:
            rule = Rule(target=chain.name, src_addr=ip, comment=f"rule to jump traffic from {who}")
            hooks = HOOKS
        for hook in hooks:
            jumps[hook].append(rule)
    accept = Rule(
        target="ACCEPT",
        mark=(MARK_ACCEPT, MARK_ACCEPT),
        comment="rule to explicitly ACCEPT traffic that comply to network policies",
    )
    return [
        Chain(name=f"KUBE-ROUTER-{hook}", rules=(*jumps[hook], accept), hook=hook) for hook in HOOKS
    ]
