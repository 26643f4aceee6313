"""The routing controller: pod networking and service IPs over BGP, with pybgp embedded.

It owns one `pybgp.api.Speaker`, run in the agent's nursery like any other task (no
subprocess, no second daemon). Per batch of store changes (Nodes, Services,
EndpointSlices; a change and its burst, batch.py) it plans what the speaker should be
(kuberouter.routing.plan) and applies only the differences (kuberouter.routing.speaker_sync):
sessions come and go one by one, routes are announced and withdrawn, the policy's sets
follow. Best paths reach the kernel through the speaker's FIB, which is our routes back
end (kuberouter.dataplane.routes). Every --routes-sync-period the whole plan is made again
from a snapshot; every --injected-routes-sync-period the kernel is read back and repaired.

The speaker's control socket is served on --bgp-control-socket, so `pybgp neighbor`, `pybgp
rib` and `pybgp policy` work against the agent. Malformed annotations and a node that
cannot run BGP are reported once each (log, and an Event on this node's own Node object)
and change nothing else. On SIGTERM with --bgp-graceful-restart the sessions and the
kernel routes are left as they are, and the next start defers its selection (RFC 4724).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import prometheus_client
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kuberouter.controllers.batch import next_batch
from kuberouter.health import REGISTRY, Health
from kuberouter.k8s.events import EventSink
from kuberouter.k8s.store import Change, Store
from kuberouter.model import Node
from kuberouter.model.node_bgp import Problem
from kuberouter.options import Options, node_name
from kuberouter.routing.peers import Identity, PlanError
from kuberouter.routing.plan import Planner, RoutingPlan
from kuberouter.routing.settings import RouterSettings
from kuberouter.routing.speaker_sync import SpeakerSync, SyncCounts
from pybgp.api import Speaker
from pybgp.control import ControlError, serve_control
from pybgp.daemon import handle
from pybgp.restart import RestartConfig
from pybgp.wire.constants import IPV4_UNICAST

log = logging.getLogger(__name__)

KINDS = ("Node", "Service", "EndpointSlice")
# A sync plans from the whole store, so at 1,000 nodes and 10,000 Services it takes tens of
# milliseconds on the agent's one thread; under a churn of EndpointSlice changes syncs ran
# back to back and the firewall's changes waited behind them. After an update the loop
# rests REST times as long as the sync took (syncing at most a fifth of the time), and the
# changes that come meanwhile make the next batch. A lone change is not delayed.
REST = 4.0

SYNC_TIME = prometheus_client.Histogram(
    "kube_router_controller_routes_sync_time",
    "Time it took for the routing controller to sync (plan and apply), in seconds",
    registry=REGISTRY,
)
RECEIVED = prometheus_client.Counter(
    "kube_router_controller_bgp_advertisements_received",
    "Best-path changes the node learned from its BGP peers",
    registry=REGISTRY,
)
SENT = prometheus_client.Counter(
    "kube_router_controller_bgp_advertisements_sent",
    "Routes the node announced or withdrew (pod CIDRs and service IPs)",
    registry=REGISTRY,
)

SpeakerFactory = Callable[..., Speaker]


class RoutingCollector(Collector):
    """Figures read when /metrics is scraped: each BGP session (upstream's bgp_peer_info,
    labels address, type, asn, state) and the kernel routes written."""

    def __init__(self, controller: RoutingController) -> None:
        self.controller = controller

    def collect(self) -> Iterator[prometheus_client.Metric]:
        peers = GaugeMetricFamily(
            "kube_router_bgp_peer_info",
            "BGP sessions of the node (1 each), by address, type, AS and state",
            labels=["address", "type", "asn", "state"],
        )
        sync, speaker = self.controller.sync, self.controller.speaker
        if sync is not None and speaker is not None:
            for neighbor in speaker.neighbors():
                peering = sync.peerings.get(neighbor["address"])
                kind = peering.kind if peering is not None else "external"
                labels = [neighbor["address"], kind, str(neighbor["peer_asn"]), neighbor["state"]]
                peers.add_metric(labels, 1)
        yield peers
        counts = getattr(self.controller.fib, "counts", None)
        for field, help_text in (
            ("synced", "Times the kernel routes were read back and repaired"),
            ("added", "Kernel routes written (added or replaced)"),
            ("removed", "Kernel routes removed"),
        ):
            family = CounterMetricFamily(f"kube_router_host_routes_{field}", help_text)
            family.add_metric([], getattr(counts, field, 0))
            yield family


class ProblemReporter:
    """Each problem once: a log line, and an Event when it is on our own Node."""

    def __init__(self, node_name: str, events: EventSink | None) -> None:
        self.node_name, self.events = node_name, events
        self.reported: set[tuple[str, str]] = set()

    async def report(self, problems: dict[str, Sequence[Problem | str]]) -> None:
        """`problems`: node name -> what is wrong now; what is fixed may be reported again."""
        current = {(node, p) for node, found in problems.items() for p in found}
        for node, problem in sorted(current - self.reported, key=str):
            if isinstance(problem, Problem):
                log.warning("node %s: %s (ignored: its last good value stays)", node, problem)
                reason = "InvalidAnnotation"
            else:
                log.warning("node %s: BGP not started: %s", node, problem)
                reason = "BGPNotStarted"
            if node == self.node_name and self.events is not None:
                await self.events.warn(node, reason, str(problem))
        self.reported = current


class RoutingController:
    def __init__(
        self,
        store: Store,
        planner: Planner,
        fib: Any,
        health: Health,
        *,
        events: EventSink | None = None,
        sync_period: float = 300.0,
        repair_period: float = 60.0,
        control_socket: str | None = None,
        restart: RestartConfig | None = None,
        speaker_factory: SpeakerFactory = Speaker,
    ) -> None:
        self.store, self.planner, self.fib, self.health = store, planner, fib, health
        self.reporter = ProblemReporter(planner.node_name, events)
        self.sync_period, self.repair_period = sync_period, repair_period
        self.control_socket = control_socket
        self.restart = restart or RestartConfig()
        self.speaker_factory = speaker_factory
        self.speaker: Speaker | None = None
        self.sync: SpeakerSync | None = None
        self.identity: Identity | None = None
        self.syncs = 0
        self._speaker_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None

    # -- running ------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        changes = self.store.subscribe(KINDS)
        collector = RoutingCollector(self)
        REGISTRY.register(collector)
        try:
            await self._run(changes, task_status)
        finally:
            REGISTRY.unregister(collector)

    async def _run(
        self, changes: trio.MemoryReceiveChannel[Change], task_status: trio.TaskStatus[None]
    ) -> None:
        async with changes, trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._sync("initial sync")
            if self.control_socket:
                await nursery.start(self._serve_control)
            task_status.started()
            sync_at = trio.current_time() + self.sync_period
            repair_at = trio.current_time() + self.repair_period
            while True:
                if await next_batch(changes, min(sync_at, repair_at)):
                    started = trio.current_time()
                    await self._sync("update")
                    await trio.sleep(REST * (trio.current_time() - started))
                now = trio.current_time()
                if now >= sync_at:
                    await self._sync("periodic sync")
                    sync_at = now + self.sync_period
                if now >= repair_at:
                    self._repair_kernel()
                    repair_at = now + self.repair_period

    async def stop(self) -> None:
        """The agent stops: with graceful restart, sessions and kernel routes stay as they
        are and a note makes the next start defer; otherwise peers are told (Cease) and the
        kernel routes stay until the next start replaces them."""
        if self.speaker is None:
            return
        graceful = self.restart.enabled
        await self.speaker.shutdown(graceful=graceful, flush_fib=False)
        if graceful and self.control_socket:
            restart_note(self.control_socket).write_text(f"{time.time()}\n")
        self._speaker_scope.cancel()

    # -- one sync -------------------------------------------------------------------------
    async def _sync(self, what: str) -> None:
        start = time.perf_counter()
        snapshot = self.store.snapshot()
        problems: dict[str, list[Problem | str]] = {
            name: list(node.bgp.problems) for name, node in snapshot.items(Node).items()
        }
        try:
            plan = self.planner.plan(snapshot)
        except PlanError as error:
            problems.setdefault(self.planner.node_name, []).append(str(error))
            await self.reporter.report(problems)
            self.health.beat("routing", f"{what}: waiting ({error})")
            return
        done: SyncCounts | None = None
        if plan.identity != self.identity:
            try:
                done = await self._start_speaker(plan)
            except PlanError as error:
                problems.setdefault(self.planner.node_name, []).append(str(error))
        await self.reporter.report(problems)
        if self.sync is None:
            self.health.beat("routing", f"{what}: waiting (speaker not running)")
            return
        if done is None:  # the same speaker: what changed
            done = self.sync.apply(plan)
        SENT.inc(done.announced + done.withdrawn)
        SYNC_TIME.observe(time.perf_counter() - start)
        self.syncs += 1
        peers, routes = len(self.sync.peerings), len(self.sync.routes)
        self.health.beat("routing", f"{what}: {peers} peers, {routes} routes originated")

    async def _start_speaker(self, plan: RoutingPlan) -> SyncCounts:
        """A speaker for the plan's identity (the first, or anew when ours changed), given
        the plan before it runs: after a graceful restart it defers its selection and the
        kernel until the peers it starts with sent End-of-RIB (RFC 4724 §4.1); started
        without peers, it would wait for none and empty the kernel at once."""
        assert self._nursery is not None
        if self.speaker is not None:
            log.warning("our BGP identity changed (%s): restarting the speaker", plan.identity)
            await self.speaker.shutdown(graceful=False, flush_fib=False)
            self._speaker_scope.cancel()
        ident = plan.identity
        restarting = self._restarting()
        self.speaker = self.speaker_factory(
            asn=ident.asn,
            router_id=ident.router_id,
            listen=ident.listen,
            port=ident.port,
            cluster_id=ident.cluster_id,
            fib=self.fib,
            restart=self.restart,
            restarting=restarting,
        )
        self.sync = SpeakerSync(self.speaker)
        self.identity = ident
        done = self.sync.apply(plan)
        self._speaker_scope = trio.CancelScope()
        try:
            await self._nursery.start(self._run_speaker, self.speaker, self._speaker_scope)
        except OSError as error:  # e.g. an address to listen on that the node lacks (yet)
            self.speaker = self.sync = self.identity = None
            raise PlanError(f"cannot start the BGP speaker: {error}") from None
        log.info("BGP speaker up: AS %d, router ID %s, listening on %s port %d%s", ident.asn,
                 ident.router_id, ", ".join(ident.listen) or "nothing", ident.port,
                 " (graceful restart: selection deferred)" if restarting else "")  # fmt: skip
        return done

    def _restarting(self) -> bool:
        """A graceful stop of ours left its note, recently enough that peers still hold our
        routes (the same note pybgpd leaves)."""
        if not (self.restart.enabled and self.control_socket):
            return False
        note = restart_note(self.control_socket)
        try:
            stopped = float(note.read_text())
        except (OSError, ValueError):
            return False
        note.unlink(missing_ok=True)
        return time.time() - stopped <= self.restart.restart_time

    async def _run_speaker(
        self,
        speaker: Speaker,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The speaker, and the count of what it learns, until `scope` is cancelled. Should it
        fail later (a fault of ours), the agent goes on and the next sync starts another."""
        with scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(speaker.run)
                task_status.started()
                try:
                    await self._count_received(speaker)
                except Exception:
                    log.exception("the BGP speaker failed; a new one starts at the next sync")
                    if self.speaker is speaker:
                        self.speaker = self.sync = self.identity = None
                    nursery.cancel_scope.cancel()

    async def _count_received(self, speaker: Speaker) -> None:
        async for change in speaker.subscribe_best_paths():
            if self.sync is not None and change.prefix not in self.sync.routes:
                RECEIVED.inc()

    def _repair_kernel(self) -> None:
        if self.speaker is not None:
            self.speaker.repair_fib()

    async def _serve_control(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """pybgpd's control socket, for `pybgp --socket PATH ...` against the agent."""
        assert self.control_socket is not None

        async def handler(request: dict[str, Any]) -> Any:
            if self.speaker is None:
                # an answer to the client; anything else would end the agent
                raise ControlError("the BGP speaker is not running (see the agent's log)")
            return await handle(self.speaker, request)

        await serve_control(self.control_socket, handler, task_status=task_status)


def restart_note(control_socket: str) -> Path:
    return Path(f"{control_socket}.restart")


# -- the agent's side: whether and how to run it ---------------------------------------


def missing_requirement(options: Options) -> str | None:
    """Why the routing controller cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "not running as root"
    try:
        import pyroute2  # noqa: F401, PLC0415
    except ImportError:
        return "pyroute2 is not installed"
    return None


async def start_router(
    nursery: trio.Nursery,
    options: Options,
    store: Store,
    health: Health,
    events: EventSink | None = None,
) -> RoutingController | None:
    """Start the controller in `nursery` if it can run here; else warn once."""
    reason = missing_requirement(options)
    if reason is not None:
        log.warning("routing controller not started: %s", reason)
        return None
    from kuberouter.dataplane.routes import KernelRoutes  # noqa: PLC0415 (needs pyroute2)

    name = node_name(options)
    settings = RouterSettings.from_options(options)
    ranges = (
        *options.service_cluster_ip_range,
        *options.service_external_ip_range,
        *options.loadbalancer_ip_range,
    )
    planner = Planner(name, settings, service_ranges=ranges)

    def own_addresses() -> list[str]:
        node = store.get(Node, name)
        return list(node.internal_ips + node.external_ips) if node is not None else []

    fib = await trio.to_thread.run_sync(KernelRoutes, settings.overlay, own_addresses)
    restart = RestartConfig(
        enabled=settings.graceful_restart is not None,
        restart_time=int(options.bgp_graceful_restart_time),
        deferral_time=options.bgp_graceful_restart_deferral_time,
        # As the large-cluster fork: IPv6 restarts gracefully only when asked to.
        families=None if options.bgp_graceful_restart_ipv6 else frozenset({IPV4_UNICAST}),
    )
    health.register("routing", options.routes_sync_period)
    controller = RoutingController(
        store,
        planner,
        fib,
        health,
        events=events,
        sync_period=options.routes_sync_period,
        repair_period=options.injected_routes_sync_period,
        control_socket=options.bgp_control_socket or None,
        restart=restart,
    )
    await nursery.start(controller.run)
    return controller


def cleanup(options: Options) -> None:
    """--cleanup-config: every route of ours (protocol 17) and every tun-* tunnel."""
    del options
    if os.geteuid() != 0:
        raise RuntimeError("not running as root")
    from kuberouter.dataplane.routes import KernelRoutes  # noqa: PLC0415

    routes = KernelRoutes(None, list)
    try:
        removed = routes.flush()
        log.info("routing cleanup: %d routes removed", removed)
    finally:
        routes.close()
