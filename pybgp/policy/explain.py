"""Why a chain accepted or rejected a route, step by step (for `pybgp rib PREFIX --explain`).

It walks the same compiled statements as `evaluate`, but tests every condition of each
statement (no short cut, no cache) and records each verdict, so the result is the same and
the trace says which condition failed.
"""

from __future__ import annotations

from typing import NamedTuple

from pybgp.policy.context import Result, RouteContext
from pybgp.policy.engine import ACCEPT, REJECT, CompiledStatement, PolicyChain, decide
from pybgp.wire.pathattrs import PathAttributes

_NAMES = {0: "next", ACCEPT: "accept", REJECT: "reject"}


class Step(NamedTuple):
    """`where`: "policy/statement", "policy/default" or "default". `what`: a condition's
    label (with `matched` True/False), or an outcome ("accept", "reject", "next",
    "skipped", "no conditions") with `matched` None."""

    where: str
    what: str
    matched: bool | None = None

    def __str__(self) -> str:
        if self.matched is None:
            return f"{self.where}: {self.what}"
        return f"{self.where}: {self.what}: {'match' if self.matched else 'no match'}"


class Explanation(NamedTuple):
    result: Result
    steps: tuple[Step, ...]

    def lines(self) -> list[str]:
        verdict = "accepted" if self.result.accepted else "rejected"
        return [str(step) for step in self.steps] + [f"{verdict} by {self.result.decided_by}"]


def explain(chain: PolicyChain, ctx: RouteContext) -> Explanation:
    steps: list[Step] = []
    attributes, next_hop = ctx.attributes, ctx.next_hop
    for policy in chain.policies:
        for statement in policy.statements:
            if not _trace_conditions(statement, ctx, attributes, next_hop, steps):
                steps.append(Step(statement.label, "skipped"))
                continue
            steps.append(Step(statement.label, _NAMES[statement.disposition]))
            if statement.disposition == REJECT:
                return _done(Result(False, ctx.attributes, ctx.next_hop, statement.label), steps)
            attributes, next_hop = statement.apply(ctx, attributes, next_hop)
            if statement.disposition == ACCEPT:
                return _done(Result(True, attributes, next_hop, statement.label), steps)
        if policy.default is not None:
            steps.append(Step(policy.default_label, _NAMES[policy.default]))
            result = decide(policy.default, ctx, attributes, next_hop, policy.default_label)
            return _done(result, steps)
    steps.append(Step("default", _NAMES[chain.default]))
    return _done(decide(chain.default, ctx, attributes, next_hop, "default"), steps)


def _trace_conditions(
    statement: CompiledStatement,
    ctx: RouteContext,
    attributes: PathAttributes,
    next_hop: str,
    steps: list[Step],
) -> bool:
    if not statement.conditions:
        steps.append(Step(statement.label, "no conditions"))
        return True
    all_true = True
    for condition in statement.conditions:
        if condition.on_route is not None:
            matched = condition.on_route(ctx, next_hop)
        else:
            assert condition.on_attributes is not None
            matched = condition.on_attributes(attributes)
        steps.append(Step(statement.label, condition.label, matched))
        all_true = all_true and matched
    return all_true


def _done(result: Result, steps: list[Step]) -> Explanation:
    return Explanation(result, tuple(steps))
