"""The pod network controller: kube-bridge, the CNI configuration and pod egress.

Start: from a store snapshot, make kube-bridge (gateway addresses, MTU), write the CNI
file if its text changed, set hairpin mode on the bridge's ports, and repair egress (our
sets and NAT rule read back from the kernel). Then, per batch of Node changes (a change
and its burst): a change of this node redoes the bridge and the CNI file (each writes
only what differs);
any node's change updates the egress sets by the members that changed. Every sync period
(--routes-sync-period, as upstream's routing loop) all of it again as a repair. A link
change in the node's namespace (a pod's port joining the bridge) wakes a hairpin sweep.

A failed sync is logged on one line and retried on the next change or period as a full
repair; health hears only of successful syncs. Back-end calls block, so they run in a
worker thread.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import trio

from kuberouter.controllers.batch import next_batch
from kuberouter.controllers.firewall import families
from kuberouter.dataplane import cniconf
from kuberouter.dataplane.bridge import BridgeBackend, IpBridge, link_events
from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.egress import EgressBackend, IptablesEgress, cleanup_egress
from kuberouter.health import Health
from kuberouter.k8s.store import Snapshot, Store
from kuberouter.model import Node
from kuberouter.options import Options, node_name
from kuberouter.podnet.bridge import BRIDGE
from kuberouter.podnet.desired import (
    CNI_CONF_DEFAULT,
    CNI_CONF_ENV,
    Settings,
    cluster_egress,
    node_network,
    primary_address,
)
from kuberouter.podnet.egress import EgressState

log = logging.getLogger(__name__)

DEBOUNCE = 0.05  # seconds to gather a burst of link events into one hairpin sweep
HEALTH_NAME = "podnet"


def settings_of(options: Options, environ: Mapping[str, str] = os.environ) -> Settings:
    """The options, and the CNI file from the environment as upstream reads it."""
    return Settings(
        node_name=node_name(options),
        families=families(options),
        enable_cni=options.enable_cni,
        auto_mtu=options.auto_mtu,
        enable_pod_egress=options.enable_pod_egress,
        cni_conf_file=Path(environ.get(CNI_CONF_ENV) or CNI_CONF_DEFAULT),
    )


class PodNetController:
    def __init__(
        self,
        store: Store,
        bridge: BridgeBackend,
        egress: EgressBackend,
        settings: Settings,
        health: Health,
        sync_period: float,
        *,
        link_events: Callable[[], socket.socket] | None = None,
    ) -> None:
        """`link_events`: opens a socket that wakes on link changes (None: no watch)."""
        self.store, self.bridge, self.egress = store, bridge, egress
        self.settings, self.health, self.sync_period = settings, health, sync_period
        self.link_events = link_events
        self.programmed: EgressState | None = None  # None: unknown, repair next time
        self.syncs = 0  # successful syncs (tests wait on these)
        self.failures = 0
        self.hairpin_sweeps = 0
        self._warned: set[str] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        changes = self.store.subscribe(("Node",))  # before the first snapshot
        async with changes, trio.open_nursery() as nursery:
            await self._sync("initial sync", repair=True)
            if self.link_events is not None and self.settings.enable_cni:
                nursery.start_soon(self._watch_links, self.link_events())
            task_status.started()
            deadline = trio.current_time() + self.sync_period
            while True:
                batch = await next_batch(changes, deadline)
                if batch:
                    here = any(change.key == self.settings.node_name for change in batch)
                    await self._sync("update", repair=self.programmed is None, local=here)
                if trio.current_time() >= deadline:
                    await self._sync("reconcile", repair=True)
                    deadline = trio.current_time() + self.sync_period

    async def _sync(self, what: str, *, repair: bool, local: bool = True) -> None:
        snapshot = self.store.snapshot()
        desired = cluster_egress(self.settings, snapshot.items(Node).values())
        try:
            done = await trio.to_thread.run_sync(self._apply, snapshot, desired, repair, local)
        except Exception as error:  # never crash the agent: retried on the next change/period
            self.programmed, self.failures = None, self.failures + 1
            log.error(
                "pod network %s failed, retrying on the next change or period: %s", what, error
            )
            return
        self.programmed, self.syncs = desired, self.syncs + 1
        self.health.beat(HEALTH_NAME, f"{what}: {done}")
        log.debug("pod network %s: %s", what, done)

    def _apply(self, snapshot: Snapshot, desired: EgressState, repair: bool, local: bool) -> str:
        parts = []
        if self.settings.enable_cni and (local or repair):
            parts += self._node_network(snapshot.get(Node, self.settings.node_name))
        stats = self.egress.apply(desired, None if repair else self.programmed)
        parts.append(f"egress {stats.describe()}")
        return "; ".join(parts)

    def _node_network(self, node: Node | None) -> list[str]:
        if node is None:
            self._warn(f"no Node object named {self.settings.node_name!r}: kube-bridge waits")
            return ["no Node object"]
        path = self.settings.cni_conf_file
        wanted = node_network(
            self.settings, node, mtu=self._mtu(node), existing_conf=cniconf.read(path)
        )
        changed = self.bridge.ensure(wanted.bridge)
        for command in changed:
            log.info("kube-bridge: %s", command)
        parts = [f"bridge {len(changed)} changes"]
        if wanted.cni is None:
            self._warn(f"node {node.name} has no pod CIDR yet: no CNI file written")
        else:
            if wanted.cni.problem:
                self._warn(f"CNI file {path}: {wanted.cni.problem}; writing a fresh one")
            written = cniconf.write_if_changed(path, wanted.cni.text)
            if written:
                log.info("CNI file %s written", path)
            parts.append("CNI file written" if written else "CNI file unchanged")
        parts.append(f"hairpin on {self.bridge.set_hairpin(BRIDGE)} ports")
        return parts

    def _mtu(self, node: Node) -> int | None:
        if not self.settings.auto_mtu:
            return None
        address = primary_address(node)
        mtu = self.bridge.node_mtu(address) if address else None
        if mtu is None:
            self._warn(f"--auto-mtu: no interface holds node address {address}; MTU left alone")
        return mtu

    def _warn(self, message: str) -> None:
        """Log a problem once, not on every sync."""
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    async def _watch_links(self, events: socket.socket) -> None:
        """Hairpin mode on ports that join the bridge later (a sweep per burst of changes)."""
        with trio.socket.from_stdlib_socket(events) as sock:
            while True:
                try:
                    await sock.recv(65536)
                except OSError as error:  # ENOBUFS: events were lost; sweep anyway
                    if error.errno != errno.ENOBUFS:  # the periodic sync still sweeps
                        log.warning("link watch stopped: %s", error)
                        return
                await trio.sleep(DEBOUNCE)
                _drain_socket(events)
                try:
                    count = await trio.to_thread.run_sync(self.bridge.set_hairpin, BRIDGE)
                except Exception as error:  # the next change or sync tries again
                    log.warning("hairpin sweep failed: %s", error)
                    continue
                self.hairpin_sweeps += 1
                if count:
                    log.info("hairpin mode on %d new port(s) of %s", count, BRIDGE)


def _drain_socket(events: socket.socket) -> None:
    """Read what else is queued (non-blocking), so a burst costs one sweep."""
    while True:
        try:
            events.recv(65536)
        except OSError:  # BlockingIOError: drained; ENOBUFS: lost, a sweep follows anyway
            return


# -- the agent's side: whether and how to run it, and --cleanup-config -------------------


def missing_requirement(
    settings: Settings,
    *,
    euid: Callable[[], int] = os.geteuid,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """Why the real back ends cannot run here (None: they can)."""
    if euid() != 0:
        return "not running as root"
    tools: list[tuple[str, ...]] = [("ip",)]
    if settings.enable_pod_egress:
        tools += [("ipset",), ("iptables-legacy", "iptables-nft")]
    for choices in tools:
        if not any(which(tool) for tool in choices):
            return f"{' or '.join(choices)} not found"
    return None


async def start_podnet(
    nursery: trio.Nursery, options: Options, store: Store, health: Health
) -> bool:
    """Start the controller in `nursery` if it can run here; else warn once. Started?"""
    settings = settings_of(options)
    reason = missing_requirement(settings)
    if reason is None and store.get(Node, settings.node_name) is None:
        reason = f"no Node object named {settings.node_name!r} (set --hostname-override)"
    if reason is not None:
        log.warning("pod network (kube-bridge, CNI file, egress) not started: %s", reason)
        return False
    egress = await trio.to_thread.run_sync(IptablesEgress)
    health.register(HEALTH_NAME, options.routes_sync_period)
    controller = PodNetController(
        store, IpBridge(), egress, settings, health, options.routes_sync_period,
        link_events=link_events,
    )  # fmt: skip
    await nursery.start(controller.run)
    return True


def cleanup(
    options: Options,
    *,
    euid: Callable[[], int] = os.geteuid,
    runner: Runner | None = None,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """--cleanup-config: our egress rule (both iptables variants) and sets, and the CNI
    file. kube-bridge stays, as upstream leaves it: pods may still hang off it."""
    if euid() != 0:
        raise RuntimeError("not running as root")
    report = cleanup_egress(runner)
    path = settings_of(options, environ).cni_conf_file
    removed = cniconf.remove(path)
    for line in (*report.done, f"CNI file {path} {'removed' if removed else 'absent'}"):
        log.info("pod network cleanup: %s", line)
    for line in report.skipped:
        log.info("pod network cleanup skipped %s", line)
    if not report.ok:
        raise RuntimeError("; ".join(report.failed))
