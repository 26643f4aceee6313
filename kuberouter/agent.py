"""The agent process: one root trio nursery holding the Kubernetes layer, the enabled
controllers (as they arrive), and the health and metrics servers.

SIGTERM/SIGINT stop it cleanly and leave the data plane in place, so pods keep their
network while the agent restarts. `--cleanup-config` instead runs `cleanup`: every
controller's cleanup step (CLEANUP_STEPS) removes what that controller creates.
"""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import Callable, Iterator, Sequence

import prometheus_client
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kuberouter.controllers import firewall, podnet, proxy, routing
from kuberouter.controllers.firewall import node_name, start_firewall
from kuberouter.controllers.loadbalancer import start_loadbalancer
from kuberouter.controllers.podnet import start_podnet
from kuberouter.controllers.proxy import start_service_proxy
from kuberouter.controllers.routing import RoutingController, start_router
from kuberouter.health import REGISTRY, Health, health_routes, metrics_routes, serve_http
from kuberouter.k8s import Store, Watcher
from kuberouter.k8s.events import NodeEvents
from kuberouter.options import Options

log = logging.getLogger("kuberouter.agent")

# --cleanup-config: (controller, step) in order; a step removes everything its controller
# ever creates, whichever flags it ran with, and raises naming what it could not remove.
# Controllers add theirs here (routes and IPVS when they arrive).
CleanupStep = Callable[[Options], None]
CLEANUP_STEPS: tuple[tuple[str, CleanupStep], ...] = (
    ("firewall", firewall.cleanup),
    ("routing", routing.cleanup),
    ("pod network", podnet.cleanup),
    ("service proxy", proxy.cleanup),
)


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
    started = options.run_firewall and await start_firewall(nursery, options, store, health)
    started |= options.run_router and await start_podnet(nursery, options, store, health)
    if options.run_loadbalancer:
        api = watcher.api_client
        started = await start_loadbalancer(nursery, options, store, health, api) or started
    started |= options.run_service_proxy and await start_service_proxy(
        nursery, options, store, health
    )
    if not (started or router):
        log.warning("no controller is running: watching the cluster only")
    settle_memory()
    return router


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
