"""What one peer's chain depends on, as a value: equal views give equal verdicts.

`ChainViews(compiled).view("import" | "export", address)` is the chain's policies, their
statements and the content of every set those statements name, except that a statement
whose neighbour-set condition can never hold for this peer is dropped, and a neighbour set
is reduced to whether the peer is in it. So when a new policy differs from the old one only
in a neighbour set's other members, or in a statement that never applies to this peer, the
views are equal and the peer's routes need not be worked out again: a new node joining a
thousand-node mesh, or a service IP added for the external peers, touches only the
sessions it concerns. Peers with equal views also behave alike, so a view is what tells
update groups apart.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from pybgp.policy.engine import CompiledPolicy
from pybgp.policy.match import AddressMatcher
from pybgp.policy.model import Conditions, Statement

_SET_KINDS = (
    ("prefix_set", "prefix_sets"),
    ("as_path_set", "as_path_sets"),
    ("community_set", "community_sets"),
    ("ext_community_set", "ext_community_sets"),
    ("large_community_set", "large_community_sets"),
)


@attrs.frozen(cache_hash=True)
class ChainView:
    parts: tuple[Hashable, ...]


class ChainViews:
    """The views of one compiled policy, made once per (direction, peer)."""

    def __init__(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        definitions = compiled.definitions
        self._sets = {
            kinds: {s.name: s for s in getattr(definitions, kinds)}
            for _, kinds in (*_SET_KINDS, ("neighbor_set", "neighbor_sets"))
        }
        self._neighbors = {
            name: AddressMatcher(s.members) for name, s in self._sets["neighbor_sets"].items()
        }
        self._views: dict[tuple[str, str], ChainView] = {}

    def view(self, direction: str, address: str) -> ChainView:
        found = self._views.get((direction, address))
        if found is None:
            found = self._views[direction, address] = self._make(direction, address)
        return found

    def _make(self, direction: str, address: str) -> ChainView:
        assignment, definitions = self.compiled.assignment, self.compiled.definitions
        if direction == "import":
            names, default = assignment.import_chain(address)
        else:
            names, default = assignment.export_chain(address)
        parts: list[Hashable] = [default]
        for name in names:
            policy = definitions.policy(name)
            statements = tuple(self._statement(s, address) for s in policy.statements)
            parts.append((name, policy.default, statements))
        return ChainView(tuple(parts))

    def _statement(self, statement: Statement, address: str) -> Hashable:
        conditions = statement.conditions
        if conditions.neighbor_set is not None and not self._peer_matches(conditions, address):
            return None  # never applies to this peer, whatever else it says
        sets = tuple(
            self._sets[kinds].get(match.set_name)
            for field, kinds in _SET_KINDS
            if (match := getattr(conditions, field)) is not None
        )
        return (statement, sets)

    def _peer_matches(self, conditions: Conditions, address: str) -> bool:
        match = conditions.neighbor_set
        assert match is not None
        matcher = self._neighbors.get(match.set_name)
        member = matcher.contains(address) if matcher is not None else False
        return not member if match.option == "invert" else member
