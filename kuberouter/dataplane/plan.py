"""What to change, per address family: the diff of two DesiredStates (incremental apply),
or of a DesiredState and what the kernel holds (repair, cleanup).

A plan names the sets and chains to (re)write, the ones to delete and the jumps from the
built-in chains to add or remove; the back ends turn it into tool input.

Deciding that a programmed object is still right:
- a set is right when the kernel lists the members it should: each back end reads its
  tool's member notation back into ours (`SetListing`) and says what a set of ours should
  list (`set_listing`); the notations are few and plain (an address, "ip,proto:port", a
  CIDR), and so no set has to be read back after it is written, which for the big ones
  would cost more than writing them;
- a chain's rules are spelled by each tool its own way (`-s 10.0.0.1/32`, `--icmp-type
  8`, nft JSON): `Learned` remembers, per chain, the listing the kernel showed right after
  we wrote it, so a repair compares listings instead of re-implementing every tool's
  normal form. A chain we have not seen listed since it last changed counts as drifted
  and is rewritten (once).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import cast

import attrs

from kuberouter.netpol import names
from kuberouter.netpol.ruleset import Chain, DesiredState, Family, IPSet, Rule, Ruleset

TOP_CHAINS = frozenset({"KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT"})
TEMP_SET_PREFIX = "TMP-"  # render_ipset fills a set under this prefix, then swaps it in
_SET_PREFIXES = (names.SRC_SET_PREFIX, names.DST_SET_PREFIX)
_CHAIN_PREFIXES = (names.POD_CHAIN_PREFIX, names.POLICY_CHAIN_PREFIX)
Listing = tuple[str, ...]  # a chain's rules as the kernel lists them
SetListing = tuple[str, frozenset[str]]  # (type and family, members in our notation)
ChainKey = tuple[int, str]  # (family, name)


def is_our_chain(name: str) -> bool:
    return name in TOP_CHAINS or name.startswith(_CHAIN_PREFIXES)


def is_our_set(name: str) -> bool:
    bare = name.removeprefix(names.IPV6_SET_PREFIX)
    if bare.startswith(TEMP_SET_PREFIX):
        return len(bare) == len(TEMP_SET_PREFIX) + 16
    return bare.startswith(_SET_PREFIXES)


@attrs.frozen(kw_only=True)
class Programmed:
    """Our chains and sets as the kernel lists them, and the (family, built-in chain)
    pairs whose first rule leads into our chain."""

    chains: Mapping[ChainKey, Listing] = attrs.field(factory=dict)
    sets: Mapping[tuple[int, str], SetListing] = attrs.field(factory=dict)
    hooks: frozenset[tuple[int, str]] = frozenset()
    # iptables: (family, built-in) -> its rules that lead into our chains, as listed (a
    # repair deletes them all before it puts one jump first).
    jumps: Mapping[tuple[int, str], tuple[str, ...]] = attrs.field(factory=dict)

    def families(self) -> set[int]:
        return {family for family, _ in [*self.chains, *self.sets]}

    def chain_names(self, family: int) -> list[str]:
        return [name for each, name in self.chains if each == family]

    def set_names(self, family: int) -> list[str]:
        return [name for each, name in self.sets if each == family]


@attrs.frozen(kw_only=True)
class FamilyPlan:
    family: Family
    ruleset: Ruleset | None  # the desired ruleset; None when the family goes away
    write_sets: tuple[IPSet, ...] = ()
    delete_sets: tuple[str, ...] = ()
    write_chains: tuple[Chain, ...] = ()
    delete_chains: tuple[str, ...] = ()
    hook: tuple[tuple[str, str], ...] = ()  # (built-in, our chain): put the jump first
    unhook: tuple[str, ...] = ()  # built-in chains to take our jumps out of
    listed_jumps: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)  # Programmed.jumps
    # A repair: the members a read listed of written sets of the right kind (a back end
    # whose member changes are idempotent may add and delete just the difference).
    listed_members: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    # The programmed version of written sets, when known (incremental applies): a back
    # end may then change just the members that differ.
    replaced_sets: Mapping[str, IPSet] = attrs.field(factory=dict)
    # Sets of this family the kernel holds already (a rewrite swaps into them).
    existing_sets: frozenset[str] = frozenset()
    # The programmed version of written chains, when known: a back end may then delete
    # and insert just the rules that differ (`rule_edits`).
    replaced_chains: Mapping[str, Chain] = attrs.field(factory=dict)

    @property
    def empty(self) -> bool:
        return not (
            self.write_sets
            or self.delete_sets
            or self.write_chains
            or self.delete_chains
            or self.hook
            or self.unhook
        )

    def partial(self) -> Ruleset:
        """The desired ruleset cut down to what this plan writes (for the renderers)."""
        base = self.ruleset or Ruleset(
            node="", family=self.family, local_addresses=frozenset(), sets={}, chains={}
        )
        return attrs.evolve(
            base,
            sets={ipset.name: ipset for ipset in self.write_sets},
            chains={chain.name: chain for chain in self.write_chains},
        )


def _family(value: int) -> Family:
    if value not in (4, 6):
        raise ValueError(f"unknown address family {value}")
    return cast(Family, value)


def _changed(new: Mapping[str, object], old: Mapping[str, object]) -> list[str]:
    # The compiler hands unchanged objects over as they were: identity answers most.
    return [
        name for name, value in new.items() if (was := old.get(name)) is not value and was != value
    ]


def member_changes(old: IPSet, new: IPSet) -> tuple[list[str], list[str]] | None:
    """(added, removed) entries from `old` to `new`; None when more than the entries
    differ (type, family or nomatch holes): then the set is rewritten whole."""
    if (old.type, old.family, old.nomatch) != (new.type, new.family, new.nomatch):
        return None
    return new.entries.diff(old.entries)


@attrs.frozen(kw_only=True)
class RuleEdits:
    """Rules to delete from a chain (by what they are, so a chain that drifted makes the
    write fail instead of deleting the wrong rule), then rules to insert, each at its
    1-based position in the new chain, in ascending order: done in that order they turn
    the old chain into the new one."""

    deletes: tuple[Rule, ...]
    inserts: tuple[tuple[int, Rule], ...]


def rule_edits(old: Chain, new: Chain) -> RuleEdits | None:
    """The rule-level edit from `old` to `new`; None when rewriting the chain is as cheap
    (a new pod then costs its own jumps in the top chains, not all the others')."""
    if (old.name, old.hook) != (new.name, new.hook):
        return None
    # Trim the common head and tail first (rules compare field by field, hashing them
    # costs more): one pod's change leaves a short middle to match.
    head = 0
    limit = min(len(old.rules), len(new.rules))
    while head < limit and old.rules[head] == new.rules[head]:
        head += 1
    tail = 0
    while tail < limit - head and old.rules[-1 - tail] == new.rules[-1 - tail]:
        tail += 1
    was = old.rules[head : len(old.rules) - tail]
    now = new.rules[head : len(new.rules) - tail]
    deletes: list[Rule] = []
    inserts: list[tuple[int, Rule]] = []
    opcodes = difflib.SequenceMatcher(None, was, now, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in opcodes:
        if tag in ("replace", "delete"):
            deletes += was[i1:i2]
        if tag in ("replace", "insert"):
            inserts += [(head + j + 1, now[j]) for j in range(j1, j2)]
    if len(deletes) + len(inserts) >= max(len(new.rules), 1):
        return None
    return RuleEdits(deletes=tuple(deletes), inserts=tuple(inserts))


def plan_changes(desired: DesiredState, previous: DesiredState) -> list[FamilyPlan]:
    """What turns `previous` (assumed programmed) into `desired`; unchanged objects are
    left alone."""
    plans = []
    for family in sorted(set(desired.rulesets) | set(previous.rulesets)):
        new, old = desired.rulesets.get(family), previous.rulesets.get(family)
        if new is None:
            assert old is not None
            plan = FamilyPlan(
                family=_family(family),
                ruleset=None,
                delete_sets=tuple(old.sets),
                delete_chains=tuple(old.chains),
                unhook=tuple(builtin for builtin, _ in previous.builtin_jumps),
            )
        else:
            old_sets = old.sets if old else {}
            old_chains = old.chains if old else {}
            changed_sets = _changed(new.sets, old_sets)
            changed_chains = _changed(new.chains, old_chains)
            plan = FamilyPlan(
                family=_family(family),
                ruleset=new,
                write_sets=tuple(new.sets[name] for name in changed_sets),
                replaced_sets={name: old_sets[name] for name in changed_sets if name in old_sets},
                existing_sets=frozenset(old_sets),
                delete_sets=tuple(name for name in old_sets if name not in new.sets),
                write_chains=tuple(new.chains[name] for name in changed_chains),
                replaced_chains={
                    name: old_chains[name] for name in changed_chains if name in old_chains
                },
                delete_chains=tuple(name for name in old_chains if name not in new.chains),
                hook=desired.builtin_jumps if old is None else (),
            )
        if not plan.empty:
            plans.append(plan)
    return plans


SetLister = Callable[[IPSet], SetListing]


def plan_repair(
    desired: DesiredState, programmed: Programmed, learned: Learned, set_listing: SetLister
) -> list[FamilyPlan]:
    """What turns the kernel's state into `desired`: drifted or unknown objects are
    rewritten, objects of ours that are not desired are deleted, missing jumps put back.
    `set_listing`: what the kernel lists for a set of ours that is right. With an empty
    `desired` this is the cleanup plan."""
    plans = []
    for family in sorted(set(desired.rulesets) | programmed.families()):
        plan = _repair_family(_family(family), desired, programmed, learned, set_listing)
        if not plan.empty:
            plans.append(plan)
    return plans


def _repair_family(
    family: Family,
    desired: DesiredState,
    programmed: Programmed,
    learned: Learned,
    set_listing: SetLister,
) -> FamilyPlan:
    ruleset = desired.rulesets.get(family)
    sets = ruleset.sets if ruleset else {}
    chains = ruleset.chains if ruleset else {}
    builtins = tuple(builtin for builtin, _ in desired.builtin_jumps)
    listed: dict[str, frozenset[str]] = {}
    write_sets = []
    for ipset in sets.values():
        found, wanted = programmed.sets.get((family, ipset.name)), set_listing(ipset)
        if found != wanted:
            write_sets.append(ipset)
            if found is not None and found[0] == wanted[0]:
                listed[ipset.name] = found[1]
    return FamilyPlan(
        family=family,
        ruleset=ruleset,
        write_sets=tuple(write_sets),
        listed_members=listed,
        delete_sets=tuple(name for name in programmed.set_names(family) if name not in sets),
        existing_sets=frozenset(programmed.set_names(family)),
        write_chains=tuple(
            chain
            for chain in chains.values()
            if not learned.matches((family, chain.name), chain, programmed.chains)
        ),
        delete_chains=tuple(name for name in programmed.chain_names(family) if name not in chains),
        hook=tuple(
            jump for jump in desired.builtin_jumps if (family, jump[0]) not in programmed.hooks
        )
        if ruleset
        else (),
        unhook=() if ruleset else builtins,
        listed_jumps={
            builtin: lines for (each, builtin), lines in programmed.jumps.items() if each == family
        },
    )


def digest(listing: Iterable[str]) -> str:
    return hashlib.blake2b("\n".join(listing).encode(), digest_size=16).hexdigest()


class Learned:
    """(family, chain name) -> (the chain we wrote, digest of the kernel's listing of it)."""

    def __init__(self) -> None:
        self._seen: dict[ChainKey, tuple[Chain, str]] = {}

    def matches(self, key: ChainKey, wanted: Chain, listings: Mapping[ChainKey, Listing]) -> bool:
        listing = listings.get(key)
        seen = self._seen.get(key)
        if listing is None or seen is None:
            return False
        return seen[0] == wanted and seen[1] == digest(listing)

    def learn(self, desired: DesiredState, listings: Mapping[ChainKey, Listing]) -> None:
        """Remember the listing of every desired chain (call right after writing)."""
        seen: dict[ChainKey, tuple[Chain, str]] = {}
        for family, ruleset in desired.rulesets.items():
            for chain in ruleset.chains.values():
                listing = listings.get((family, chain.name))
                if listing is not None:
                    seen[(family, chain.name)] = (chain, digest(listing))
        self._seen = seen

    def clear(self) -> None:
        self._seen = {}

    def __len__(self) -> int:
        return len(self._seen)


def count(plans: Sequence[FamilyPlan], field: str) -> int:
    return sum(len(getattr(plan, field)) for plan in plans)
