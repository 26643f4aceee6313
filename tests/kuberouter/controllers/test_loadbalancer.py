"""The LoadBalancer allocator controller in-process: real test API server, real watch layer,
real Lease; leader election timings shortened so takeovers come within a second or two."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import trio

from kuberouter.controllers.loadbalancer import (
    LEASE_NAME,
    LoadBalancerController,
    lease_namespace,
    status_with,
)
from kuberouter.health import REGISTRY, Health
from kuberouter.k8s import Backoff, Store, Watcher, load_api_client
from kuberouter.k8s.election import LeaderElection
from kuberouter.k8s.lease import Timings
from kuberouter.lballoc.allocator import Allocator, Plan
from kuberouter.lballoc.pools import Pools
from kuberouter.testing import serve
from kuberouter.testing.apiserver import ApiServer
from kuberouter.testing.resources import RESOURCES

FAST = Timings(lease_duration=3.0, renew_deadline=2.0, retry_period=0.5)
SERVICE = next(r for r in RESOURCES if r.kind == "Service")
LEASE = next(r for r in RESOURCES if r.kind == "Lease")


@pytest.fixture
def srv() -> Iterator[ApiServer]:
    with serve(token="lb-token", service_cidr="10.96.0.0/16,fd00:96::/112") as server:
        yield server


@pytest.fixture
def kubeconfig(srv: ApiServer, tmp_path: Path) -> Path:
    return srv.write_kubeconfig(tmp_path / "kubeconfig")


@asynccontextmanager
async def agent(
    kubeconfig: Path, identity: str, ranges: tuple[str, ...] = ("10.0.0.0/29",), **kw: Any
) -> AsyncIterator[LoadBalancerController]:
    """One agent's allocator (watch layer included), stopped cleanly at the end."""
    api = load_api_client(str(kubeconfig), None)
    store = Store()
    watcher = Watcher(api, store, backoff=Backoff(initial=0.05, cap=0.4), watch_timeout=(20, 30))
    election = LeaderElection(api, "kube-system", LEASE_NAME, identity, FAST)
    allocator = Allocator(Pools.parse(ranges), default_class=kw.pop("default_class", True))
    health = Health()
    health.register("loadbalancer", 2.0)
    controller = LoadBalancerController(store, api, allocator, election, health, 2.0)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
            await nursery.start(controller.run)
            yield controller
            nursery.cancel_scope.cancel()
    finally:
        api.close()


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


def create(srv: ApiServer, name: str, **spec: Any) -> None:
    body = {"metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}
    body["spec"] |= spec
    srv.store.create(SERVICE, body, "default")


def ingress(srv: ApiServer, name: str) -> list[str]:
    try:
        service = srv.store.get(SERVICE, "default", name)
    except Exception:  # gone
        return []
    entries = service.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    return [entry.get("ip") or entry.get("hostname") for entry in entries]


def holder(srv: ApiServer) -> str:
    try:
        return str(srv.store.get(LEASE, "kube-system", LEASE_NAME)["spec"].get("holderIdentity"))
    except Exception:  # no lease yet
        return ""


async def test_allocate_release_and_leave_others_alone(srv: ApiServer, kubeconfig: Path) -> None:
    create(srv, "elsewhere", loadBalancerClass="example.com/other")
    create(srv, "a")
    async with agent(kubeconfig, "node-a"):
        await wait_until(lambda: ingress(srv, "a") == ["10.0.0.0"])
        create(srv, "b")
        create(srv, "c", loadBalancerClass="kube-router")
        srv.store.create(SERVICE, {"metadata": {"name": "plain"}, "spec": {"ports": [{"port": 1}]}})
        await wait_until(lambda: ingress(srv, "b") == ["10.0.0.1"] and ingress(srv, "c"))
        assert ingress(srv, "c") == ["10.0.0.2"]

        srv.store.patch(
            SERVICE, "default", "a", lambda s: s | {"spec": s["spec"] | {"type": "NodePort"}}
        )
        await wait_until(lambda: ingress(srv, "a") == [])
        srv.store.delete(SERVICE, "default", "b")
        create(srv, "d")
        await wait_until(lambda: ingress(srv, "d") != [])
        assert ingress(srv, "d") == ["10.0.0.3"]  # onwards, not the address just released
        assert ingress(srv, "elsewhere") == ingress(srv, "plain") == []
    assert holder(srv) == ""  # given up on the way out


async def test_a_restart_reads_back_what_is_allocated(srv: ApiServer, kubeconfig: Path) -> None:
    for name in ("a", "b"):
        create(srv, name)
    async with agent(kubeconfig, "node-a"):
        await wait_until(lambda: ingress(srv, "a") != [] and ingress(srv, "b") != [])
    before = {*ingress(srv, "a"), *ingress(srv, "b")}
    create(srv, "c", type="ClusterIP", externalIPs=["10.0.0.2"])  # an externalIP: used too
    create(srv, "d")
    async with agent(kubeconfig, "node-b"):
        await wait_until(lambda: ingress(srv, "d") != [])
    assert before == {"10.0.0.0", "10.0.0.1"} and ingress(srv, "d") == ["10.0.0.3"]


async def test_a_service_the_model_refuses_keeps_its_address(
    srv: ApiServer, kubeconfig: Path, caplog: pytest.LogCaptureFixture
) -> None:
    odd = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "odd", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "ICMP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.0"}]}},
    }  # fmt: skip
    srv.store.put(odd)
    create(srv, "a")
    with caplog.at_level(logging.WARNING, "kuberouter.controllers.loadbalancer"):
        async with agent(kubeconfig, "node-a", ranges=("10.0.0.0/31",)):
            await wait_until(lambda: ingress(srv, "a") == ["10.0.0.1"])
            await trio.sleep(2.5)  # a periodic repair, from the store (which refuses odd)
            create(srv, "b")
            await wait_until(lambda: "default/b: no free IPv4 address" in caplog.text)
    assert ingress(srv, "b") == [] and ingress(srv, "odd") == ["10.0.0.0"]


async def test_one_allocator_at_a_time_and_a_takeover(srv: ApiServer, kubeconfig: Path) -> None:
    async with trio.open_nursery() as nursery:
        first, second = trio.CancelScope(), trio.CancelScope()
        agents: dict[str, LoadBalancerController] = {}

        async def run(name: str, scope: trio.CancelScope) -> None:
            with scope:
                async with agent(kubeconfig, name, ranges=("10.0.0.0/28",)) as controller:
                    agents[name] = controller
                    await trio.sleep_forever()

        nursery.start_soon(run, "node-a", first)
        nursery.start_soon(run, "node-b", second)
        await wait_until(lambda: holder(srv) in ("node-a", "node-b") and len(agents) == 2)
        leader = holder(srv)
        other = "node-b" if leader == "node-a" else "node-a"
        for index in range(6):
            create(srv, f"s{index}")
        await wait_until(lambda: all(ingress(srv, f"s{i}") for i in range(6)))
        assert agents[other].writes == 0 and agents[leader].writes == 6

        (first if leader == "node-a" else second).cancel()
        await wait_until(lambda: holder(srv) == other, timeout=5.0)
        for index in range(6, 12):
            create(srv, f"s{index}")
        await wait_until(lambda: all(ingress(srv, f"s{i}") for i in range(6, 12)))
        addresses = [ip for i in range(12) for ip in ingress(srv, f"s{i}")]
        assert sorted(addresses) == sorted(set(addresses)) and len(addresses) == 12
        assert srv.store.get(LEASE, "kube-system", LEASE_NAME)["spec"]["leaseTransitions"] == 1
        nursery.cancel_scope.cancel()


async def test_requests_families_and_problems(
    srv: ApiServer, kubeconfig: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create(srv, "wanted", loadBalancerIP="10.0.0.5")
    create(srv, "dual", ipFamilyPolicy="RequireDualStack")
    create(srv, "outside", loadBalancerIP="192.0.2.1")
    ranges = ("10.0.0.0/29", "fd00:1b::/125")
    with caplog.at_level(logging.WARNING, "kuberouter.controllers.loadbalancer"):
        async with agent(kubeconfig, "node-a", ranges=ranges):
            await wait_until(lambda: len(ingress(srv, "dual")) == 2 and ingress(srv, "wanted"))
            assert ingress(srv, "wanted") == ["10.0.0.5"]
            assert ingress(srv, "dual") == ["10.0.0.0", "fd00:1b::"]
            create(srv, "same", loadBalancerIP="10.0.0.5")
            await wait_until(lambda: "already used by default/wanted" in caplog.text)
            assert ingress(srv, "same") == ingress(srv, "outside") == []
            metrics = prometheus_client.generate_latest(REGISTRY).decode()
            assert "kube_router_loadbalancer_leader 1.0" in metrics
            assert 'kube_router_loadbalancer_ips_allocated{family="IPv6"} 1.0' in metrics
            assert "kube_router_loadbalancer_services_unsatisfied 2.0" in metrics
    assert "192.0.2.1 is outside --loadbalancer-ip-range" in caplog.text
    assert caplog.text.count("outside --loadbalancer-ip-range") == 1  # not on every pass


def test_status_keeps_what_others_wrote() -> None:
    status = {"loadBalancer": {"ingress": [{"hostname": "lb.example"}, {"ip": "10.0.0.1"}]}}
    plan = Plan("ns/a", release=("10.0.0.1",), add=("10.0.0.2",))
    assert status_with(status, plan)["loadBalancer"]["ingress"] == [
        {"hostname": "lb.example"}, {"ip": "10.0.0.2"},
    ]  # fmt: skip
    assert status_with(None, Plan("ns/a")) == {"loadBalancer": {}}


def test_lease_namespace(tmp_path: Path) -> None:
    assert lease_namespace({"POD_NAMESPACE": "kr"}, tmp_path / "none") == "kr"
    (tmp_path / "namespace").write_text("from-the-token\n")
    assert lease_namespace({}, tmp_path / "namespace") == "from-the-token"
    assert lease_namespace({}, tmp_path / "none") == "kube-system"
