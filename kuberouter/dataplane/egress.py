"""Pod egress in the kernel: our two sets per family through `ipset restore`, our NAT rule
through iptables (the variant the node uses, as the firewall picks it).

- `apply(desired, previous)`: with `previous` (what the last apply programmed) only the
  set members that changed are added or deleted, in one `ipset restore`; with None (or
  when that write fails) a repair: the kernel is read and made to match.
- A repair fills a set that differs under a temporary name and swaps it in (a packet sees
  the old or the new members), appends our rule where `-C` does not find it, deletes old
  forms of it, and removes our rule and sets from families no longer wanted.
- `cleanup()`: our rule (every form, both iptables variants) and then our sets.
Only our rule texts and our set names are ever touched.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import attrs

from kuberouter.dataplane.cleanup import CleanupReport, Which
from kuberouter.dataplane.commands import CommandError, Runner
from kuberouter.dataplane.ipset import parse_save
from kuberouter.dataplane.iptables import VARIANTS, Variant, detect_variant
from kuberouter.dataplane.plan import member_changes
from kuberouter.netpol.ruleset import FAMILIES, IPSet
from kuberouter.podnet.egress import (
    CHAIN,
    NO_EGRESS,
    NODE_IPS_SET,
    POD_SUBNETS_SET,
    TABLE,
    EgressState,
    every_rule,
    masquerade_rule,
    set_name,
    stale_rules,
)

log = logging.getLogger(__name__)

OUR_SETS = frozenset(
    set_name(name, f) for name in (POD_SUBNETS_SET, NODE_IPS_SET) for f in FAMILIES
)
TEMP_SET = "kube-router-egress-tmp"  # not a firewall name: its repairs leave it alone
SET_OPTIONS = "timeout 0"  # as upstream creates these sets, so `create -exist` matches theirs
_VERSION = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
_IN_USE_RETRIES = 10  # a set just released by a rule may still be busy for a moment


@attrs.frozen(kw_only=True)
class EgressStats:
    sets_written: int = 0  # filled whole and swapped in
    members_changed: int = 0  # single adds and deletes
    rules_added: int = 0
    rules_deleted: int = 0
    sets_destroyed: int = 0
    commands: int = 0
    repaired: bool = False

    @property
    def changed(self) -> bool:
        counts = (self.sets_written, self.members_changed, self.rules_added, self.rules_deleted)
        return any(counts) or bool(self.sets_destroyed)

    def describe(self) -> str:
        parts = [
            f"{self.sets_written} sets written" if self.sets_written else "",
            f"{self.members_changed} members changed" if self.members_changed else "",
            f"{self.rules_added} rules added" if self.rules_added else "",
            f"{self.rules_deleted} rules deleted" if self.rules_deleted else "",
            f"{self.sets_destroyed} sets destroyed" if self.sets_destroyed else "",
        ]
        return ", ".join(part for part in parts if part) or "unchanged"


class EgressBackend(Protocol):
    def apply(self, desired: EgressState, previous: EgressState | None = None) -> EgressStats:
        """Program `desired`, given that `previous` is what the last apply programmed."""
        ...

    def cleanup(self) -> EgressStats:
        """Remove our rule and sets."""
        ...


def has_random_fully(runner: Runner, variant: Variant) -> bool:
    """iptables 1.6.2 and later have MASQUERADE --random-fully."""
    try:
        found = _VERSION.search(runner.run(f"iptables-{variant}", "--version").stdout)
    except (CommandError, OSError):
        return False
    return found is not None and tuple(map(int, found.groups())) >= (1, 6, 2)


class IptablesEgress:
    def __init__(
        self,
        runner: Runner | None = None,
        *,
        variant: Variant | None = None,
        random_fully: bool | None = None,
    ) -> None:
        self.runner = runner or Runner()
        self.variant: Variant = variant or detect_variant(self.runner)
        if random_fully is None:
            random_fully = has_random_fully(self.runner, self.variant)
        self.random_fully = random_fully
        self._counts: dict[str, int] = {}

    def apply(self, desired: EgressState, previous: EgressState | None = None) -> EgressStats:
        if previous is None or set(previous.families) != set(desired.families):
            return self.repair(desired)
        return self._counted(lambda: self._incremental(desired, previous), repaired=False)

    def repair(self, desired: EgressState) -> EgressStats:
        return self._counted(lambda: self._repair(desired), repaired=True)

    def cleanup(self) -> EgressStats:
        return self.repair(NO_EGRESS)

    def remove_rules(self) -> EgressStats:
        """Every form of our rule, both families; the sets stay (see cleanup_egress)."""

        def remove() -> None:
            for family in FAMILIES:
                self._delete_rules(family, every_rule(family))

        return self._counted(remove, repaired=True)

    def destroy_sets(self) -> EgressStats:
        return self._counted(lambda: self._destroy(sorted(self.read_sets())), repaired=True)

    # -- the work ------------------------------------------------------------------------

    def _incremental(self, desired: EgressState, previous: EgressState) -> None:
        lines: list[str] = []
        for family, wanted in desired.families.items():
            before = previous.families[family]
            for old, new in ((before.pod_subnets, wanted.pod_subnets),
                             (before.node_ips, wanted.node_ips)):  # fmt: skip
                lines += _member_lines(old, new)
        if not lines:
            return
        try:
            self._ipset_restore(lines)
        except CommandError as error:
            log.warning("incremental egress update failed, repairing: %s", error)
            self._repair(desired)
            return
        self._count("members_changed", len(lines))

    def _repair(self, desired: EgressState) -> None:
        found = self.read_sets()
        lines: list[str] = []
        for wanted in desired.families.values():
            for ipset in (wanted.pod_subnets, wanted.node_ips):
                if found.get(ipset.name) != (ipset.type, set(ipset.entries)):
                    lines += _fill_lines(ipset)
                    self._count("sets_written")
        if lines:
            self._ipset_restore(lines)
        for family in FAMILIES:
            if family in desired.families:
                self._ensure_rule(family)
            else:
                self._delete_rules(family, every_rule(family))
        gone = [name for name in sorted(found) if _family_of_set(name) not in desired.families]
        self._destroy(gone)

    def _ensure_rule(self, family: int) -> None:
        self._delete_rules(family, stale_rules(family, random_fully=self.random_fully))
        rule = masquerade_rule(family, random_fully=self.random_fully)
        if not self._exists(family, rule):
            self._iptables(family, "-A", rule)
            self._count("rules_added")

    def _delete_rules(self, family: int, rules: Iterable[tuple[str, ...]]) -> None:
        for rule in rules:
            for _ in range(10):  # copies, if someone added the same rule again
                if not self._exists(family, rule):
                    break
                self._iptables(family, "-D", rule)
                self._count("rules_deleted")

    def _destroy(self, names: Sequence[str]) -> None:
        """Destroy sets once no rule uses them (the kernel may release them a moment late)."""
        for name in names:
            for attempt in range(_IN_USE_RETRIES):
                try:
                    self._ipset_restore([f"destroy {name}"])
                    break
                except CommandError as error:
                    if "in use" not in error.stderr or attempt == _IN_USE_RETRIES - 1:
                        raise
                    time.sleep(0.1)
            self._count("sets_destroyed")

    # -- reading and running ---------------------------------------------------------------

    def read_sets(self) -> dict[str, tuple[str, set[str]]]:
        """Our sets as the kernel holds them: name -> (type, members)."""
        try:
            text = self.runner.run("ipset", "save").stdout
        except FileNotFoundError:  # no ipset on this node: no sets of ours either
            return {}
        listed = parse_save(text, keep=OUR_SETS.__contains__)
        return {
            name: (header.split()[0], {member.split()[0] for member in members})
            for (_, name), (header, members) in listed.items()
        }

    def _exists(self, family: int, rule: tuple[str, ...]) -> bool:
        """`iptables -C`; a rule naming a set that does not exist is not there either."""
        try:
            done = self.runner.run(*self._command(family, "-C", rule), check=False)
        except OSError:  # the tool is missing: nothing of ours can be there
            return False
        return done.returncode == 0

    def _iptables(self, family: int, action: str, rule: tuple[str, ...]) -> None:
        self.runner.run(*self._command(family, action, rule))

    def _command(self, family: int, action: str, rule: tuple[str, ...]) -> list[str]:
        tool = f"{'ip6tables' if family == 6 else 'iptables'}-{self.variant}"
        return [tool, "-w", "-t", TABLE, action, CHAIN, *rule]

    def _ipset_restore(self, lines: Sequence[str]) -> None:
        text = "".join(f"{line}\n" for line in lines)
        self.runner.run("ipset", "-exist", "restore", input=text)

    def _count(self, what: str, n: int = 1) -> None:
        self._counts[what] = self._counts.get(what, 0) + n

    def _counted(self, work: Callable[[], None], *, repaired: bool) -> EgressStats:
        self._counts, start = {}, self.runner.count
        work()
        return EgressStats(commands=self.runner.count - start, repaired=repaired, **self._counts)


def _member_lines(old: IPSet, new: IPSet) -> list[str]:
    delta = member_changes(old, new)
    if delta is None:  # type or family changed: cannot happen for our fixed sets
        raise ValueError(f"set {new.name} changed type")
    added, removed = delta
    return [f"add {new.name} {e}" for e in added] + [f"del {new.name} {e}" for e in removed]


def _fill_lines(ipset: IPSet) -> list[str]:
    create = f"{ipset.type} family {'inet6' if ipset.family == 6 else 'inet'} {SET_OPTIONS}"
    return [
        f"destroy {TEMP_SET}",  # left over from a crash, maybe of another type
        f"create {TEMP_SET} {create}",
        *(f"add {TEMP_SET} {entry}" for entry in ipset.entries),
        f"create {ipset.name} {create}",
        f"swap {TEMP_SET} {ipset.name}",
        f"destroy {TEMP_SET}",
    ]


def _family_of_set(name: str) -> int:
    return 6 if name.startswith("inet6:") else 4


def cleanup_egress(runner: Runner | None = None, which: Which = shutil.which) -> CleanupReport:
    """--cleanup-config: our rule from both iptables variants, then our sets (a set
    cannot be destroyed while a rule of either variant uses it)."""
    runner = runner or Runner()
    if which("ipset") is None:
        return CleanupReport(skipped=("egress: ipset not found",))
    done: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    backend = None
    for variant in VARIANTS:
        if which(f"iptables-{variant}") is None:
            skipped.append(f"egress iptables-{variant}: not found")
            continue
        backend = IptablesEgress(runner, variant=variant, random_fully=True)
        try:
            done.append(f"egress iptables-{variant}: {backend.remove_rules().describe()}")
        except (CommandError, OSError) as error:
            failed.append(f"egress iptables-{variant}: {error}")
    if backend is not None and not failed:
        try:
            done.append(f"egress ipset: {backend.destroy_sets().describe()}")
        except (CommandError, OSError) as error:
            failed.append(f"egress ipset: {error}")
    return CleanupReport(done=tuple(done), skipped=tuple(skipped), failed=tuple(failed))
