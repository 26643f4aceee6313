"""The nftables service proxy (`--service-proxy-mode=nftables`): our tables
`ip kube-router-proxy-ipv4` and `ip6 kube-router-proxy-ipv6`, laid out by render_nft.

Every write is ONE `nft -f` transaction for both families, so no packet sees half of a
change. An incremental apply renders only the changed Services (old and new) and writes
the difference: map elements deleted and added, a shared chain added the first time a
shape is needed (with its endpoint map), a Service's own affinity chains and timed sets
rewritten or removed.
Shared chains nobody uses any more stay until the next reconcile removes them. A change
of the node facts or of the flags (which every shared chain depends on) is a reconcile.

A reconcile reads both tables (`nft -j list table`), compares every element with the
full rendering and every chain with the kernel's listing of it as last read, and writes
the repair. Reading back after each write would cost a whole listing of the table (the
kernel hands nft every element, seconds at 10,000 Services), so a chain written since the
last read is taken as written when the next read finds it with as many rules as we wrote.
Nothing outside our two tables is ever named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from kuberouter.dataplane.commands import CommandError, Runner
from kuberouter.dataplane.services import SyncStats, changed
from kuberouter.dataplane.services.nft_listing import TableListing, parse_table
from kuberouter.netpol.ruleset import FAMILIES, Family
from kuberouter.proxy.render_nft import (
    Chain,
    Contribution,
    Flavour,
    base_chains,
    contribution,
    declarations,
    flavour,
    node_elements,
    table,
)
from kuberouter.proxy.state import ProxyState, ServicePlan

log = logging.getLogger(__name__)

Elements = dict[str, dict[str, str]]


class Merged:
    """Contributions of several Services, merged."""

    def __init__(self) -> None:
        self.elements: Elements = {}
        self.chains: dict[str, Chain] = {}
        self.sets: dict[str, str] = {}  # name -> declaration ("map { ... }")

    def add_all(self, parts: Iterable[Contribution]) -> None:
        for part in parts:
            for name, values in part.elements.items():
                self.elements.setdefault(name, {}).update(values)
            self.chains.update(part.chains)
            self.sets.update(part.sets)


class Desired(Merged):
    """Everything one family's table holds: the skeleton, the node's elements, and every
    Service's contribution."""

    def __init__(self, state: ProxyState, family: Family) -> None:
        super().__init__()
        self.flavour = flavour(state, family)
        self.sets.update(declarations(family))
        self.chains.update(base_chains(self.flavour))
        self.elements.update({name: {} for name in self.sets})
        self.elements.update(node_elements(state, family))
        for plan in state.services.values():
            self.add_all(contributions(plan, self.flavour))


def contributions(plan: ServicePlan | None, shape: Flavour) -> list[Contribution]:
    if plan is None:
        return []
    return [
        contribution(service, shape)
        for service in plan.virtual_services
        if service.family == shape.family
    ]


def _own(name: str) -> bool:
    """A Service's own chain or set (affinity), removed with it; the others are shared."""
    return name.startswith(("affinity-", "internal-affinity-", "external-affinity-"))


def _picked_map(chain: str) -> str | None:
    """The endpoint map a pick chain uses ("pick-cluster-3" -> "cluster-3")."""
    return chain.removeprefix("pick-") if chain.startswith("pick-") else None


def declare(where: str, name: str, spec: str) -> str:
    kind, body = spec.split(" ", 1)
    return f"add {kind} {where} {name} {body}"


class Script:
    """One transaction's lines, in the order the kernel needs them."""

    def __init__(self) -> None:
        self.prelude: list[str] = []  # maps made anew (see _repair), before anything else
        self.create: list[str] = []  # tables, sets, chains
        self.rules: list[str] = []  # flushes and rules of (re)written chains
        self.delete_elements: list[str] = []
        self.add_elements: list[str] = []
        self.remove: list[str] = []  # flush + delete of chains, then sets, nobody uses
        self.written = 0
        self.deleted = 0

    def lines(self) -> list[str]:
        return [
            *self.prelude,
            *self.create,
            *self.rules,
            *self.delete_elements,
            *self.add_elements,
            *self.remove,
        ]

    def chain(self, where: str, name: str, chain: Chain) -> None:
        spec = f" {{ {chain.header} }}" if chain.header else ""
        self.create.append(f"add chain {where} {name}{spec}")
        self.rules.append(f"flush chain {where} {name}")
        self.rules += [f"add rule {where} {name} {rule}" for rule in chain.rules]
        self.written += 1

    def elements(
        self, where: str, name: str, old: Mapping[str, str], new: Mapping[str, str]
    ) -> None:
        gone = [key for key, value in old.items() if new.get(key) != value]
        come = [key for key, value in new.items() if old.get(key) != value]
        if gone:
            self.delete_elements.append(f"delete element {where} {name} {{ {', '.join(gone)} }}")
        if come:
            text = ", ".join(f"{key} : {new[key]}" if new[key] else key for key in come)
            self.add_elements.append(f"add element {where} {name} {{ {text} }}")
        self.deleted += len(gone)
        self.written += len(come)

    def drop_chain(self, where: str, name: str) -> None:
        self.rules.append(f"flush chain {where} {name}")
        self.remove.append(f"delete chain {where} {name}")
        self.deleted += 1


class NftablesServices:
    def __init__(self, runner: Runner | None = None, families: Iterable[Family] = FAMILIES) -> None:
        self.runner = runner or Runner()
        self.families = tuple(families)
        self.known: dict[Family, dict[str, Chain]] = {}  # chains written, per family
        self.known_sets: dict[Family, set[str]] = {}  # pick maps and affinity sets made
        # chain -> digest of the kernel's listing of it, as last read; chains written since
        # that read are "pending": the next read adopts their listing as what we wrote.
        self.learned: dict[Family, dict[str, str]] = {}
        self.pending: dict[Family, set[str]] = {}

    # -- incremental ----------------------------------------------------------------------

    def apply(self, desired: ProxyState, previous: ProxyState | None = None) -> SyncStats:
        if previous is None or not self._same_base(desired, previous):
            return self.reconcile(desired)
        start, commands = time.perf_counter(), self.runner.count
        script, services, deleted = Script(), 0, 0
        changes = list(changed(desired, previous))
        for family in self._families(desired):
            self._incremental(script, family, desired, previous, changes)
        for _, _, new in changes:
            services, deleted = services + (new is not None), deleted + (new is None)
        try:
            self._run(script)
        except CommandError as error:
            log.warning("incremental service proxy apply failed, repairing: %s", error)
            repaired = self.reconcile(desired)
            return _stats(repaired, start, self.runner.count - commands)
        return SyncStats(
            services_written=services,
            services_deleted=deleted,
            objects_written=script.written,
            objects_deleted=script.deleted,
            commands=self.runner.count - commands,
            seconds=time.perf_counter() - start,
        )

    def _same_base(self, desired: ProxyState, previous: ProxyState) -> bool:
        """Every shared chain stays as it is (else: a reconcile rewrites them)."""
        return desired.config == previous.config and all(
            flavour(desired, family) == flavour(previous, family) for family in FAMILIES
        )

    def _families(self, state: ProxyState) -> tuple[Family, ...]:
        return tuple(family for family in self.families if family in state.config.families)

    def _incremental(
        self,
        script: Script,
        family: Family,
        desired: ProxyState,
        previous: ProxyState,
        changes: list[tuple[str, ServicePlan | None, ServicePlan | None]],
    ) -> None:
        shape, where = flavour(desired, family), table(family)
        old, new = Merged(), Merged()
        if desired.node != previous.node:
            old.elements.update(node_elements(previous, family))
            new.elements.update(node_elements(desired, family))
        for _, before, after in changes:
            old.add_all(contributions(before, shape))
            new.add_all(contributions(after, shape))
        known, made = self.known.setdefault(family, {}), self.known_sets.setdefault(family, set())
        for name, spec in new.sets.items():
            if name not in made:  # a new pick map comes with its pick chain, in this write
                script.create.append(declare(where, name, spec))
                made.add(name)
        for name, chain in new.chains.items():
            if known.get(name) != chain:
                script.chain(where, name, chain)
                known[name] = chain
                self.pending.setdefault(family, set()).add(name)
        for name in set(old.elements) | set(new.elements):
            script.elements(where, name, old.elements.get(name, {}), new.elements.get(name, {}))
        for name in old.chains:
            if name not in new.chains and _own(name):
                script.drop_chain(where, name)
                known.pop(name, None)
        for name in old.sets:
            if name not in new.sets and _own(name):
                script.remove.append(f"delete set {where} {name}")
                made.discard(name)

    # -- repair ---------------------------------------------------------------------------

    def read(self) -> dict[Family, TableListing | None]:
        found: dict[Family, TableListing | None] = {}
        for family in FAMILIES:
            done = self.runner.run(
                "nft", "-j", "list", "table", *table(family).split(), check=False
            )
            found[family] = parse_table(done.stdout) if done.returncode == 0 else None
        return found

    def reconcile(self, desired: ProxyState) -> SyncStats:
        start, commands = time.perf_counter(), self.runner.count
        listings = self.read()
        script = Script()
        wanted = self._families(desired)
        for family in FAMILIES:
            listing = listings[family]
            if family in wanted:
                self._repair(script, family, Desired(desired, family), listing)
            elif listing is not None:
                script.remove.append(f"delete table {table(family)}")
                self.known.pop(family, None)
        self._run(script)
        stats = SyncStats(
            services_written=len(desired.services) if script.written else 0,
            objects_written=script.written,
            objects_deleted=script.deleted,
            repaired=True,
        )
        return _stats(stats, start, self.runner.count - commands)

    def _repair(
        self, script: Script, family: Family, want: Desired, listing: TableListing | None
    ) -> None:
        where = table(family)
        have_sets: Mapping[str, Mapping[str, str] | None] = listing.sets if listing else {}
        have_chains = listing.chains if listing else {}
        learned = self.learned.setdefault(family, {})
        pending = self.pending.setdefault(family, set())
        known = self.known.get(family, {})
        counts = listing.rules if listing else {}
        for name in pending & set(have_chains):
            written = known.get(name)
            # Written by us since the last read, and still as many rules as we wrote: take
            # the kernel's listing as ours (reading it back after each write costs a whole
            # listing of the table, seconds at 10,000 Services).
            if written is not None and written == want.chains.get(name):
                learned[name] = have_chains[name] if counts[name] == len(written.rules) else ""
        pending.clear()
        if listing is None:
            script.create.append(f"add table {where}")
        rewrite = [
            name
            for name in want.chains
            if name not in have_chains or learned.get(name) != have_chains[name]
        ]
        pending.update(rewrite)
        # A pick chain's rule can only be added with its map made in the same write.
        remade = {_picked_map(name) for name in rewrite} & set(have_sets)
        for name in sorted(str(name) for name in remade):
            script.prelude += [f"flush chain {where} pick-{name}", f"delete map {where} {name}"]
        for name, spec in want.sets.items():
            if name not in have_sets or name in remade:
                script.create.append(declare(where, name, spec))
        for name in rewrite:
            script.chain(where, name, want.chains[name])
        for name, elements in want.elements.items():
            have = {} if name in remade else have_sets.get(name) or {}
            script.elements(where, name, have, elements)
        for name in have_chains:
            if name not in want.chains:
                script.drop_chain(where, name)
        unwanted = sorted(set(have_sets) - set(want.sets))
        kinds = listing.kinds if listing else {}
        script.remove += [f"delete {kinds[name]} {where} {name}" for name in unwanted]
        script.deleted += len(unwanted)
        self.known[family] = dict(want.chains)
        self.known_sets[family] = set(want.sets) - set(declarations(family))

    def cleanup(self) -> SyncStats:
        start, commands = time.perf_counter(), self.runner.count
        script = Script()
        for family in FAMILIES:
            script.remove += [f"add table {table(family)}", f"delete table {table(family)}"]
        self._run(script)
        self.known.clear()
        self.learned.clear()
        self.pending.clear()
        return _stats(
            SyncStats(objects_deleted=2, repaired=True), start, self.runner.count - commands
        )

    def _run(self, script: Script) -> None:
        lines = script.lines()
        if lines:
            self.runner.run("nft", "-f", "-", input="\n".join(lines) + "\n")


def _stats(stats: SyncStats, start: float, commands: int) -> SyncStats:
    return SyncStats(
        services_written=stats.services_written,
        services_deleted=stats.services_deleted,
        objects_written=stats.objects_written,
        objects_deleted=stats.objects_deleted,
        commands=commands,
        seconds=time.perf_counter() - start,
        repaired=True,
    )
