"""Why a flow is allowed or blocked, read off the trace of the compiled rules.

For each direction (egress of the source, ingress of the destination) the report says
whether the pod is isolated there, which policies its chain consults (from the chain
itself), which policy rules marked the packet as allowed (the MARK steps of the walk,
which carry the policy and rule they were compiled from), and which rule decided.
"""

from __future__ import annotations

import attrs

from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol.cluster import Location
from kuberouter.netpol.evaluate import HookWalk, Step, Verdict, walk
from kuberouter.netpol.ruleset import Chain, Ruleset
from kuberouter.netpol.simulate import Simulator


@attrs.frozen(kw_only=True)
class Decision:
    direction: Direction
    subject: str  # pod key, or the address when it is not a pod
    node: str | None
    # "allowed", "blocked", "not isolated", "not policed"; "... (judged alone)" when the
    # packet never reached this chain because the other direction rejected it first
    outcome: str
    chain: str | None = None  # the pod's firewall chain for this direction
    policies: tuple[str, ...] = ()  # policies the chain consults, in order
    allowed_by: tuple[tuple[str, str], ...] = ()  # (policy, rule origin) that matched
    decided_by: Step | None = None  # the rule that accepted or rejected, if any


def explain(sim: Simulator, verdict: Verdict) -> tuple[Decision, Decision]:
    """(egress decision of the source, ingress decision of the destination)."""
    packet = verdict.packet
    src, dst = sim.cluster.locate(packet.src), sim.cluster.locate(packet.dst)
    egress = _decide(sim, verdict, src, packet.src, "egress")
    ingress = _decide(sim, verdict, dst, packet.dst, "ingress")
    return egress, ingress


def _decide(
    sim: Simulator, verdict: Verdict, where: Location, address: str, direction: Direction
) -> Decision:
    if where.pod is None or where.node is None:
        subject = (
            f"{address} ({'node address' if where.place == 'host' else 'outside the cluster'})"
        )
        return Decision(
            direction=direction, subject=subject, node=where.node, outcome="not policed"
        )
    pod, node = where.pod, where.node
    ruleset = sim.ruleset(node, verdict.packet.family)
    chain = _pod_chain(ruleset, pod.key, direction)
    if chain is None:
        return Decision(direction=direction, subject=pod.key, node=node, outcome="not isolated")
    policies = tuple(rule.policy for rule in chain.rules if rule.policy is not None)
    base = Decision(
        direction=direction,
        subject=pod.key,
        node=node,
        outcome="allowed",
        chain=chain.name,
        policies=policies,
    )
    for hook_walk in verdict.walks:
        if hook_walk.node == node:
            segment = _segment(hook_walk, chain.name)
            if segment is not None:
                return _judge(base, segment)
    # The other direction rejected the packet first (same node, same hook): judge this
    # direction's chain on its own so the report still says what it would have done.
    alone = walk(ruleset, "FORWARD", verdict.packet, start=chain.name)
    judged = _judge(base, list(alone.steps))
    return attrs.evolve(judged, outcome=f"{judged.outcome} (judged alone)")


def _pod_chain(ruleset: Ruleset, pod: str, direction: Direction) -> Chain | None:
    for chain in ruleset.chains.values():
        if chain.owner == pod and chain.direction == direction:
            return chain
    return None


def _segment(walk: HookWalk, chain: str) -> list[Step] | None:
    """The steps taken inside `chain` (and what it called), or None if never entered."""
    steps = list(walk.steps)
    for position, step in enumerate(steps):
        if step.action == f"jump {chain}":
            inside: list[Step] = []
            for later in steps[position + 1 :]:
                if later.chain.startswith("KUBE-ROUTER-"):
                    break
                inside.append(later)
            return inside
    return None


def _judge(base: Decision, steps: list[Step]) -> Decision:
    allowed_by = tuple(
        (step.rule.policy, step.rule.origin or "")
        for step in steps
        if step.action.startswith("MARK") and step.rule.policy is not None
    )
    final = next((step for step in steps if step.action in ("ACCEPT", "DROP", "REJECT")), None)
    blocked = final is not None and final.action != "ACCEPT"
    return attrs.evolve(
        base,
        outcome="blocked" if blocked else "allowed",
        allowed_by=allowed_by,
        decided_by=final,
    )
