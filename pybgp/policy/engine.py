"""Policies compiled once from their definitions, and evaluated per route.

`CompiledPolicy(definitions, assignment)` compiles every set and policy (a `PolicyError`
names what is missing or wrong) and hands out chains: `import_chain(peer)`,
`export_chain(peer)` from the assignment, or `chain(names, default)` for any list.
`evaluate(chain, context) -> Result` is the hot path; `explain` (pybgp.policy.explain)
walks the same compiled statements and records why.
"""

from __future__ import annotations

from collections.abc import Sequence

from pybgp.policy.actions import AttributeEdit, NextHopRewrite, compile_edit, compile_next_hop
from pybgp.policy.conditions import AttrTest, CompiledSets, Condition, RouteTest, compile_conditions
from pybgp.policy.context import Result, RouteContext
from pybgp.policy.model import Definitions, Policy, PolicyAssignment, PolicyError, Statement
from pybgp.wire.pathattrs import PathAttributes

NEXT, ACCEPT, REJECT = 0, 1, 2
_DISPOSITION = {"next": NEXT, "accept": ACCEPT, "reject": REJECT}
_CACHE_LIMIT = 65536


class CompiledStatement:
    """One statement: route conditions run every time, the verdict of the attribute
    conditions is cached per (interned) attribute set."""

    __slots__ = (
        "_attr_cache",
        "_attr_tests",
        "_route_tests",
        "conditions",
        "disposition",
        "edit",
        "label",
        "rewrite_next_hop",
    )

    def __init__(self, policy: str, statement: Statement, sets: CompiledSets) -> None:
        self.label = f"{policy}/{statement.name}"
        self.conditions: tuple[Condition, ...] = compile_conditions(statement.conditions, sets)
        self._route_tests: tuple[RouteTest, ...] = tuple(
            c.on_route for c in self.conditions if c.on_route is not None
        )
        self._attr_tests: tuple[AttrTest, ...] = tuple(
            c.on_attributes for c in self.conditions if c.on_attributes is not None
        )
        self._attr_cache: dict[PathAttributes, bool] = {}
        self.disposition = _DISPOSITION[statement.actions.disposition]
        self.edit: AttributeEdit | None = compile_edit(statement.actions, sets)
        self.rewrite_next_hop: NextHopRewrite | None = compile_next_hop(statement.actions)

    def matches(self, ctx: RouteContext, attributes: PathAttributes, next_hop: str) -> bool:
        """All conditions hold; the attribute verdict (one dict lookup once cached) first."""
        if self._attr_tests:
            found = self._attr_cache.get(attributes)
            if found is None:
                found = self._attribute_verdict(attributes)
            if not found:
                return False
        for test in self._route_tests:  # noqa: SIM110 (a loop beats all() + generator)
            if not test(ctx, next_hop):
                return False
        return True

    def _attribute_verdict(self, attributes: PathAttributes) -> bool:
        found = all(test(attributes) for test in self._attr_tests)
        if len(self._attr_cache) >= _CACHE_LIMIT:
            self._attr_cache.clear()
        self._attr_cache[attributes] = found
        return found

    def apply(
        self, ctx: RouteContext, attributes: PathAttributes, next_hop: str
    ) -> tuple[PathAttributes, str]:
        if self.edit is not None:
            attributes = self.edit.apply(attributes, ctx.local_asn)
        if self.rewrite_next_hop is not None:
            next_hop = self.rewrite_next_hop(ctx, next_hop)
        return attributes, next_hop


class CompiledDefinition:
    """One policy: its statements in order and its own default (None: fall through)."""

    __slots__ = ("default", "default_label", "name", "statements")

    def __init__(self, policy: Policy, sets: CompiledSets) -> None:
        names = [s.name for s in policy.statements]
        for name in names:
            if names.count(name) > 1:
                raise PolicyError(f"policy {policy.name!r}: statement {name!r} is defined twice")
        self.name = policy.name
        self.statements = tuple(CompiledStatement(policy.name, s, sets) for s in policy.statements)
        self.default = _DISPOSITION[policy.default] if policy.default is not None else None
        self.default_label = f"{policy.name}/default"


class PolicyChain:
    """The policies applied at one point, in order, then the default action."""

    __slots__ = ("default", "names", "policies", "reads")

    def __init__(self, policies: Sequence[CompiledDefinition], default: str) -> None:
        if default not in ("accept", "reject"):
            raise PolicyError(f"default action must be accept or reject, not {default!r}")
        self.policies = tuple(policies)
        self.names = tuple(p.name for p in policies)
        self.default = _DISPOSITION[default]
        # What beyond the route itself the verdict depends on: "prefix" and/or "peer".
        self.reads = frozenset(
            c.reads
            for p in self.policies
            for s in p.statements
            for c in s.conditions
            if c.reads != "route"
        )

    @property
    def default_action(self) -> str:
        return "accept" if self.default == ACCEPT else "reject"

    @property
    def constant(self) -> bool | None:
        """True (False) when the chain accepts (rejects) every route unchanged: no policies."""
        if self.policies:
            return None
        return self.default == ACCEPT

    def __repr__(self) -> str:
        return f"PolicyChain({list(self.names)}, default={self.default_action})"


class CompiledPolicy:
    """Every definition compiled; chains per peer made on first use and kept."""

    def __init__(
        self, definitions: Definitions, assignment: PolicyAssignment | None = None
    ) -> None:
        self.definitions = definitions
        self.assignment = assignment if assignment is not None else PolicyAssignment()
        sets = CompiledSets(definitions)
        self._policies: dict[str, CompiledDefinition] = {}
        for policy in definitions.policies:
            if policy.name in self._policies:
                raise PolicyError(f"policy {policy.name!r} is defined twice")
            self._policies[policy.name] = CompiledDefinition(policy, sets)
        for name in sorted(self.assignment.policy_names()):
            self.policy(name)
        self._chains: dict[tuple[str, str], PolicyChain] = {}

    def policy(self, name: str) -> CompiledDefinition:
        found = self._policies.get(name)
        if found is None:
            raise PolicyError(f"no policy named {name!r}")
        return found

    def chain(self, names: Sequence[str], default: str) -> PolicyChain:
        return PolicyChain([self.policy(name) for name in names], default)

    def import_chain(self, peer_address: str) -> PolicyChain:
        return self._cached("import", peer_address)

    def export_chain(self, peer_address: str) -> PolicyChain:
        return self._cached("export", peer_address)

    def _cached(self, direction: str, peer_address: str) -> PolicyChain:
        found = self._chains.get((direction, peer_address))
        if found is None:
            if direction == "import":
                names, default = self.assignment.import_chain(peer_address)
            else:
                names, default = self.assignment.export_chain(peer_address)
            found = self._chains[direction, peer_address] = self.chain(names, default)
        return found


def evaluate(chain: PolicyChain, ctx: RouteContext) -> Result:
    """Run the chain on one route (see pybgp.policy.model for the rules)."""
    attributes, next_hop = ctx.attributes, ctx.next_hop
    for policy in chain.policies:
        for statement in policy.statements:
            if not statement.matches(ctx, attributes, next_hop):
                continue
            if statement.disposition == REJECT:
                return Result(False, ctx.attributes, ctx.next_hop, statement.label)
            attributes, next_hop = statement.apply(ctx, attributes, next_hop)
            if statement.disposition == ACCEPT:
                return Result(True, attributes, next_hop, statement.label)
        if policy.default is not None:
            return decide(policy.default, ctx, attributes, next_hop, policy.default_label)
    return decide(chain.default, ctx, attributes, next_hop, "default")


def decide(
    disposition: int, ctx: RouteContext, attributes: PathAttributes, next_hop: str, label: str
) -> Result:
    if disposition == ACCEPT:
        return Result(True, attributes, next_hop, label)
    return Result(False, ctx.attributes, ctx.next_hop, label)
