"""The network-policy firewall controller, on the shared run loop (loop.py).

Changed Namespaces, Pods, NetworkPolicies and this node's Node go to the incremental
compiler, which recomputes only the sets and chains that depend on them; the back end
writes only what changed. Every `sync_period` a repair reads the kernel (beside the
updates: `read_kernel`) and rewrites drift. A repair leaves reading back the listings of
the chains it wrote (for the next repair) until no change is waiting (the loop's `idle`),
and that read too goes on beside the updates: at 50,000 pods it costs as much as the
repair itself.

Each change's latency, from its watch event reaching the agent to its effect being in the
kernel, is a histogram (`kube_router_controller_policy_change_to_programmed_seconds`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import prometheus_client
import trio

from kuberouter.controllers.loop import SyncLoop
from kuberouter.dataplane import ApplyStats, FirewallBackend, Programmed, firewall_backend
from kuberouter.dataplane.cleanup import cleanup_firewall
from kuberouter.health import REGISTRY, Health
from kuberouter.k8s.store import Change, Snapshot, Store
from kuberouter.model import Namespace, NetworkPolicy, Node, Pod
from kuberouter.netpol.cluster import Cluster
from kuberouter.netpol.incremental import IncrementalCompiler
from kuberouter.netpol.ruleset import FAMILIES, DesiredState, Family
from kuberouter.options import Options, node_name

log = logging.getLogger(__name__)

KINDS = ("Namespace", "Pod", "NetworkPolicy", "Node")

SYNC_TIME = prometheus_client.Histogram(
    "kube_router_controller_iptables_sync_time",
    "Time it took for the firewall controller to sync (compile and apply), in seconds",
    registry=REGISTRY,
)
CHANGE_LATENCY = prometheus_client.Histogram(
    "kube_router_controller_policy_change_to_programmed_seconds",
    "Time from a watch event reaching the agent to the firewall programmed with it, in seconds",
    buckets=(0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5),
    registry=REGISTRY,
)
POLICY_CHAINS = prometheus_client.Gauge(
    "kube_router_controller_policy_chains",
    "Chains the firewall controller keeps programmed on this node",
    registry=REGISTRY,
)
POLICY_IPSETS = prometheus_client.Gauge(
    "kube_router_controller_policy_ipsets",
    "Sets the firewall controller keeps programmed on this node",
    registry=REGISTRY,
)


def cluster_of(snapshot: Snapshot) -> Cluster:
    """The compiler's view of a store snapshot; node addresses are their InternalIPs."""
    return Cluster.build(
        namespaces=snapshot.items(Namespace).values(),
        pods=snapshot.items(Pod).values(),
        policies=snapshot.items(NetworkPolicy).values(),
        node_ips={name: node.internal_ips for name, node in snapshot.items(Node).items()},
    )


def describe(stats: ApplyStats, desired: DesiredState) -> str:
    """The heartbeat text: '<N> chains, <M> sets, <K> written'."""
    written = stats.chains_written + stats.sets_written
    return f"{count_chains(desired)} chains, {count_sets(desired)} sets, {written} written"


def count_chains(desired: DesiredState) -> int:
    return sum(len(ruleset.chains) for ruleset in desired.rulesets.values())


def count_sets(desired: DesiredState) -> int:
    return sum(len(ruleset.sets) for ruleset in desired.rulesets.values())


class FirewallController(SyncLoop[IncrementalCompiler, DesiredState, ApplyStats]):
    name = "firewall"
    kinds = KINDS

    def __init__(
        self,
        store: Store,
        backend: FirewallBackend,
        node_name: str,
        node_ips: Sequence[str] | None,
        health: Health,
        sync_period: float,
        *,
        families: Sequence[Family] = FAMILIES,
        default_deny: bool = False,
    ) -> None:
        """`node_ips` None: this node's InternalIPs from its Node object in the store.
        `default_deny`: --netpol-default-deny, over the pod CIDRs of that Node object."""
        super().__init__(store, backend, health, sync_period)
        self.firewall = backend
        self.node_name, self.node_ips = node_name, node_ips
        self.families, self.default_deny = tuple(families), default_deny
        self.unlearned = False  # a repair wrote chains whose listings are not read yet

    def compiler_for(self, snapshot: Snapshot) -> IncrementalCompiler:
        """A compiler holding every object of `snapshot` (as compile_node would see it)."""
        compiler = IncrementalCompiler(self.node_name, self.node_ips, self.families)
        self._set_node(compiler, snapshot.get(Node, self.node_name))
        for name, namespace in snapshot.items(Namespace).items():
            compiler.set_namespace(name, namespace)
        for key, pod in snapshot.items(Pod).items():
            compiler.set_pod(key, pod)
        for key, policy in snapshot.items(NetworkPolicy).items():
            compiler.set_policy(key, policy)
        return compiler

    def compile(self, snapshot: Snapshot) -> DesiredState:
        return self.compiler_for(snapshot).state()

    def _set_node(self, compiler: IncrementalCompiler, node: Node | None) -> None:
        compiler.set_node_ips(node.internal_ips if node is not None else ())
        if self.default_deny:
            cidrs = node.effective_pod_cidrs if node is not None else ()
            if not cidrs:
                log.warning(
                    "--netpol-default-deny has no effect: node %s has no pod CIDR", self.node_name
                )
            compiler.set_default_deny(cidrs)

    def feed(self, compiler: IncrementalCompiler, changes: Iterable[Change]) -> None:
        """Hand store changes to the compiler; feeding one twice is harmless."""
        for change in changes:
            if change.kind == "Pod":
                compiler.set_pod(change.key, cast(Pod | None, change.new))
            elif change.kind == "Namespace":
                compiler.set_namespace(change.key, cast(Namespace | None, change.new))
            elif change.kind == "NetworkPolicy":
                compiler.set_policy(change.key, cast(NetworkPolicy | None, change.new))
            elif change.kind == "Node" and change.key == self.node_name:
                self._set_node(compiler, cast(Node | None, change.new))

    def state(self, compiler: IncrementalCompiler) -> DesiredState:
        return compiler.state()

    def read_kernel(self) -> Programmed:
        return self.firewall.read()

    def _apply(self, desired: DesiredState, repair: bool, found: object | None) -> ApplyStats:
        if self.programmed is None or repair:
            stats = self.firewall.reconcile(
                desired, learn=False, found=cast(Programmed | None, found)
            )
            self.unlearned |= stats.chains_written > 0
            return stats
        return self.firewall.apply(desired, self.programmed)

    async def synced(
        self,
        what: str,
        desired: DesiredState,
        stats: ApplyStats,
        seconds: float,
        changes: Sequence[Change],
    ) -> None:
        done = time.monotonic()
        for change in changes:
            CHANGE_LATENCY.observe(done - change.received)
        SYNC_TIME.observe(seconds)
        POLICY_CHAINS.set(count_chains(desired))
        POLICY_IPSETS.set(count_sets(desired))
        self.health.beat("firewall", f"{what}: {describe(stats, desired)}")
        level = logging.DEBUG if changes else logging.INFO  # the rare full syncs are news
        log.log(level, "firewall %s: %s", what, describe(stats, desired))

    async def idle(self, beside: trio.Nursery) -> None:
        """Start reading back the listings of the chains the last repair wrote."""
        programmed = self.programmed
        if self.unlearned and programmed is not None:
            self.unlearned = False
            beside.start_soon(self._learn, programmed)

    async def _learn(self, programmed: DesiredState) -> None:
        """What an update changes meanwhile does not match what is learnt, and is rewritten
        at the next repair."""
        try:
            await trio.to_thread.run_sync(self.firewall.learn, programmed)
        except Exception as error:  # the next repair rewrites those chains, then retries
            log.warning("firewall: reading back the programmed chains failed: %s", error)


# -- the agent's side: whether and how to run it ---------------------------------------


def families(options: Options) -> tuple[Family, ...]:
    wanted: list[Family] = []
    if options.enable_ipv4:
        wanted.append(4)
    if options.enable_ipv6:
        wanted.append(6)
    return tuple(wanted)


def missing_requirement(
    options: Options,
    *,
    euid: Callable[[], int] = os.geteuid,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """Why the real back end cannot run here (None: it can)."""
    if euid() != 0:
        return "not running as root"
    if options.use_nftables_for_netpol:
        tools: Iterable[tuple[str, ...]] = [("nft",)]
    else:
        tools = [("ipset",), ("iptables-legacy-restore", "iptables-nft-restore")]
    for choices in tools:
        if not any(which(tool) for tool in choices):
            return f"{' or '.join(choices)} not found"
    return None


async def start_firewall(
    nursery: trio.Nursery, options: Options, store: Store, health: Health
) -> bool:
    """Start the controller in `nursery` if it can run here; else warn once. Started?"""
    name = node_name(options)
    reason = missing_requirement(options)
    if reason is None and store.get(Node, name) is None:
        reason = f"no Node object named {name!r} (set --hostname-override)"
    if reason is not None:
        log.warning("network policy firewall not started: %s", reason)
        return False
    use_nft = options.use_nftables_for_netpol
    backend = await trio.to_thread.run_sync(lambda: firewall_backend(use_nftables=use_nft))
    period = options.iptables_sync_period  # positive: the flag is validated
    health.register("firewall", period)
    controller = FirewallController(
        store,
        backend,
        name,
        None,
        health,
        period,
        families=families(options),
        default_deny=options.netpol_default_deny,
    )
    await nursery.start(controller.run)
    return True


def cleanup(options: Options, *, euid: Callable[[], int] = os.geteuid) -> None:
    """--cleanup-config: remove every chain, jump, set and table the firewall creates
    (whichever back end made them); raises RuntimeError naming what could not be."""
    del options  # every back end is cleaned, whatever the flags say now
    if euid() != 0:
        raise RuntimeError("not running as root")
    report = cleanup_firewall()
    for line in report.done:
        log.info("firewall cleanup: %s", line)
    for line in report.skipped:
        log.info("firewall cleanup skipped %s", line)
    if not report.ok:
        raise RuntimeError("; ".join(report.failed))
