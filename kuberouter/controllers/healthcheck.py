"""The healthCheckNodePort servers of LoadBalancer Services with externalTrafficPolicy
Local: what a cloud load balancer probes to learn which nodes have endpoints.

As kube-proxy: an HTTP server per port, on every address, answering any GET with 200
while this node has a ready endpoint of the Service and 503 otherwise, and a JSON body
`{"service": {"namespace", "name"}, "localEndpoints": N, "serviceProxyHealthy": true}`.
`sync(state)` opens the ports newly wanted and closes those no longer wanted; a port
that cannot be bound is logged once and retried on the next sync.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import trio

from kuberouter.health import Route, serve_http
from kuberouter.proxy.state import ProxyState, ServicePlan

log = logging.getLogger(__name__)


class HealthCheckServers:
    def __init__(self, nursery: trio.Nursery, address: str = "") -> None:
        self.nursery, self.address = nursery, address
        self.plans: dict[int, ServicePlan] = {}  # port -> the Service it reports on
        self.scopes: dict[int, trio.CancelScope] = {}
        self.failed: set[int] = set()

    async def sync(self, state: ProxyState) -> None:
        wanted = _ports(state.services)
        for port in [port for port in self.scopes if port not in wanted]:
            self.scopes.pop(port).cancel()
            self.plans.pop(port, None)
        for port, plan in wanted.items():
            self.plans[port] = plan
            if port not in self.scopes:
                await self._open(port)

    async def _open(self, port: int) -> None:
        scope = trio.CancelScope()
        routes = {"/": self._answer(port)}
        try:
            await self.nursery.start(_serve, scope, self.address, port, routes)
        except OSError as error:
            if port not in self.failed:
                log.warning("health check node port %d cannot be served: %s", port, error)
            self.failed.add(port)
            return
        self.failed.discard(port)
        self.scopes[port] = scope

    def _answer(self, port: int) -> Route:
        async def answer() -> tuple[int, str, bytes]:
            plan = self.plans[port]
            namespace, _, name = plan.key.partition("/")
            count = plan.local_endpoints()
            body = {
                "service": {"namespace": namespace, "name": name},
                "localEndpoints": count,
                "serviceProxyHealthy": True,
            }
            return (200 if count else 503), "application/json", json.dumps(body).encode()

        return answer


async def _serve(
    scope: trio.CancelScope,
    address: str,
    port: int,
    routes: dict[str, Route],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await serve_http(address, port, routes, any_path=True, task_status=task_status)


def _ports(services: Mapping[str, ServicePlan]) -> dict[int, ServicePlan]:
    return {
        plan.health_check_node_port: plan
        for plan in services.values()
        if plan.health_check_node_port is not None
    }
