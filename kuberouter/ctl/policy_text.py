"""Words for `policy explain`: turn verdicts and per-direction decisions into text/JSON."""

from __future__ import annotations

from typing import Any

from kuberouter.model import NetworkPolicy, Pod, PolicyRule
from kuberouter.netpol.evaluate import Verdict
from kuberouter.netpol.explain import Decision
from kuberouter.netpol.simulate import Simulator

Report = tuple[Verdict, Decision, Decision]

_OUTCOME_WORDS = {
    "not isolated": "allowed: not isolated, no NetworkPolicy selects it for {direction}",
    "not policed": "allowed: not policed (not a pod that network policy applies to)",
}


def explain_text(
    sim: Simulator, src: Pod, dst: Pod, port: int, protocol: str, reports: list[Report]
) -> str:
    allowed = bool(reports) and all(verdict.allowed for verdict, _, _ in reports)
    lines = [f"{src.key} -> {dst.key} on {port}/{protocol}: {'ALLOWED' if allowed else 'BLOCKED'}"]
    if not reports:
        lines.append("  no flow: the pods share no address family or one of them has finished")
    for verdict, egress, ingress in reports:
        packet = verdict.packet
        state = "allowed" if verdict.allowed else "blocked"
        lines.append(f"  IPv{packet.family} {packet.src} -> {packet.dst}: {state}")
        for decision in (egress, ingress):
            lines += _decision_lines(sim, decision)
    return "\n".join(lines) + "\n"


def _decision_lines(sim: Simulator, decision: Decision) -> list[str]:
    where = f" on node {decision.node}" if decision.node else ""
    head = f"    {decision.direction} of {decision.subject}{where}: "
    template = _OUTCOME_WORDS.get(decision.outcome)
    if template is not None:
        return [head + template.format(direction=decision.direction)]
    outcome = decision.outcome.replace(
        "(judged alone)", "(judged on its own: the other direction rejected the packet first)"
    )
    lines = [head + outcome]
    lines.append(f"      isolated by: {', '.join(decision.policies)} (chain {decision.chain})")
    matched = {policy for policy, _ in decision.allowed_by}
    for policy, origin in decision.allowed_by:
        lines.append(f"      allowed by {policy} {origin}")
    for key in decision.policies:
        if key not in matched:
            lines.append(f"      {key}: no rule matches this packet")
            lines += [f"        {text}" for text in _rules(sim, key, decision.direction)]
    step = decision.decided_by
    if step is not None:
        comment = f": {step.rule.comment}" if step.rule.comment else ""
        lines.append(f"      {step.action} at {step.chain} rule {step.index + 1}{comment}")
    return lines


def _rules(sim: Simulator, key: str, direction: str) -> list[str]:
    policy = next((p for p in sim.cluster.policies if p.key == key), None)
    if policy is None:
        return []
    rules = policy.ingress if direction == "ingress" else policy.egress
    if not rules:
        return [f"(no {direction} rules: allows nothing)"]
    return [
        f"{direction}[{i}]: {_describe(policy, rule, direction)}" for i, rule in enumerate(rules)
    ]


def _describe(policy: NetworkPolicy, rule: PolicyRule, direction: str) -> str:
    word = "from" if direction == "ingress" else "to"
    peers = "; ".join(str(peer) for peer in rule.peers) or "everyone"
    if any(peer.namespace_selector is None and peer.ip_block is None for peer in rule.peers):
        peers += f" (pod selectors apply in namespace {policy.namespace})"
    ports = ", ".join(str(port) for port in rule.ports) or "all ports"
    return f"{word} {peers}; {ports}"


def explain_json(
    sim: Simulator, src: Pod, dst: Pod, port: int, protocol: str, reports: list[Report]
) -> dict[str, Any]:
    return {
        "from": src.key,
        "to": dst.key,
        "port": port,
        "protocol": protocol,
        "allowed": bool(reports) and all(verdict.allowed for verdict, _, _ in reports),
        "flows": [
            {
                "src": verdict.packet.src,
                "dst": verdict.packet.dst,
                "allowed": verdict.allowed,
                "egress": _decision_json(egress),
                "ingress": _decision_json(ingress),
            }
            for verdict, egress, ingress in reports
        ],
    }


def _decision_json(decision: Decision) -> dict[str, Any]:
    step = decision.decided_by
    return {
        "subject": decision.subject,
        "node": decision.node,
        "outcome": decision.outcome,
        "chain": decision.chain,
        "policies": list(decision.policies),
        "allowed_by": [
            {"policy": policy, "rule": origin} for policy, origin in decision.allowed_by
        ],
        "decided_by": None
        if step is None
        else {
            "chain": step.chain,
            "rule": step.index + 1,
            "action": step.action,
            "comment": step.rule.comment,
        },
    }
