"""The firewall data plane behind one small Protocol, and the apply/repair loop the back
ends share.

- `apply(desired, previous)`: program the difference between two DesiredStates; only the
  sets and chains that changed are written, removed ones deleted (rules before the chains
  they jump to, sets after the rules that use them). `previous=None` means "unknown":
  a repair from what the kernel holds. If the incremental write fails (someone changed
  the kernel under us), the apply falls back to a repair.
- `reconcile(desired)`: read what is programmed, rewrite what drifted (a chain deleted by
  hand, a missing jump, a set member removed), delete what is ours but not desired; then
  read the chains back and `learn` their listings (`learn=False` leaves that for a later
  `learn(desired)`: with large sets nft lists every element to list a chain, which would
  double the cost of a full sync; the agent learns once it is idle).
- `read()`: our chains and sets only, as the kernel lists them (`plan.Programmed`).
- `cleanup()`: remove everything of ours and nothing else.

Back ends implement `read`, `read_chains` (the chains alone, cheap: read back after a
repair wrote chains, to learn their listings), `set_listing` (what a set of ours that is
right lists) and `_execute(plans)`; `FakeBackend` does it in memory.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from kuberouter.dataplane.commands import CommandError
from kuberouter.dataplane.plan import (
    ChainKey,
    FamilyPlan,
    Learned,
    Listing,
    Programmed,
    SetListing,
    count,
    plan_changes,
    plan_repair,
)
from kuberouter.netpol.ruleset import DesiredState, IPSet

log = logging.getLogger(__name__)

NOTHING = DesiredState(node="", rulesets={})


@attrs.frozen(kw_only=True)
class ApplyStats:
    """What one apply, reconcile or cleanup did (for metrics and tests)."""

    sets_written: int = 0
    sets_deleted: int = 0
    chains_written: int = 0
    chains_deleted: int = 0
    hooks_fixed: int = 0
    commands: int = 0  # tool invocations, reads included
    seconds: float = 0.0
    repaired: bool = False  # the kernel was read and repaired (not a pure incremental apply)
    tool_seconds: Mapping[str, float] = attrs.field(factory=dict)  # tool -> time spent

    @property
    def changed(self) -> bool:
        return bool(
            self.sets_written
            or self.sets_deleted
            or self.chains_written
            or self.chains_deleted
            or self.hooks_fixed
        )

    @classmethod
    def of(cls, plans: Sequence[FamilyPlan], usage: Usage, *, repaired: bool) -> ApplyStats:
        return cls(
            sets_written=count(plans, "write_sets"),
            sets_deleted=count(plans, "delete_sets"),
            chains_written=count(plans, "write_chains"),
            chains_deleted=count(plans, "delete_chains"),
            hooks_fixed=count(plans, "hook"),
            commands=usage.commands,
            seconds=usage.seconds,
            repaired=repaired,
            tool_seconds=usage.tool_seconds,
        )


@attrs.frozen(kw_only=True)
class Usage:
    """Tool calls and time, as a running total or as the difference of two totals."""

    commands: int = 0
    seconds: float = attrs.field(factory=time.perf_counter)
    tool_seconds: Mapping[str, float] = attrs.field(factory=dict)

    def since(self, start: Usage) -> Usage:
        tools = {
            tool: spent - start.tool_seconds.get(tool, 0.0)
            for tool, spent in self.tool_seconds.items()
            if spent != start.tool_seconds.get(tool, 0.0)
        }
        return Usage(
            commands=self.commands - start.commands,
            seconds=self.seconds - start.seconds,
            tool_seconds=tools,
        )


class FirewallBackend(Protocol):
    def apply(self, desired: DesiredState, previous: DesiredState | None = None) -> ApplyStats:
        """Program `desired`, given that `previous` is what the last apply programmed."""
        ...

    def reconcile(
        self, desired: DesiredState, *, learn: bool = True, found: Programmed | None = None
    ) -> ApplyStats:
        """Read the kernel and repair every difference from `desired`. `found`: what an
        earlier `read` returned, to repair from instead of reading now (what changed since
        is rewritten: the kernel ends up as desired all the same)."""
        ...

    def learn(self, desired: DesiredState) -> None:
        """Read our chains and remember their listings (`desired` is programmed)."""
        ...

    def read(self) -> Programmed:
        """Our chains and sets as programmed now."""
        ...

    def cleanup(self) -> ApplyStats:
        """Remove all of our chains, jumps and sets; leave everything else."""
        ...


class PlannedBackend(abc.ABC):
    """apply/reconcile/cleanup over `read` + `_execute`, shared by every back end."""

    def __init__(self) -> None:
        self.learned = Learned()

    @abc.abstractmethod
    def read(self) -> Programmed: ...

    @abc.abstractmethod
    def read_chains(self) -> Mapping[ChainKey, Listing]:
        """Our chains as the kernel lists them (what `read` says of them, sets left out)."""

    @abc.abstractmethod
    def set_listing(self, ipset: IPSet) -> SetListing:
        """What `read` lists for `ipset` when the kernel holds exactly it."""

    @abc.abstractmethod
    def _execute(self, plans: Sequence[FamilyPlan]) -> None:
        """Carry the plans out; sets first, then chains, then deletions of sets."""

    def usage(self) -> Usage:
        """Running totals of tool calls (back ends that run tools override this)."""
        return Usage()

    def apply(self, desired: DesiredState, previous: DesiredState | None = None) -> ApplyStats:
        if previous is None:
            return self.reconcile(desired)
        start = self.usage()
        plans = plan_changes(desired, previous)
        if plans:
            try:
                self._execute(plans)
            except CommandError as error:
                log.warning("incremental firewall apply failed, repairing: %s", error)
                repaired = self.reconcile(desired)
                total = self.usage().since(start)  # the failed attempt included
                return attrs.evolve(
                    repaired,
                    commands=total.commands,
                    seconds=total.seconds,
                    tool_seconds=total.tool_seconds,
                )
        return ApplyStats.of(plans, self.usage().since(start), repaired=False)

    def reconcile(
        self, desired: DesiredState, *, learn: bool = True, found: Programmed | None = None
    ) -> ApplyStats:
        start = self.usage()
        programmed = self.read() if found is None else found
        plans = plan_repair(desired, programmed, self.learned, self.set_listing)
        if plans:
            self._execute(plans)
        if not any(plan.write_chains for plan in plans):
            self.learned.learn(desired, programmed.chains)  # what was read is still so
        elif learn:
            self.learn(desired)
        return ApplyStats.of(plans, self.usage().since(start), repaired=True)

    def learn(self, desired: DesiredState) -> None:
        self.learned.learn(desired, self.read_chains())

    def cleanup(self) -> ApplyStats:
        stats = self.reconcile(NOTHING)
        self.learned.clear()
        return stats
