"""The agent process: one root trio nursery holding the Kubernetes layer, the enabled
controllers (as they arrive), and the health and metrics servers.

SIGTERM/SIGINT stop it cleanly and leave the data plane in place, so pods keep their
network while the agent restarts. `--cleanup-config` instead runs `cleanup`: every
controller's cleanup step (CLEANUP_STEPS) removes what that controller creates.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import Callable, Iterator, Sequence

import prometheus_client
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kuberouter.controllers import routing
from kuberouter.controllers.routing import RoutingController, start_router
from kuberouter.health import REGISTRY, Health, health_routes, metrics_routes, serve_http
from kuberouter.k8s import Store, Watcher
from kuberouter.k8s.events import NodeEvents
from kuberouter.options import Options, node_name

log = logging.getLogger("kuberouter.agent")

# --cleanup-config: (controller, step) in order; a step removes everything its controller
# ever creates, whichever flags it ran with, and raises naming what it could not remove.
# Controllers add theirs here (routes and IPVS when they arrive).
CleanupStep = Callable[[Options], None]


def _cleanup_of(module: str) -> CleanupStep:
    """`module`'s cleanup, imported when it runs (see LATER)."""
    return lambda options: importlib.import_module(module).cleanup(options)


CLEANUP_STEPS: tuple[tuple[str, CleanupStep], ...] = (
    ("firewall", _cleanup_of("kuberouter.controllers.firewall")),
    ("routing", routing.cleanup),
    ("pod network", _cleanup_of("kuberouter.controllers.podnet")),
    ("service proxy", _cleanup_of("kuberouter.controllers.proxy")),
)

# The controllers that start after the router, and whether they run: their modules (and
# pyroute2, the router's kernel back end) take a few hundred ms of CPU to import, which a
# new node's first route need not wait for. A worker thread imports them while the caches
# sync and the BGP sessions open.
LATER: tuple[tuple[str, Callable[[Options], bool]], ...] = (
    ("pyroute2", lambda o: o.run_router),
    ("kuberouter.dataplane.routes", lambda o: o.run_router),
    ("kuberouter.controllers.firewall", lambda o: o.run_firewall),
    ("kuberouter.controllers.podnet", lambda o: o.run_router),
    ("kuberouter.controllers.loadbalancer", lambda o: o.run_loadbalancer),
    ("kuberouter.controllers.proxy", lambda o: o.run_service_proxy),
)


def import_later_modules(options: Options) -> None:
    for name, wanted in LATER:
        if wanted(options):
            # A module that fails here fails again, with its error, where it is used.
            with contextlib.suppress(Exception):
                importlib.import_module(name)


async def _import_in_thread(options: Options, done: trio.Event) -> None:
    try:
        await trio.to_thread.run_sync(import_later_modules, options)
    finally:
        done.set()


def cleanup(options: Options, steps: Sequence[tuple[str, CleanupStep]] | None = None) -> bool:
    """Run every cleanup step (a failing one does not stop the others); all succeeded?"""
    succeeded = True
    for name, step in CLEANUP_STEPS if steps is None else steps:
        try:
            step(options)
        except Exception as error:  # reported, and the next controller still cleans up
            log.error("%s cleanup failed: %s", name, error)
            succeeded = False
        else:
            log.info("%s cleanup done", name)
    return succeeded


class WatchCollector(Collector):
    """The Kubernetes layer's own figures, read when /metrics is scraped."""

    def __init__(self, watcher: Watcher, store: Store) -> None:
        self.watcher, self.store = watcher, store

    def collect(self) -> Iterator[prometheus_client.Metric]:
        stats = self.watcher.stats
        counters = {
            "kube_router_watch_events": ("events", "Watch events received, per kind"),
            "kube_router_watch_restarts": (
                "watch_restarts",
                "Watches reopened after a drop or error",
            ),
            "kube_router_watch_relists": ("relists", "Lists forced by 410 Gone"),
        }
        for name, (field, help_text) in counters.items():
            family = CounterMetricFamily(name, help_text, labels=["kind"])
            for kind, kind_stats in sorted(stats.items()):
                family.add_metric([kind], getattr(kind_stats, field))
            yield family
        sizes = GaugeMetricFamily(
            "kube_router_store_objects", "Objects in the store, per kind", labels=["kind"]
        )
        for kind, size in sorted(self.store.sizes().items()):
            sizes.add_metric([kind], size)
        yield sizes


async def run_agent(
    options: Options, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    store = Store()
    watcher = Watcher.from_options(options, store)
    health = Health()
    collector = WatchCollector(watcher, store)
    REGISTRY.register(collector)
    gc.disable()  # until the caches are full and the controllers synced: settle_memory()
    # Signals are ours from the start: a SIGTERM while controllers start is a clean stop.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        try:
            async with trio.open_nursery() as nursery:
                router = await _start(nursery, options, watcher, store, health)
                task_status.started()
                async for _ in signals:
                    break
                log.info("stopping; the data plane stays as it is")
                if router is not None:
                    await router.stop()
                nursery.cancel_scope.cancel()
        finally:
            gc.enable()
            REGISTRY.unregister(collector)


async def _start(
    nursery: trio.Nursery, options: Options, watcher: Watcher, store: Store, health: Health
) -> RoutingController | None:
    """The watch layer, the health and metrics servers, then the enabled controllers."""
    imported = trio.Event()
    nursery.start_soon(_import_in_thread, options, imported)
    await nursery.start(watcher.run)
    log.info("caches synced: %s", ", ".join(f"{k} {n}" for k, n in sorted(store.sizes().items())))
    if options.health_port:
        routes = health_routes(health)
        await nursery.start(serve_http, options.health_addr or "", options.health_port, routes)
    if options.metrics_port:
        routes = metrics_routes(options.metrics_path)
        await nursery.start(serve_http, options.metrics_addr or "", options.metrics_port, routes)
    router = None
    if options.run_router:
        events = NodeEvents(watcher.api_client, node_name(options))
        router = await start_router(nursery, options, store, health, events)
    # Waited for here, not in an import: the event loop (the new sessions) runs meanwhile.
    await imported.wait()
    started = await _start_later(nursery, options, watcher, store, health)
    if not (started or router):
        log.warning("no controller is running: watching the cluster only")
    settle_memory()
    return router


async def _start_later(
    nursery: trio.Nursery, options: Options, watcher: Watcher, store: Store, health: Health
) -> bool:
    """The controllers after the router (their modules imported by then: LATER)."""
    # Imported here (PLC0415 below) so that a disabled controller costs nothing.
    started = False
    if options.run_firewall:
        from kuberouter.controllers.firewall import start_firewall  # noqa: PLC0415

        started = await start_firewall(nursery, options, store, health)
    if options.run_router:
        from kuberouter.controllers.podnet import start_podnet  # noqa: PLC0415

        started = await start_podnet(nursery, options, store, health) or started
    if options.run_loadbalancer:
        from kuberouter.controllers.loadbalancer import start_loadbalancer  # noqa: PLC0415

        api = watcher.api_client
        started = await start_loadbalancer(nursery, options, store, health, api) or started
    if options.run_service_proxy:
        from kuberouter.controllers.proxy import start_service_proxy  # noqa: PLC0415

        started = await start_service_proxy(nursery, options, store, health) or started
    return started


def settle_memory() -> None:
    """Collect once, take what is alive (the caches, the controllers' state) out of the
    garbage collector's sight and turn it back on (run_agent turns it off while the caches
    fill: collecting while hundreds of thousands of lasting objects arrive only walks them
    again and again, half of a large cluster's load time). A full collection then walks
    only what came since, so it cannot pause a change for the tenths of a second a walk
    of a large cluster's objects takes. Those objects are still freed when nothing refers
    to them any more."""
    gc.collect()
    gc.freeze()
    gc.enable()
