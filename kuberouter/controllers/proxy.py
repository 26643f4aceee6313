"""The service proxy controller (`--run-service-proxy`), on the shared run loop (loop.py).

Changed Services, EndpointSlices and Nodes go to the incremental compiler, which
recompiles only the Services they belong to; the back end writes only those Services. A
Service whose plan comes out equal (an annotation or status no rule reads) costs
nothing. Every --ipvs-sync-period a reconcile reads the kernel back and repairs drift.
The last programmed state is served on /services (kube-router-ctl services), and the
healthCheckNodePorts of Local LoadBalancer Services are served beside it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import prometheus_client
import trio

from kuberouter.controllers.healthcheck import HealthCheckServers
from kuberouter.controllers.loop import SyncLoop, may_start
from kuberouter.controllers.proxy_metrics import ServiceCounters
from kuberouter.dataplane.commands import CommandError
from kuberouter.dataplane.services import ServiceBackend, SyncStats
from kuberouter.dataplane.services.ipvs import IpvsServices
from kuberouter.dataplane.services.nftables import NftablesServices
from kuberouter.health import REGISTRY, Health
from kuberouter.k8s.store import Change, Snapshot, Store
from kuberouter.model import EndpointSlice, Node, Service
from kuberouter.options import Options, node_name
from kuberouter.proxy.config import ProxyConfig
from kuberouter.proxy.incremental import IncrementalCompiler, node_facts
from kuberouter.proxy.report import report_json
from kuberouter.proxy.state import ProxyState

log = logging.getLogger(__name__)

KINDS = ("Service", "EndpointSlice", "Node")
HEARTBEAT = "service-proxy"
HOUSEKEEPING = 1.0  # seconds between looks at draining endpoints

SYNC_TIME = prometheus_client.Histogram(
    "kube_router_controller_ipvs_services_sync_time",
    "Time it took for the service proxy to sync (compile and program), in seconds",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SERVICES = prometheus_client.Gauge(
    "kube_router_controller_ipvs_services",
    "Virtual services (address, port, protocol) the service proxy has programmed",
    registry=REGISTRY,
)


def frontends(state: ProxyState) -> int:
    return sum(len(service.frontends) for service in state.virtual_services())


class ProxyController(SyncLoop[IncrementalCompiler, ProxyState, SyncStats]):
    name = "service proxy"
    kinds = KINDS

    def __init__(
        self,
        store: Store,
        backend: ServiceBackend,
        node: str,
        config: ProxyConfig,
        health: Health,
        sync_period: float,
    ) -> None:
        super().__init__(store, backend, health, sync_period)
        self.node, self.config = node, config
        self.health_checks: HealthCheckServers | None = None
        self.last: SyncStats | None = None

    def compiler_for(self, snapshot: Snapshot) -> IncrementalCompiler:
        compiler = IncrementalCompiler(
            node_facts(self.node, snapshot.items(Node).values()), self.config
        )
        for key, service in snapshot.items(Service).items():
            compiler.set_service(key, service)
        for key, endpoint_slice in snapshot.items(EndpointSlice).items():
            compiler.set_slice(key, endpoint_slice)
        return compiler

    def feed(self, compiler: IncrementalCompiler, changes: Iterable[Change]) -> None:
        """Hand store changes to the compiler; feeding one twice is harmless."""
        for change in changes:
            if change.kind == "Service":
                compiler.set_service(change.key, cast(Service | None, change.new))
            elif change.kind == "EndpointSlice":
                compiler.set_slice(change.key, cast(EndpointSlice | None, change.new))
            elif change.kind == "Node":
                compiler.set_node(node_facts(self.node, self.store.items(Node).values()))

    def state(self, compiler: IncrementalCompiler) -> ProxyState:
        return compiler.state()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.health_checks = HealthCheckServers(nursery)
            self.health.routes["/services"] = self._report
            await nursery.start(super().run)
            nursery.start_soon(self._housekeeping)
            task_status.started()

    async def _housekeeping(self) -> None:
        """Every second: let the back end finish what drains (graceful termination)."""
        housekeeping = getattr(self.backend, "housekeeping", None)
        while housekeeping is not None:
            await trio.sleep(HOUSEKEEPING)
            if getattr(self.backend, "draining", None):
                try:
                    await trio.to_thread.run_sync(housekeeping)
                except Exception as error:  # the next round, or the next sync, tries again
                    log.warning("service proxy housekeeping failed: %s", error)

    async def synced(
        self, what: str, desired: ProxyState, stats: SyncStats, seconds: float
    ) -> None:
        self.last = stats
        SYNC_TIME.observe(seconds)
        SERVICES.set(frontends(desired))
        if self.health_checks is not None:
            await self.health_checks.sync(desired)
        self.health.beat(HEARTBEAT, f"{what}: {describe(stats, desired)}")
        log.debug("service proxy %s: %s", what, describe(stats, desired))

    async def _report(self) -> tuple[int, str, bytes]:
        if self.programmed is None:
            return 503, "application/json", b'{"error": "not synced yet"}\n'
        body: dict[str, Any] = report_json(self.programmed)
        return 200, "application/json", json.dumps(body, indent=1).encode()


def describe(stats: SyncStats, state: ProxyState) -> str:
    """The heartbeat text: '<N> services, <M> written, <K> deleted'."""
    return (
        f"{len(state.services)} services, {stats.services_written} written, "
        f"{stats.services_deleted} deleted"
    )


# -- the agent's side: whether and how to run it ---------------------------------------


def missing_requirement(
    options: Options,
    *,
    euid: Callable[[], int] = os.geteuid,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:
    """Why the proxy cannot run here (None: it can)."""
    if euid() != 0:
        return "not running as root"
    if options.service_proxy_mode == "nftables":
        return None if which("nft") else "nft not found"
    for tool in ("ipset", "ip", "nft", "ipvsadm"):
        if not which(tool):
            return f"{tool} not found"
    if not any(which(f"iptables-{variant}-restore") for variant in ("nft", "legacy")):
        return "iptables-restore not found"
    if not ipvs_available():
        return "no IPVS in this kernel (ip_vs; or use --service-proxy-mode=nftables)"
    return None


IP_VS = Path("/proc/net/ip_vs")


def ipvs_available(proc: Path = IP_VS) -> bool:
    """IPVS is there once the ip_vs module is loaded (modprobe it if it can be)."""
    if not proc.exists() and shutil.which("modprobe"):
        subprocess.run(["modprobe", "ip_vs"], capture_output=True, check=False)
    return proc.exists()


def make_backend(options: Options) -> ServiceBackend:
    if options.service_proxy_mode == "nftables":
        return NftablesServices()
    return IpvsServices()


async def start_service_proxy(
    nursery: trio.Nursery, options: Options, store: Store, health: Health
) -> bool:
    """Start the controller in `nursery` if it can run here; else warn once. Started?"""
    name = node_name(options)
    if not may_start("service proxy", store, name, missing_requirement(options)):
        return False
    period = options.ipvs_sync_period
    health.register(HEARTBEAT, period)
    backend = make_backend(options)
    if isinstance(backend, IpvsServices):
        REGISTRY.register(ServiceCounters(backend.service_counters))
    controller = ProxyController(
        store, backend, name, ProxyConfig.from_options(options), health, period
    )
    await nursery.start(controller.run)
    return True


def cleanup(options: Options, *, euid: Callable[[], int] = os.geteuid) -> None:
    """--cleanup-config: remove what the service proxy creates in either mode (nftables
    tables; IPVS services, kube-dummy-if, chains and sets); raises RuntimeError naming
    what could not be removed."""
    del options  # every back end is cleaned, whatever the flags say now
    if euid() != 0:
        raise RuntimeError("not running as root")
    failed = []
    parts: list[tuple[str, bool, Callable[[], object]]] = [
        ("nftables", shutil.which("nft") is not None, lambda: NftablesServices().cleanup()),
        ("IPVS", ipvs_available() and shutil.which("ipset") is not None,
         lambda: IpvsServices().cleanup()),
    ]  # fmt: skip
    for name, present, remove in parts:
        if not present:
            log.info("service proxy cleanup skipped %s: not on this node", name)
            continue
        try:
            remove()
        except (CommandError, OSError) as error:
            failed.append(f"{name}: {error}")
        else:
            log.info("service proxy cleanup: %s removed", name)
    if failed:
        raise RuntimeError("; ".join(failed))
