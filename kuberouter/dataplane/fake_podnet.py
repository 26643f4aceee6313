"""In-memory pod-network back ends for controller unit tests: kube-bridge and egress.

They keep what was "programmed" and count the writes, so a test can tell a sync that
changed nothing from one that rewrote things; `fail_next` makes the next write fail and
`drop_member` makes drift for a repair to find.
"""

from __future__ import annotations

import attrs

from kuberouter.dataplane.commands import CommandError
from kuberouter.dataplane.egress import EgressStats
from kuberouter.netpol.ruleset import IPSet
from kuberouter.podnet.bridge import BridgeSpec
from kuberouter.podnet.egress import EgressState


class FakeBridge:
    def __init__(self, *, node_mtus: dict[str, int] | None = None) -> None:
        self.bridges: dict[str, BridgeSpec] = {}
        self.ports: dict[str, bool] = {}  # port -> hairpin on
        self.node_mtus = dict(node_mtus or {})
        self.writes = 0

    def ensure(self, spec: BridgeSpec) -> tuple[str, ...]:
        old = self.bridges.get(spec.name)
        mtu = spec.mtu if spec.mtu is not None else (old.mtu if old else None)
        new = attrs.evolve(spec, mtu=mtu)
        if old == new:
            return ()
        self.bridges[spec.name], self.writes = new, self.writes + 1
        return (f"{spec.name}: {new}",)

    def set_hairpin(self, name: str) -> int:
        off = [port for port, on in self.ports.items() if not on] if name in self.bridges else []
        self.ports.update(dict.fromkeys(off, True))
        return len(off)

    def node_mtu(self, address: str) -> int | None:
        return self.node_mtus.get(address)


class FakeEgress:
    def __init__(self) -> None:
        self.sets: dict[str, IPSet] = {}
        self.rules: set[int] = set()  # families holding our rule
        self.applies: list[EgressStats] = []
        self.fail_next: str | None = None

    def apply(self, desired: EgressState, previous: EgressState | None = None) -> EgressStats:
        """Like the real one: with `previous`, only the members that differ between the
        two states are written (drift elsewhere stays); without, a full repair."""
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            raise CommandError(["fake"], 1, message, None)
        if previous is not None and set(previous.families) == set(desired.families):
            stats = self._incremental(_sets_of(previous), _sets_of(desired))
        else:
            stats = self._repair(desired)
        self.applies.append(stats)
        return stats

    def _incremental(self, before: dict[str, IPSet], after: dict[str, IPSet]) -> EgressStats:
        changed = 0
        for name, ipset in after.items():
            added = set(ipset.entries) - set(before[name].entries)
            removed = set(before[name].entries) - set(ipset.entries)
            entries = (set(self.sets[name].entries) | added) - removed
            self.sets[name] = attrs.evolve(ipset, entries=tuple(sorted(entries)))
            changed += len(added) + len(removed)
        return EgressStats(members_changed=changed)

    def _repair(self, desired: EgressState) -> EgressStats:
        wanted = _sets_of(desired)
        stats = EgressStats(
            sets_written=sum(self.sets.get(name) != ipset for name, ipset in wanted.items()),
            rules_added=len(set(desired.families) - self.rules),
            rules_deleted=len(self.rules - set(desired.families)),
            sets_destroyed=len(set(self.sets) - set(wanted)),
            repaired=True,
        )
        self.sets, self.rules = wanted, set(desired.families)
        return stats

    def cleanup(self) -> EgressStats:
        return self.apply(EgressState(), None)

    def holds(self, desired: EgressState) -> bool:
        return self.sets == _sets_of(desired) and self.rules == set(desired.families)

    def drop_member(self, name: str, entry: str) -> None:
        ipset = self.sets[name]
        self.sets[name] = attrs.evolve(ipset, entries=tuple(e for e in ipset.entries if e != entry))


def _sets_of(state: EgressState) -> dict[str, IPSet]:
    return {
        ipset.name: ipset
        for family in state.families.values()
        for ipset in (family.pod_subnets, family.node_ips)
    }
