"""/healthz and /metrics over real HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import trio
import trio.testing

from kuberouter.health import GRACE, Health, health_routes, metrics_routes, serve_http


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_healthz_follows_heartbeats_and_metrics_serve_build_info() -> None:
    clock = {"now": 100.0}
    health = Health(clock=lambda: clock["now"])
    health.register("firewall", sync_period=300)
    routes = health_routes(health) | metrics_routes("/metrics")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_http, "127.0.0.1", 0, routes)
        base = f"http://127.0.0.1:{port}"
        status, body = await trio.to_thread.run_sync(fetch, f"{base}/healthz")
        assert status == 200 and '"last_action": "starting"' in body
        health.beat("firewall", "synced 12 chains")
        clock["now"] += 300 + GRACE + 1  # no progress for longer than the period + grace
        status, body = await trio.to_thread.run_sync(fetch, f"{base}/healthz")
        assert status == 500 and "synced 12 chains" in body
        health.beat("firewall", "synced 13 chains")
        assert (await trio.to_thread.run_sync(fetch, f"{base}/healthz"))[0] == 200
        status, metrics = await trio.to_thread.run_sync(fetch, f"{base}/metrics")
        assert status == 200 and "kube_router_build_info{" in metrics
        assert (await trio.to_thread.run_sync(fetch, f"{base}/nope"))[0] == 404
        nursery.cancel_scope.cancel()


async def test_empty_address_listens_on_every_address() -> None:
    """--health-addr's default is empty, as upstream's: it must bind, not fail to resolve."""
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_http, "", 0, metrics_routes("/metrics"))
        status, _ = await trio.to_thread.run_sync(fetch, f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        nursery.cancel_scope.cancel()
