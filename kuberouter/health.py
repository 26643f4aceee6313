"""/healthz and /metrics: a minimal HTTP/1.1 server on trio (GET only).

Health (upstream semantics, minus its flaw): 200 while every enabled controller has
reported progress within its sync period + 5 s, else 500. An API-server outage alone does
not make the agent unhealthy: the data plane keeps working, and a liveness probe that kills
the agent then only makes things worse. The body says what each controller last did.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import attrs
import prometheus_client
import trio

from kuberouter.version import __version__

log = logging.getLogger(__name__)
GRACE = 5.0  # seconds past a controller's sync period before it counts as stuck

REGISTRY = prometheus_client.CollectorRegistry()
BUILD_INFO = prometheus_client.Gauge(
    "kube_router_build_info",
    "Build information of the running kube-router",
    ["version", "python"],
    registry=REGISTRY,
)


@attrs.define
class Heartbeat:
    sync_period: float
    last_beat: float
    last_action: str = "starting"


class Health:
    """Controllers report progress here; /healthz reads it."""

    def __init__(self, clock: Callable[[], float] = trio.current_time) -> None:
        self._clock = clock
        self._beats: dict[str, Heartbeat] = {}
        # Served next to /healthz; controllers may add read-only views (e.g. /services).
        self.routes: dict[str, Route] = {}

    def register(self, controller: str, sync_period: float) -> None:
        self._beats[controller] = Heartbeat(sync_period, self._clock())

    def beat(self, controller: str, action: str) -> None:
        beat = self._beats[controller]
        beat.last_beat, beat.last_action = self._clock(), action

    def status(self) -> tuple[bool, dict[str, object]]:
        now = self._clock()
        report: dict[str, object] = {}
        healthy = True
        for name, beat in sorted(self._beats.items()):
            age = now - beat.last_beat
            ok = age <= beat.sync_period + GRACE
            healthy &= ok
            report[name] = {
                "healthy": ok,
                "seconds_since_progress": round(age, 3),
                "sync_period": beat.sync_period,
                "last_action": beat.last_action,
            }
        return healthy, report


Route = Callable[[], Awaitable[tuple[int, str, bytes]]]


def health_routes(health: Health) -> dict[str, Route]:
    async def healthz() -> tuple[int, str, bytes]:
        healthy, report = health.status()
        body = json.dumps({"healthy": healthy, "controllers": report}, indent=1).encode()
        return (200 if healthy else 500), "application/json", body

    health.routes["/healthz"] = healthz
    return health.routes


def metrics_routes(path: str = "/metrics") -> dict[str, Route]:
    BUILD_INFO.labels(version=__version__, python=_python()).set(1)

    async def metrics() -> tuple[int, str, bytes]:
        return (
            200,
            prometheus_client.CONTENT_TYPE_LATEST,
            prometheus_client.generate_latest(REGISTRY),
        )

    return {path: metrics}


async def serve_http(
    address: str,
    port: int,
    routes: dict[str, Route],
    *,
    any_path: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `routes` (path -> handler) until cancelled; reports the bound port. An empty
    `address` is every address (upstream's default for --health-addr and --metrics-addr:
    kubelet probes the node's address). `any_path`: the one route answers every path."""
    listeners = await trio.open_tcp_listeners(port, host=address or None)
    task_status.started(listeners[0].socket.getsockname()[1])

    async def handle(stream: trio.SocketStream) -> None:
        await _handle(stream, routes, any_path)

    await trio.serve_listeners(handle, listeners)


async def _handle(stream: trio.SocketStream, routes: dict[str, Route], any_path: bool) -> None:
    async with stream:
        request = b""
        with trio.move_on_after(10):
            while b"\r\n\r\n" not in request and len(request) < 16384:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                request += chunk
        parts = request.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or parts[0] not in (b"GET", b"HEAD"):
            status, kind, body = 405, "text/plain", b"method not allowed\n"
        else:
            path = parts[1].decode(errors="replace").split("?", 1)[0]
            route = next(iter(routes.values()), None) if any_path else routes.get(path)
            status, kind, body = await route() if route else (404, "text/plain", b"not found\n")
        reason = {
            200: "OK",
            404: "Not Found",
            405: "Method Not Allowed",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        head = (
            f"HTTP/1.1 {status} {reason.get(status, '')}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(head + (b"" if parts[:1] == [b"HEAD"] else body))


def _python() -> str:
    import platform  # noqa: PLC0415

    return platform.python_version()
