"""Removing everything the firewall ever created, for `kube-router --cleanup-config`.

The agent may have run with either iptables variant or with nftables (or each, at
different times), so all are cleaned: first our chains and the jumps into them, in both
variants and both families; then our ipsets, once no rule uses them any more (a set in
use cannot be destroyed); then our nftables tables. Only our own names are touched
(`plan.is_our_chain`, `plan.is_our_set`, our two tables): other tools' chains, rules,
sets and tables stay. A part whose tools are missing is skipped; a part that fails is
reported and the others still run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import attrs

from kuberouter.dataplane.commands import CommandError, Runner
from kuberouter.dataplane.ipset import Ipset
from kuberouter.dataplane.iptables import VARIANTS, IptablesBackend, Variant
from kuberouter.dataplane.nftables import NftablesBackend

Which = Callable[[str], str | None]


@attrs.frozen(kw_only=True)
class CleanupReport:
    """One line per part: what was removed, skipped (and why), or failed (and how)."""

    done: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


def cleanup_firewall(runner: Runner | None = None, which: Which = shutil.which) -> CleanupReport:
    runner = runner or Runner()
    done: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    parts: list[tuple[str, tuple[str, ...], Callable[[], str]]] = [
        (f"iptables-{variant}", _iptables_tools(variant), _chains_of(runner, variant))
        for variant in VARIANTS
    ]
    parts += [
        ("ipset", ("ipset",), lambda: _destroy_sets(runner)),
        ("nftables", ("nft",), lambda: _drop_tables(runner)),
    ]
    for name, tools, remove in parts:
        missing = [tool for tool in tools if which(tool) is None]
        if missing:
            skipped.append(f"{name}: {', '.join(missing)} not found")
            continue
        try:
            done.append(f"{name}: {remove()}")
        except (CommandError, OSError) as error:
            failed.append(f"{name}: {error}")
    return CleanupReport(done=tuple(done), skipped=tuple(skipped), failed=tuple(failed))


def _iptables_tools(variant: str) -> tuple[str, ...]:
    return tuple(
        f"{command}-{variant}-{action}"
        for command in ("iptables", "ip6tables")
        for action in ("save", "restore")
    )


def _chains_of(runner: Runner, variant: Variant) -> Callable[[], str]:
    def remove() -> str:
        backend = IptablesBackend(runner, variant=variant)
        stats = backend.remove_chains()
        return f"{stats.chains_deleted} chains removed"

    return remove


def _destroy_sets(runner: Runner) -> str:
    ipset = Ipset(runner)
    names = sorted({name for _, name in ipset.read()})
    ipset.destroy(names)
    return f"{len(names)} sets destroyed"


def _drop_tables(runner: Runner) -> str:
    stats = NftablesBackend(runner).cleanup()
    return f"{stats.chains_deleted} chains and {stats.sets_deleted} sets removed"
