"""An in-memory firewall back end for controller unit tests.

It runs the same planning as the real back ends (so ApplyStats count the same writes)
and keeps what was "programmed" as the compiler's own objects. Tests can make drift
happen (`drop_chain`, `drop_member`, `drop_hook`), make the next write fail
(`fail_next`), and check the result with `holds(desired)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from kuberouter.dataplane.commands import CommandError
from kuberouter.dataplane.firewall import PlannedBackend, Usage
from kuberouter.dataplane.plan import ChainKey, FamilyPlan, Listing, Programmed, SetListing
from kuberouter.netpol.ruleset import Chain, DesiredState, IPSet


class FakeBackend(PlannedBackend):
    def __init__(self) -> None:
        super().__init__()
        self.chains: dict[tuple[int, str], Chain] = {}
        self.sets: dict[tuple[int, str], IPSet] = {}
        self.hooks: set[tuple[int, str]] = set()
        self.executed: list[list[FamilyPlan]] = []  # every write, in order
        self.reads = 0
        self.fail_next: str | None = None  # message of a CommandError for the next write

    def usage(self) -> Usage:
        return Usage(commands=self.reads + len(self.executed))

    def read(self) -> Programmed:
        self.reads += 1
        return Programmed(
            chains={key: _chain_listing(chain) for key, chain in self.chains.items()},
            sets={key: self.set_listing(ipset) for key, ipset in self.sets.items()},
            hooks=frozenset(self.hooks),
        )

    def read_chains(self) -> Mapping[ChainKey, Listing]:
        self.reads += 1
        return {key: _chain_listing(chain) for key, chain in self.chains.items()}

    def set_listing(self, ipset: IPSet) -> SetListing:
        holes = (f"{entry} nomatch" for entry in ipset.nomatch)
        return ipset.type, frozenset([*ipset.entries, *holes])

    def _execute(self, plans: Sequence[FamilyPlan]) -> None:
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            raise CommandError(["fake"], 1, message, None)
        self.executed.append(list(plans))
        for plan in plans:
            family = plan.family
            for ipset in plan.write_sets:
                self.sets[(family, ipset.name)] = ipset
            for chain in plan.write_chains:
                self.chains[(family, chain.name)] = chain
            for name in plan.delete_chains:
                self.chains.pop((family, name), None)
            for name in plan.delete_sets:
                self.sets.pop((family, name), None)
            for builtin in plan.unhook:
                self.hooks.discard((family, builtin))
            self.hooks.update((family, builtin) for builtin, _ in plan.hook)

    # -- checks and drift for tests ---------------------------------------------------

    def holds(self, desired: DesiredState) -> bool:
        """Exactly `desired` is programmed: same chains, sets and hooks, nothing else."""
        chains = {
            (family, name): chain
            for family, ruleset in desired.rulesets.items()
            for name, chain in ruleset.chains.items()
        }
        sets = {
            (family, name): ipset
            for family, ruleset in desired.rulesets.items()
            for name, ipset in ruleset.sets.items()
        }
        hooks = {
            (family, builtin) for family in desired.rulesets for builtin, _ in desired.builtin_jumps
        }
        return self.chains == chains and self.sets == sets and self.hooks == hooks

    def drop_chain(self, family: int, name: str) -> None:
        del self.chains[(family, name)]

    def drop_member(self, family: int, name: str, entry: str) -> None:
        ipset = self.sets[(family, name)]
        self.sets[(family, name)] = attrs.evolve(
            ipset, entries=ipset.entries.changed(removed=[entry])
        )

    def drop_hook(self, family: int, builtin: str) -> None:
        self.hooks.discard((family, builtin))


def _chain_listing(chain: Chain) -> Listing:
    return tuple(repr(rule) for rule in chain.rules)
