"""The service proxy controller against FakeServices and a Store filled directly."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import prometheus_client
import pytest
import trio

from kuberouter.controllers.proxy import ProxyController, missing_requirement
from kuberouter.dataplane.services.fake import FakeServices
from kuberouter.health import REGISTRY, Health
from kuberouter.k8s.store import Store
from kuberouter.model import EndpointSlice, Node, Service
from kuberouter.options import Options
from kuberouter.proxy.incremental import compile_all, node_facts
from kuberouter.proxy.state import ProxyState
from tests.kuberouter.controllers.test_firewall import node, until
from tests.kuberouter.proxy.builders import endpoint, service, slice_of
from tests.kuberouter.proxy.flows import config

NODE = "node-1"
PERIOD = 30.0


def put(store: Store, *values: Node | Service | EndpointSlice) -> None:
    for value in values:
        store.apply(type(value).__name__, value.key, value)


def cluster_store(services: int = 3) -> Store:
    store = Store()
    put(store, node(NODE, "192.168.0.1", pod_cidrs=("10.1.1.0/24",)),
        node("node-2", "192.168.0.2", pod_cidrs=("10.1.2.0/24",)))  # fmt: skip
    for number in range(services):
        put(store, service(f"s{number}", f"10.96.0.{number + 1}"),
            slice_of(f"s{number}", endpoint(f"10.1.1.{number + 1}"), endpoint("10.1.2.9", "node-2")))  # fmt: skip
    return store


def fresh(store: Store) -> ProxyState:
    snap = store.snapshot()
    facts = node_facts(NODE, snap.items(Node).values())
    return compile_all(facts, config(), snap.items(Service), snap.items(EndpointSlice))


@asynccontextmanager
async def running(store: Store, backend: FakeServices, health: Health | None = None) -> AsyncIterator[ProxyController]:  # fmt: skip
    health = health or Health()
    health.register("service-proxy", PERIOD)
    controller = ProxyController(store, backend, NODE, config(), health, PERIOD)
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield controller
        nursery.cancel_scope.cancel()


async def test_starts_with_a_repair_then_writes_only_the_changed_service() -> None:
    store, backend = cluster_store(), FakeServices()
    async with running(store, backend) as controller:
        assert backend.holds(fresh(store)) and backend.reads == 1
        put(store, slice_of("s1", endpoint("10.1.1.77")))
        await until(lambda: controller.syncs == 2)
        assert backend.written[-1] == ["ns/s1"]
        assert backend.holds(fresh(store))


async def test_an_annotation_or_status_change_does_no_data_plane_work() -> None:
    store, backend = cluster_store(), FakeServices()
    async with running(store, backend) as controller:
        writes = len(backend.written)
        put(store, service("s0", "10.96.0.1", annotations={"example.com/owner": "team-a"}))
        put(store, service("s2", "10.96.0.3", status={"conditions": [{"type": "Ready"}]}))
        await trio.sleep(1)
        assert len(backend.written) == writes
        assert controller.failures == 0


async def test_a_deleted_service_and_its_slice_are_removed() -> None:
    store, backend = cluster_store(), FakeServices()
    async with running(store, backend) as controller:
        store.apply("Service", "ns/s2", None)
        store.apply("EndpointSlice", "ns/s2-ipv4", None)
        await until(lambda: "ns/s2" not in backend.plans)
        assert backend.holds(fresh(store)) and controller.failures == 0


async def test_the_periodic_reconcile_repairs_drift(autojump_clock: trio.testing.MockClock) -> None:
    store, backend = cluster_store(), FakeServices()
    async with running(store, backend) as controller:
        backend.drop("ns/s0")
        await trio.sleep(PERIOD + 1)
        await until(lambda: controller.syncs >= 2)
        assert backend.holds(fresh(store))


async def test_a_failed_write_is_retried_as_a_repair() -> None:
    store, backend = cluster_store(), FakeServices()
    async with running(store, backend) as controller:
        backend.fail_next = "nft: the kernel said no"
        put(store, slice_of("s0", endpoint("10.1.1.99")))
        await until(lambda: controller.syncs == 2)
        assert backend.holds(fresh(store))


async def test_services_report_is_served_and_heartbeat_beats() -> None:
    store, backend, health = cluster_store(), FakeServices(), Health()
    async with running(store, backend, health):
        status, _, body = await health.routes["/services"]()
        report = json.loads(body)
        assert status == 200 and report["node"] == NODE
        ports = {entry["service"]: entry["ports"] for entry in report["services"]}
        endpoints = ports["ns/s0"][0]["endpoints"]
        assert [(e["address"], e["local"]) for e in endpoints] == [
            ("10.1.1.1:8080", True), ("10.1.2.9:8080", False)]  # fmt: skip
        healthy, beats = health.status()
        assert healthy and "3 services" in beats["service-proxy"]["last_action"]  # type: ignore[index]
    sync_count = REGISTRY.get_sample_value("kube_router_controller_ipvs_services_sync_time_count")
    assert sync_count is not None and sync_count >= 1
    assert REGISTRY.get_sample_value("kube_router_controller_ipvs_services") == 3


async def test_a_node_change_reaches_the_state_without_recompiling() -> None:
    store, backend = cluster_store(), FakeServices()
    async with running(store, backend) as controller:
        put(store, node("node-3", "192.168.0.3", pod_cidrs=("10.1.3.0/24",)))
        await until(lambda: controller.programmed is not None
                    and "10.1.3.0/24" in controller.programmed.node.pod_cidrs)  # fmt: skip
        assert controller.compiler is not None and controller.compiler.compiled == 3


def test_it_runs_only_where_it_can() -> None:
    nft = Options.defaults()
    assert missing_requirement(nft, euid=lambda: 1000) == "not running as root"
    mode = attrs.evolve(nft, service_proxy_mode="nftables")
    assert missing_requirement(mode, euid=lambda: 0, which=lambda _: None) == "nft not found"
    assert missing_requirement(mode, euid=lambda: 0, which=lambda _: "/usr/sbin/nft") is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(port: int) -> tuple[int, dict[str, object]]:
    def fetch() -> tuple[int, dict[str, object]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/any/path")
            reply = connection.getresponse()
            return reply.status, json.loads(reply.read())
        finally:
            connection.close()

    return await trio.to_thread.run_sync(fetch)


async def test_health_check_node_port_answers_with_the_local_endpoint_count() -> None:
    store, backend, port = cluster_store(0), FakeServices(), free_port()
    lb = service("lb", "10.96.0.50", type="LoadBalancer", externalTrafficPolicy="Local",
                 healthCheckNodePort=port,
                 ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30050}])  # fmt: skip
    put(store, lb, slice_of("lb", endpoint("10.1.1.5"), endpoint("10.1.2.5", "node-2")))
    async with running(store, backend) as controller:
        status, body = await get(port)
        assert status == 200
        assert body == {"service": {"namespace": "ns", "name": "lb"}, "localEndpoints": 1,
                        "serviceProxyHealthy": True}  # fmt: skip
        put(store, slice_of("lb", endpoint("10.1.2.5", "node-2")))
        await until(lambda: controller.syncs == 2)
        status, body = await get(port)
        assert (status, body["localEndpoints"]) == (503, 0)
        store.apply("Service", "ns/lb", None)
        await until(lambda: controller.syncs == 3)
        with pytest.raises(OSError):
            await get(port)  # closed with the Service


def test_service_metrics_carry_upstreams_names_and_labels() -> None:
    from kuberouter.controllers.proxy_metrics import ServiceCounters
    from kuberouter.proxy.ipvs_plan import Key

    vs = fresh(cluster_store(1)).services["ns/s0"].virtual_services[0]
    counts = {"conns": 7, "inpkts": 40, "outbytes": 900, "cps": 2}
    registry = prometheus_client.CollectorRegistry()
    registry.register(ServiceCounters(lambda: [(vs, Key(4, 6, "10.96.0.1", 80), counts)]))
    labels = {"svc_namespace": "ns", "service_name": "s0", "service_vip": "10.96.0.1",
              "protocol": "tcp", "port": "80"}  # fmt: skip
    assert registry.get_sample_value("kube_router_service_total_connections_total", labels) == 7
    assert registry.get_sample_value("kube_router_service_packets_in_total", labels) == 40
    assert registry.get_sample_value("kube_router_service_bytes_out_total", labels) == 900
    assert registry.get_sample_value("kube_router_service_cps", labels) == 2

    def broken() -> list[tuple[Any, Any, Any]]:
        raise OSError("no IPVS")

    quiet = prometheus_client.CollectorRegistry()
    quiet.register(ServiceCounters(broken))
    assert b"kube_router_service_cps" in prometheus_client.generate_latest(quiet)
