"""The iptables + ipset back end (legacy or nft variant of iptables, picked like upstream).

One apply runs at most: `ipset restore` (new and changed sets, swapped in), one
`iptables-restore --noflush` and one `ip6tables-restore --noflush` (only our chains:
`:CHAIN - [0:0]` flushes just that chain, then its rules; a chain whose programmed
version is known and that changed by fewer rules than it holds, as a top chain when a pod
comes or goes, gets `-D`/`-I` of those rules instead; chains no longer wanted are
flushed and `-X`ed; jumps from INPUT/FORWARD/OUTPUT inserted or removed in the same
transaction), and an `ipset restore` that destroys sets no rule uses any more. Nothing
else in the table is named, so other tools' chains and rules stay.

The jumps into KUBE-ROUTER-INPUT/FORWARD/OUTPUT are kept as the first rule of their
built-in chain (as upstream): a repair reads `iptables-save -t filter` and re-inserts a
jump that is missing or no longer first, dropping stray copies.

Variant: like Kubernetes' iptables-wrapper, the variant holding the KUBE-IPTABLES-HINT or
KUBE-KUBELET-CANARY chain wins, else the one with more rules; nft when tied or unknown.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.firewall import NOTHING, ApplyStats, PlannedBackend, Usage
from kuberouter.dataplane.ipset import Ipset, set_listing
from kuberouter.dataplane.plan import (
    ChainKey,
    FamilyPlan,
    Learned,
    Listing,
    Programmed,
    SetListing,
    is_our_chain,
    plan_repair,
    rule_edits,
)
from kuberouter.netpol.render import iptables_rule, render_iptables
from kuberouter.netpol.ruleset import Chain, IPSet

Variant = Literal["legacy", "nft"]
VARIANTS: tuple[Variant, ...] = ("nft", "legacy")
BUILTINS = ("INPUT", "FORWARD", "OUTPUT")
JUMP_COMMENT = '-m comment --comment "kube-router netpol"'
_HINTS = ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY")


def detect_variant(runner: Runner) -> Variant:
    """Which iptables the node uses: hint chains first, then rule counts, nft by default."""
    rules: dict[Variant, int] = {}
    for variant in VARIANTS:
        try:
            done = runner.run(f"iptables-{variant}-save", check=False)
        except FileNotFoundError:
            continue
        if done.returncode != 0:
            continue
        if any(f":{hint} " in done.stdout for hint in _HINTS):
            return variant
        rules[variant] = done.stdout.count("\n-A ")
    if rules.get("legacy", -1) > rules.get("nft", -1):
        return "legacy"
    return "nft"


def jump_target(rule: str) -> str | None:
    """The -j target of a saved rule line (comments may hold anything, so tokenize)."""
    try:
        words = shlex.split(rule)
    except ValueError:
        words = rule.split()
    for position, word in enumerate(words[:-1]):
        if word in ("-j", "--jump"):
            return words[position + 1]
    return None


def parse_save(text: str) -> dict[str, list[str]]:
    """The filter table of an iptables-save: chain -> its "-A ..." lines, in order."""
    chains: dict[str, list[str]] = {}
    in_filter = False
    for line in text.splitlines():
        if line.startswith("*"):
            in_filter = line == "*filter"
        elif not in_filter:
            continue
        elif line.startswith(":"):
            chains.setdefault(line[1:].split(" ", 1)[0], [])
        elif line.startswith("-A "):
            chains.setdefault(line.split(" ", 2)[1], []).append(line)
    return chains


class IptablesBackend(PlannedBackend):
    def __init__(
        self, runner: Runner | None = None, *, variant: Variant | None = None, wait: bool = True
    ) -> None:
        super().__init__()
        self.runner = runner or Runner()
        self.variant: Variant = variant or detect_variant(self.runner)
        self.wait = wait
        self.ipset = Ipset(self.runner)

    def tool(self, family: int, action: Literal["save", "restore"]) -> str:
        return f"{'ip6tables' if family == 6 else 'iptables'}-{self.variant}-{action}"

    def usage(self) -> Usage:
        return Usage(commands=self.runner.count, tool_seconds=dict(self.runner.seconds_by_tool))

    def read(self) -> Programmed:
        return attrs.evolve(self._read_tables(), sets=self.ipset.read())

    def read_chains(self) -> Mapping[ChainKey, Listing]:
        return self._read_tables().chains

    def set_listing(self, ipset: IPSet) -> SetListing:
        return set_listing(ipset)

    def _read_tables(self) -> Programmed:
        """Our chains, the built-ins whose first rule jumps to ours and every rule of theirs
        that does, both families (no sets)."""
        chains: dict[ChainKey, Listing] = {}
        hooks: set[tuple[int, str]] = set()
        found: dict[tuple[int, str], tuple[str, ...]] = {}
        for family in (4, 6):
            saved = parse_save(self.runner.run(self.tool(family, "save"), "-t", "filter").stdout)
            for name, rules in saved.items():
                if is_our_chain(name):
                    chains[(family, name)] = tuple(rules)
            for builtin in BUILTINS:
                rules = saved.get(builtin, [])
                jumps = [rule for rule in rules if is_our_chain(jump_target(rule) or "")]
                found[(family, builtin)] = tuple(jumps)
                first = jump_target(rules[0]) if rules else None
                if jumps == rules[:1] and first == f"KUBE-ROUTER-{builtin}":
                    hooks.add((family, builtin))
        return Programmed(chains=chains, hooks=frozenset(hooks), jumps=found)

    def remove_chains(self) -> ApplyStats:
        """Our chains and the jumps to them, both families; our ipsets stay, as the other
        variant's rules may still use them (`dataplane.cleanup` destroys them last)."""
        start = self.usage()
        plans = plan_repair(NOTHING, self._read_tables(), Learned(), self.set_listing)
        if plans:
            self._execute(plans)
        self.learned.clear()
        return ApplyStats.of(plans, self.usage().since(start), repaired=True)

    def _execute(self, plans: Sequence[FamilyPlan]) -> None:
        replaced = {name: old for plan in plans for name, old in plan.replaced_sets.items()}
        replaced.update(_listed_sets(plans))
        existing = {name for plan in plans for name in plan.existing_sets}
        writes = [ipset for plan in plans for ipset in plan.write_sets]
        self.ipset.write(writes, replaced, existing)
        for plan in plans:
            text = self.restore_text(plan)
            if text is not None:
                args = ["--noflush", *(["-w"] if self.wait else [])]
                self.runner.run(self.tool(plan.family, "restore"), *args, input=text)
        self.ipset.destroy(name for plan in plans for name in plan.delete_sets)

    def restore_text(self, plan: FamilyPlan) -> str | None:
        """The iptables-restore --noflush input for one family's plan (None: nothing to do)."""
        if not (plan.write_chains or plan.delete_chains or plan.hook or plan.unhook):
            return None
        edits, whole = _edit_lines(plan)
        partial = attrs.evolve(plan.partial(), chains={chain.name: chain for chain in whole})
        lines = render_iptables(partial, plan.delete_chains).splitlines()
        body = [line for line in lines[:-1] if not line.startswith("-X ")]
        drops = [line for line in lines if line.startswith("-X ")]
        return "\n".join([*body, *edits, *self._jump_lines(plan), *drops, "COMMIT"]) + "\n"

    def _jump_lines(self, plan: FamilyPlan) -> list[str]:
        lines: list[str] = []
        for builtin in dict.fromkeys([*(builtin for builtin, _ in plan.hook), *plan.unhook]):
            known = plan.listed_jumps.get(builtin)
            if known is not None:
                lines += ["-D" + line[2:] for line in known]
            elif builtin in plan.unhook:
                target = f"KUBE-ROUTER-{builtin}"
                lines.append(f"-D {builtin} {JUMP_COMMENT} -j {target}")
        for builtin, target in plan.hook:
            lines.append(f"-I {builtin} 1 {JUMP_COMMENT} -j {target}")
        return lines


def _edit_lines(plan: FamilyPlan) -> tuple[list[str], list[Chain]]:
    """`-D`/`-I` lines for the written chains whose programmed version is known and that
    changed by fewer rules than they hold (a new pod: its jumps in the top chains), and
    the chains to write whole. A rule is deleted by its text: if the chain is not what we
    programmed the restore fails, and the apply falls back to a repair."""
    lines: list[str] = []
    whole: list[Chain] = []
    for chain in plan.write_chains:
        old = plan.replaced_chains.get(chain.name)
        edits = rule_edits(old, chain) if old is not None else None
        if edits is None:
            whole.append(chain)
            continue
        for rule in edits.deletes:
            lines.append("-D" + iptables_rule(chain.name, rule, plan.family)[2:])
        for position, rule in edits.inserts:
            text = iptables_rule(chain.name, rule, plan.family)[2:]
            lines.append(f"-I {chain.name} {position}{text[len(chain.name) + 1 :]}")
    return lines, whole


def _listed_sets(plans: Sequence[FamilyPlan]) -> dict[str, IPSet]:
    """A repair's sets as the read listed them, but hash:net ones (their holes): `add`/`del`
    with -exist then change just what differs, even when the read is a little older than
    the last update."""
    return {
        ipset.name: attrs.evolve(ipset, entries=plan.listed_members[ipset.name])
        for plan in plans
        for ipset in plan.write_sets
        if ipset.name in plan.listed_members and ipset.type != "hash:net"
    }
