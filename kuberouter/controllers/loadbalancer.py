"""The LoadBalancer address allocator (--run-loadbalancer): one agent in the cluster at a time,
the holder of the `kube-router-lballoc` Lease, writes status.loadBalancer.ingress.

- Becoming the leader: a fresh list of Services from the API (not the watch cache, which
  may not yet show the last leader's writes) is what is allocated; then every Service is
  brought in line.
- Then, per batch of Service changes, only the changed ones; every
  --loadbalancer-sync-period, all of them again from the store (the repair).
- A write reads the Service first, plans on that, and replaces its status subresource over
  its resourceVersion; a 409 means it changed meanwhile: read and plan again (5 tries).
- Before every write the leadership deadline is checked (kuberouter.k8s.election).

Followers only beat their heartbeat. Problems (no free address, a requested address in
use) are logged once per change and counted in /metrics.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import prometheus_client
import trio

from kuberouter.controllers.batch import next_batch
from kuberouter.health import REGISTRY, Health
from kuberouter.k8s import client, writes
from kuberouter.k8s.election import LeaderElection
from kuberouter.k8s.lease import Timings
from kuberouter.k8s.store import Change, Store
from kuberouter.lballoc.allocator import Allocator, Plan, unreadable
from kuberouter.lballoc.pools import Pools
from kuberouter.model import InvalidObject, Service
from kuberouter.options import Options, node_name

log = logging.getLogger(__name__)

LEASE_NAME = "kube-router-lballoc"  # upstream's
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
WRITE_TRIES = 5  # as client-go's retry.DefaultRetry

SYNC_TIME = prometheus_client.Histogram(
    "kube_router_controller_loadbalancer_sync_time",
    "Time it took the load balancer allocator to bring the Services in line, in seconds",
    registry=REGISTRY,
)
LEADER = prometheus_client.Gauge(
    "kube_router_loadbalancer_leader",
    "1 while this agent holds the allocator's lease",
    registry=REGISTRY,
)
ALLOCATED = prometheus_client.Gauge(
    "kube_router_loadbalancer_ips_allocated",
    "Pool addresses in use, per family (as the leader sees them)",
    ["family"],
    registry=REGISTRY,
)
CHANGES = prometheus_client.Counter(
    "kube_router_loadbalancer_addresses",
    "Addresses written into (allocated) or removed from (released) Service statuses",
    ["action"],
    registry=REGISTRY,
)
UNSATISFIED = prometheus_client.Gauge(
    "kube_router_loadbalancer_services_unsatisfied",
    "LoadBalancer Services of ours missing an address they want (see the log for why)",
    registry=REGISTRY,
)


def lease_namespace(env: dict[str, str] | None = None, token_dir: Path | None = None) -> str:
    """POD_NAMESPACE, else the service account's namespace, else kube-system."""
    env = dict(os.environ) if env is None else env
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        return (token_dir or SERVICE_ACCOUNT_NAMESPACE).read_text().strip() or "kube-system"
    except OSError:
        return "kube-system"


def status_with(status: dict[str, Any] | None, plan: Plan) -> dict[str, Any]:
    """The Service status after `plan`: other entries (hostnames, foreign addresses) kept."""
    new = dict(status or {})
    balancer = dict(new.get("loadBalancer") or {})
    released = set(plan.release)
    ingress = [e for e in balancer.get("ingress") or [] if _entry_ip(e) not in released]
    ingress += [{"ip": ip} for ip in plan.add]
    if ingress:
        balancer["ingress"] = ingress
    else:
        balancer.pop("ingress", None)
    new["loadBalancer"] = balancer
    return new


def _entry_ip(entry: Any) -> str | None:
    try:
        return ipaddress.ip_address(entry["ip"]).compressed
    except (KeyError, TypeError, ValueError):
        return None


class LoadBalancerController:
    def __init__(
        self,
        store: Store,
        api_client: client.ApiClient,
        allocator: Allocator,
        election: LeaderElection,
        health: Health,
        sync_period: float,
    ) -> None:
        self.store, self.api_client, self.allocator = store, api_client, allocator
        self.election, self.health, self.sync_period = election, health, sync_period
        self._problems: dict[str, str] = {}  # key -> problem last logged
        self._fresh_needed = True  # the allocator's picture must come from a new list
        self.writes = 0  # status writes that succeeded (tests wait on these)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, events = trio.open_memory_channel[Change | bool](math.inf)
        services = self.store.subscribe(["Service"])
        leadership = self.election.subscribe()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_forward, services, send.clone())
            nursery.start_soon(_forward, leadership, send)
            await nursery.start(self.election.run)
            task_status.started()
            await self._loop(events)

    async def _loop(self, events: trio.MemoryReceiveChannel[Change | bool]) -> None:
        deadline = trio.current_time() + self.sync_period
        while True:
            batch = await next_batch(events, deadline)
            turns = [event for event in batch if isinstance(event, bool)]
            changed = [event for event in batch if isinstance(event, Change)]
            if turns:
                LEADER.set(1 if turns[-1] else 0)
            if turns and turns[-1]:
                await self._sync("became the leader", fresh=True)
            elif changed and self.election.leading() and not self._fresh_needed:
                self._observe_changes(changed)
                await self._bring_in_line({change.key for change in changed})
            if trio.current_time() >= deadline or turns:
                if self.election.leading() and not turns:
                    await self._sync("periodic sync", fresh=self._fresh_needed)
                self._beat()
                deadline = trio.current_time() + self.sync_period

    async def _sync(self, why: str, *, fresh: bool) -> None:
        """Every Service brought in line; `fresh`: from a new list (else the store)."""
        start = time.perf_counter()
        try:
            if fresh:
                self._fresh_needed = True
                self.allocator.reset(await trio.to_thread.run_sync(self._list_services))
                self._fresh_needed = False
            else:
                self._observe_store()
            self.allocator.expire(trio.current_time())
            await self._bring_in_line(self.allocator.known())
        except writes.FAILURES as error:
            log.error("load balancer %s failed, retrying at the next period: %s", why, error)
            return
        SYNC_TIME.observe(time.perf_counter() - start)
        log.debug("load balancer %s done", why)

    def _list_services(self) -> list[Service]:
        """Every Service; one the model refuses still holds its addresses (a stand-in)."""
        found = []
        resource = client.RESOURCES_BY_KIND["Service"]
        for page in client.list_pages(self.api_client, resource):
            for raw in page.get("items") or []:
                view = client.convert(resource, raw)
                stand_in = view if isinstance(view, Service) else unreadable(raw)
                if stand_in is not None:
                    found.append(stand_in)
        return found

    def _observe_store(self) -> None:
        current = self.store.snapshot().items(Service)
        refused = {key for kind, key in self.store.invalid() if kind == "Service"}
        for key in self.allocator.known():
            if key not in current and key not in refused:
                self.allocator.observe(key, None)
        for key, service in current.items():
            self.allocator.observe(key, service)

    def _observe_changes(self, changes: list[Change]) -> None:
        refused = {key for kind, key in self.store.invalid() if kind == "Service"}
        for change in changes:
            if change.new is None and change.key in refused:
                continue  # refused, not deleted: what we knew of it stays held
            self.allocator.observe(change.key, cast(Service | None, change.new))

    async def _bring_in_line(self, keys: Iterable[str]) -> None:
        """Write where a plan changes something; a failed write waits for the next period."""
        for key in sorted(keys):
            service = self.allocator.service(key)
            if service is None:
                continue
            plan = self.allocator.plan(service)
            self._report(plan)
            if not plan.changed:
                continue
            if not self.election.leading():
                break
            try:
                await self._write(key)
            except writes.FAILURES as error:
                log.error("writing the status of %s failed, retrying later: %s", key, error)
        self._gauges()

    async def _write(self, key: str) -> None:
        """Read, plan and write one Service's status, again after a conflict."""
        namespace, _, name = key.partition("/")
        for _ in range(WRITE_TRIES):
            try:
                raw = await trio.to_thread.run_sync(
                    writes.get_service, self.api_client, namespace, name
                )
                fresh = Service.from_k8s(raw)
            except writes.ApiError as error:
                if error.code == 404:
                    self.allocator.observe(key, None)
                    return
                raise
            except InvalidObject as problem:
                log.warning("not allocating for %s: %s", key, problem.reason)
                return
            self.allocator.observe(key, fresh)
            plan = self.allocator.plan(fresh)
            self._report(plan)
            if not plan.changed or not self.election.leading():
                return
            raw["status"] = status_with(raw.get("status"), plan)
            try:
                await trio.to_thread.run_sync(writes.replace_service_status, self.api_client, raw)
            except writes.ApiError as error:
                if error.code == 409:
                    continue  # changed since we read it: read and plan again
                raise
            self._written(plan)
            return
        log.warning("status of %s kept changing under us; retrying at the next period", key)

    def _written(self, plan: Plan) -> None:
        self.allocator.commit(plan, trio.current_time())
        self.writes += 1
        for ip in plan.add:
            log.info("allocated %s to %s", ip, plan.key)
        for ip in plan.release:
            log.info("released %s from %s", ip, plan.key)
        CHANGES.labels(action="allocated").inc(len(plan.add))
        CHANGES.labels(action="released").inc(len(plan.release))

    def _report(self, plan: Plan) -> None:
        """Log a problem when it first appears or changes, not on every pass."""
        if plan.problem and self._problems.get(plan.key) != plan.problem:
            log.warning("cannot allocate for %s: %s", plan.key, plan.problem)
        if plan.problem:
            self._problems[plan.key] = plan.problem
        else:
            self._problems.pop(plan.key, None)

    def _gauges(self) -> None:
        known = self.allocator.known()
        self._problems = {k: v for k, v in self._problems.items() if k in known}  # gone: no problem
        for family in ("IPv4", "IPv6"):
            ALLOCATED.labels(family=family).set(self.allocator.allocated(family))
        UNSATISFIED.set(len(self._problems))

    def _beat(self) -> None:
        if self.election.leading():
            text = f"leader: {self.allocator.allocated('IPv4')} IPv4"
            text += f" and {self.allocator.allocated('IPv6')} IPv6 addresses allocated"
        else:
            text = f"standby (leader: {self.election.holder or 'none yet'})"
        self.health.beat("loadbalancer", text)


async def _forward(
    source: trio.MemoryReceiveChannel[Any], target: trio.MemorySendChannel[Change | bool]
) -> None:
    async with source, target:
        async for item in source:
            target.send_nowait(item)


# -- the agent's side ----------------------------------------------------------------------


async def start_loadbalancer(
    nursery: trio.Nursery,
    options: Options,
    store: Store,
    health: Health,
    api_client: client.ApiClient,
    *,
    timings: Timings | None = None,
) -> bool:
    """Start the allocator in `nursery` (it runs whether or not this agent leads)."""
    pools = Pools.parse(options.loadbalancer_ip_range)  # checked by the command line already
    if not pools.networks:
        log.warning("--run-loadbalancer without --loadbalancer-ip-range: nothing to hand out")
    period = options.loadbalancer_sync_period
    health.register("loadbalancer", period)
    election = LeaderElection(
        api_client, lease_namespace(), LEASE_NAME, node_name(options), timings
    )
    allocator = Allocator(
        pools, default_class=options.loadbalancer_default_class, hold=max(60.0, 2 * period)
    )
    controller = LoadBalancerController(store, api_client, allocator, election, health, period)
    await nursery.start(controller.run)
    log.info(
        "load balancer allocator started (lease %s/%s, identity %s, ranges %s)",
        election.namespace, LEASE_NAME, election.identity,
        ", ".join(map(str, pools.networks)) or "none",
    )  # fmt: skip
    return True
