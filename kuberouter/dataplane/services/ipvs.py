"""The IPVS service proxy (`--service-proxy-mode=ipvs`, the default, as upstream).

IPVS services and destinations through netlink (ipvs_kernel.py), service IPs on
`kube-dummy-if`, and the sets and chains of ipvs_netfilter.py, laid out by ipvs_plan.py.
An incremental apply plans only the changed Services, old and new, and writes the
difference: IPVS services added, changed (scheduler, flags, persistence) or deleted,
destinations added, re-weighted or deleted, addresses and set members added or removed
when no other Service still uses them, and the chains rewritten only if a Local
frontend's marks changed. Service IPs, set members and marks are counted per user, so a
cluster IP shared by several ports stays until its last port goes.

Graceful termination (--ipvs-graceful-termination): a destination that leaves gets
weight 0 (no new connections) and is deleted once it has no connections or when
--ipvs-graceful-period is over (`housekeeping`, called every second by the controller).

A reconcile reads IPVS, the addresses of kube-dummy-if and our sets back, repairs every
difference and rewrites our chains. IPVS services are ours when their address is on
kube-dummy-if, or is one of the node's NodePort addresses on a port of
--service-node-port-range, or their fwmark carries our bit; others' are left alone, and
so is anything inside --excluded-cidrs.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from kuberouter.dataplane.commands import CommandError, Runner
from kuberouter.dataplane.iptables import Variant, detect_variant
from kuberouter.dataplane.services import SyncStats, changed
from kuberouter.dataplane.services import ipvs_netfilter as nf
from kuberouter.dataplane.services.ipvs_kernel import IpvsKernel
from kuberouter.proxy.ipvs_plan import (
    DUMMY_INTERFACE,
    FWMARK_BIT,
    LOCAL_IPS,
    POD_CIDRS,
    Dest,
    IpvsPlan,
    IpvsService,
    Key,
    MarkRule,
    plan_service,
    set_name,
)
from kuberouter.proxy.state import ProxyState, ServicePlan, VirtualService

log = logging.getLogger(__name__)
SYSCTLS = (  # as kube-proxy's IPVS mode: let netfilter see IPVS connections, end dead ones
    "net.ipv4.vs.conntrack=1",
    "net.ipv4.vs.expire_nodest_conn=1",
    "net.ipv4.vs.expire_quiescent_template=1",
)
Plans = dict[str, IpvsPlan]  # VirtualService key -> its plan
RESTORE_AT = 64  # new IPVS services in one write from which ipvsadm --restore adds them


class IpvsServices:
    def __init__(
        self,
        runner: Runner | None = None,
        kernel: IpvsKernel | None = None,
        *,
        variant: Variant | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner or Runner()
        self.kernel = kernel or IpvsKernel(self.runner.netns, self.runner)
        self._variant, self.clock = variant, clock
        self.plans: Plans = {}  # what is programmed, per VirtualService
        self.uses: Counter[tuple[str, str]] = Counter()  # ("vip" or set, member) -> users
        self.draining: dict[tuple[Key, Dest], float] = {}  # -> deadline
        self.state: ProxyState | None = None
        self._listening: dict[int, tuple[str, ...]] = {}  # family -> NodePort addresses

    @property
    def variant(self) -> Variant:
        if self._variant is None:
            self._variant = detect_variant(self.runner)
        return self._variant

    # -- planning ---------------------------------------------------------------------------

    def node_addresses(self, state: ProxyState, family: int) -> tuple[str, ...]:
        """Where NodePorts listen: the node's addresses, or every local one (bind-all,
        read once per apply)."""
        if not state.config.nodeport_bindon_all_ip:
            return state.node.addresses_of(family)
        if family not in self._listening:
            self._listening[family] = self._local_addresses(family)
        return self._listening[family]

    def _local_addresses(self, family: int) -> tuple[str, ...]:
        listed = self.runner.run("ip", "-o", f"-{family}", "addr", "show").stdout
        found = []
        for line in listed.splitlines():
            words = line.split()
            address = words[3].split("/")[0]
            if words[1] == DUMMY_INTERFACE or ipaddress.ip_address(address).is_loopback:
                continue
            if not ipaddress.ip_address(address).is_link_local:
                found.append(address)
        return tuple(found)

    def plans_of(self, state: ProxyState, plan: ServicePlan | None) -> Plans:
        if plan is None:
            return {}
        return {
            vs.key: plan_service(
                vs, self.node_addresses(state, vs.family), state.config.masquerade_all
            )
            for vs in plan.virtual_services
        }

    # -- incremental ------------------------------------------------------------------------

    def apply(self, desired: ProxyState, previous: ProxyState | None = None) -> SyncStats:
        if previous is None or desired.node != previous.node or desired.config != previous.config:
            return self.reconcile(desired)
        start, requests, commands = time.perf_counter(), self.kernel.requests, self.runner.count
        self._listening.clear()
        old: Plans = {}
        new: Plans = {}
        changes = list(changed(desired, previous))
        for _, before, after in changes:
            for vs in before.virtual_services if before else ():
                if vs.key in self.plans:
                    old[vs.key] = self.plans[vs.key]
            new.update(self.plans_of(desired, after))
        try:
            written = self._write(desired, old, new)
        except (CommandError, OSError) as error:
            log.warning("incremental IPVS apply failed, repairing: %s", error)
            return self.reconcile(desired)
        self.state = desired
        return SyncStats(
            services_written=sum(after is not None for _, _, after in changes),
            services_deleted=sum(after is None for _, _, after in changes),
            objects_written=written,
            commands=self.kernel.requests - requests + self.runner.count - commands,
            seconds=time.perf_counter() - start,
        )

    def _write(self, desired: ProxyState, old: Plans, new: Plans) -> int:
        written = self._ipvs(desired, _services(old.values()), _services(new.values()))
        add, delete = self._recount(old, new)
        self._addresses(
            [m for kind, m in add if kind == "vip"], [m for kind, m in delete if kind == "vip"]
        )
        self._members([i for i in add if i[0] != "vip"], [i for i in delete if i[0] != "vip"])
        for key in old:
            self.plans.pop(key, None)
        self.plans.update(new)
        if _marks(old.values()) != _marks(new.values()):
            self._chains(desired, missing=False)
        return written + len(add) + len(delete)

    def _recount(
        self, old: Plans, new: Plans
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Count the users of each address and set member; (newly used, no longer used)."""
        delta: Counter[tuple[str, str]] = Counter()
        for step, plans in ((-1, old), (+1, new)):
            for plan in plans.values():
                for item in _items(plan):
                    delta[item] += step
        add: list[tuple[str, str]] = []
        delete: list[tuple[str, str]] = []
        for item, step in delta.items():
            before = self.uses[item]
            self.uses[item] = before + step
            if before <= 0 < self.uses[item]:
                add.append(item)
            elif self.uses[item] <= 0 < before:
                delete.append(item)
        return add, delete

    def _ipvs(
        self,
        desired: ProxyState,
        before: dict[Key, IpvsService],
        after: dict[Key, IpvsService],
        ours: Callable[[Key], bool] = lambda _: True,
    ) -> int:
        """Make IPVS hold `after` where it holds `before`; a service not wanted goes if
        it is `ours`."""
        written = 0
        for key in before.keys() - after.keys():
            if not ours(key):
                continue
            self.kernel.delete(key)
            self._forget(key)
            written += 1
        new = [wanted for key, wanted in after.items() if key not in before]
        if len(new) >= RESTORE_AT and not any(s.flags != ("persistent",) and s.flags for s in new):
            self.kernel.restore(new)  # a full sync: one ipvsadm instead of 100,000 requests
            written += sum(1 + len(service.dests) for service in new)
            after = {key: wanted for key, wanted in after.items() if key in before}
        for key, wanted in after.items():
            written += self._service(desired, before.get(key), wanted)
        return written

    def _service(self, desired: ProxyState, old: IpvsService | None, wanted: IpvsService) -> int:
        """Make one IPVS service as `wanted`, given that it is as `old` (None: absent)."""
        if old is None:
            self.kernel.add(wanted)
            return 1 + len(wanted.dests)
        written = 0
        if (old.scheduler, old.flags, old.timeout) != (
            wanted.scheduler,
            wanted.flags,
            wanted.timeout,
        ):
            self.kernel.change(wanted)
            written += 1
        have = {(dest.ip, dest.port): dest for dest in old.dests}
        want = {(dest.ip, dest.port): dest for dest in wanted.dests}
        for address, dest in want.items():
            self.draining.pop((wanted.key, dest._replace(weight=0)), None)  # wanted again
            if address not in have:
                self.kernel.add_dest(wanted.key, dest)
            elif have[address].weight != dest.weight:
                self.kernel.set_dest(wanted.key, dest)
            else:
                continue
            written += 1
        for address, dest in have.items():
            if address not in want and (wanted.key, dest._replace(weight=0)) not in self.draining:
                self._leave(desired, wanted.key, dest)
                written += 1
        return written

    def _leave(self, desired: ProxyState, key: Key, dest: Dest) -> None:
        """A destination goes: at once, or (graceful termination) first weight 0."""
        config = desired.config
        if not config.graceful_termination:
            self.kernel.delete_dest(key, dest)
            return
        if dest.weight != 0:
            self.kernel.set_dest(key, dest._replace(weight=0))
        self.draining[(key, dest._replace(weight=0))] = self.clock() + config.graceful_period

    def _forget(self, key: Key) -> None:
        for item in [item for item in self.draining if item[0] == key]:
            del self.draining[item]

    def housekeeping(self) -> int:
        """Delete draining destinations with no connections left or past their deadline."""
        done = 0
        for key in {key for key, _ in self.draining}:
            counts = {(f.dest.ip, f.dest.port): f for f in self.kernel.destinations(key)}
            for item in [item for item in self.draining if item[0] == key]:
                dest, deadline = item[1], self.draining[item]
                found = counts.get((dest.ip, dest.port))
                if found is None or found.active + found.inactive == 0 or self.clock() >= deadline:
                    if found is not None:
                        self.kernel.delete_dest(key, dest)
                    del self.draining[item]
                    done += 1
        return done

    def _addresses(self, add: Iterable[str], delete: Iterable[str]) -> None:
        lines = [f"address add {_host(ip)} dev {DUMMY_INTERFACE}" for ip in add]
        lines += [f"address del {_host(ip)} dev {DUMMY_INTERFACE}" for ip in delete]
        if lines:
            self.runner.run("ip", "-force", "-batch", "-", input="\n".join(lines) + "\n")

    def _members(self, add: Iterable[tuple[str, str]], delete: Iterable[tuple[str, str]]) -> None:
        text = nf.set_changes((), add, delete)
        if text:
            self.runner.run("ipset", "restore", input=text)

    def _chains(self, desired: ProxyState, *, missing: bool) -> None:
        for family in desired.config.families:
            marks = [mark for mark in _marks(self.plans.values()) if mark.family == family]
            tables = nf.chains(family, marks, desired.config.permit_all)
            jumps = nf.missing_jumps(self.runner, family, self.variant) if missing else {}
            nf.write_chains(self.runner, family, self.variant, nf.restore_text(tables, jumps))
            cidrs = desired.node.pod_cidrs_of(family)
            self.runner.run("nft", "-f", "-", input=nf.nft_marks(family, marks, cidrs))

    def service_counters(self) -> Iterator[tuple[VirtualService, Key, dict[str, int]]]:
        """(virtual service, IPVS service, its counters) for what is programmed."""
        if self.state is None:
            return
        counters = self.kernel.counters()
        for vs in self.state.virtual_services():
            plan = self.plans.get(vs.key)
            for service in plan.services if plan else ():
                if not service.key.fwmark and service.key in counters:
                    yield vs, service.key, counters[service.key]

    # -- repair -----------------------------------------------------------------------------

    def reconcile(self, desired: ProxyState) -> SyncStats:
        start, requests, commands = time.perf_counter(), self.kernel.requests, self.runner.count
        self._listening.clear()
        self._prepare(desired)
        plans: Plans = {}
        for plan in desired.services.values():
            plans.update(self.plans_of(desired, plan))
        written = self._repair_ipvs(desired, _services(plans.values()))
        written += self._repair_addresses(plans)
        written += self._repair_sets(desired, plans)
        self.plans = plans
        self.uses = Counter(item for plan in plans.values() for item in _items(plan))
        self._chains(desired, missing=True)
        self.state = desired
        return SyncStats(
            services_written=len(desired.services) if written else 0,
            objects_written=written,
            commands=self.kernel.requests - requests + self.runner.count - commands,
            seconds=time.perf_counter() - start,
            repaired=True,
        )

    def _prepare(self, desired: ProxyState) -> None:
        """kube-dummy-if up, the IPVS sysctls, our sets made, IPVS timeouts."""
        self.runner.run("ip", "link", "add", DUMMY_INTERFACE, "type", "dummy", check=False)
        self.runner.run("ip", "link", "set", DUMMY_INTERFACE, "up")
        self.runner.run("sysctl", "-q", "-w", *SYSCTLS)
        creates = [item for family in (4, 6) for item in nf.our_sets(family).items()]
        self.runner.run("ipset", "restore", input=nf.set_changes(creates, (), ()))
        config = desired.config
        if config.tcp_timeout or config.tcpfin_timeout or config.udp_timeout:
            seconds = [
                str(int(value))
                for value in (config.tcp_timeout, config.tcpfin_timeout, config.udp_timeout)
            ]
            self.runner.run("ipvsadm", "--set", *seconds)

    def _ours(self, desired: ProxyState, key: Key, vips: set[str]) -> bool:
        config = desired.config
        if key.fwmark:
            return bool(key.fwmark & FWMARK_BIT)
        if config.excluded_cidrs and config.in_ranges(key.address, config.excluded_cidrs):
            return False
        if key.address in vips:
            return True
        low, high = config.node_port_range
        return key.address in self.node_addresses(desired, key.family) and low <= key.port <= high

    def _repair_ipvs(self, desired: ProxyState, wanted: dict[Key, IpvsService]) -> int:
        vips = set(self._dummy_addresses())
        return self._ipvs(
            desired, self.kernel.services(), wanted, lambda key: self._ours(desired, key, vips)
        )

    def _dummy_addresses(self) -> list[str]:
        listed = self.runner.run(
            "ip", "-o", "addr", "show", "dev", DUMMY_INTERFACE, "scope", "global", check=False
        )
        return [line.split()[3].split("/")[0] for line in listed.stdout.splitlines()]

    def _repair_addresses(self, plans: Plans) -> int:
        want = {vip for plan in plans.values() for vip in plan.vips}
        have = set(self._dummy_addresses())
        self._addresses(sorted(want - have), sorted(have - want))
        return len(want ^ have)

    def _repair_sets(self, desired: ProxyState, plans: Plans) -> int:
        want: dict[str, set[str]] = {
            name: set() for family in (4, 6) for name in nf.our_sets(family)
        }
        for plan in plans.values():
            for name, members in plan.members.items():
                want[name].update(members)
        for family in (4, 6):
            local = self.node_addresses(desired, family)
            want[set_name(LOCAL_IPS, family)].update(local)
            want[set_name(POD_CIDRS, family)].update(desired.node.pod_cidrs_of(family))
        have = nf.read_sets(self.runner)
        add = [
            (name, m)
            for name, members in want.items()
            for m in sorted(members - have.get(name, set()))
        ]
        delete = [
            (name, m)
            for name, members in have.items()
            for m in sorted(members - want.get(name, set()))
        ]
        self._members(add, delete)
        return len(add) + len(delete)

    def cleanup(self) -> SyncStats:
        """Our IPVS services (those on kube-dummy-if and with our fwmark), the dummy
        interface, our chains and jumps, our sets."""
        vips = set(self._dummy_addresses())
        removed = 0
        for key in self.kernel.services():
            if key.address in vips or key.fwmark & FWMARK_BIT:
                self.kernel.delete(key)
                removed += 1
        self.runner.run("ip", "link", "del", DUMMY_INTERFACE, check=False)
        for family in (4, 6):
            self._remove_chains(family)
            where = nf.nft_table(family)
            self.runner.run(
                "nft", "-f", "-", input=f"add table {where}\ndelete table {where}\n", check=False
            )
        names = [name for family in (4, 6) for name in nf.our_sets(family)]
        self.runner.run(
            "ipset",
            "-exist",
            "restore",
            input="".join(f"destroy {n}\n" for n in names),
            check=False,
        )
        self.plans, self.uses, self.draining = {}, Counter(), {}
        return SyncStats(objects_deleted=removed, repaired=True)

    def _remove_chains(self, family: int) -> None:
        lines: list[str] = []
        for table, jumps in nf.JUMPS.items():
            saved = self.runner.run(
                nf.tool(family, self.variant, "save"), "-t", table, check=False
            ).stdout
            ours = {chain for _, chain in jumps}
            present = [chain for chain in ours if f":{chain} " in saved]
            if not present:
                continue
            lines.append(f"*{table}")
            lines += [
                f"-D {builtin} -j {chain}"
                for builtin, chain in jumps
                if f"-A {builtin} -j {chain}" in saved
            ]
            lines += [f"-F {chain}" for chain in present] + [f"-X {chain}" for chain in present]
            lines.append("COMMIT")
        if lines:
            self.runner.run(
                nf.tool(family, self.variant, "restore"), "--noflush", input="\n".join(lines) + "\n"
            )


def _services(plans: Iterable[IpvsPlan]) -> dict[Key, IpvsService]:
    return {service.key: service for plan in plans for service in plan.services}


def _marks(plans: Iterable[IpvsPlan]) -> list[MarkRule]:
    return sorted(mark for plan in plans for mark in plan.marks)


def _items(plan: IpvsPlan) -> list[tuple[str, str]]:
    """What a plan uses that others may share: ("vip", address) and (set, member)."""
    items = [("vip", vip) for vip in plan.vips]
    return items + [(name, member) for name, members in plan.members.items() for member in members]


def _host(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"
