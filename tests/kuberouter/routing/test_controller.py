"""The routing controller with a real pybgp Speaker, a Store filled directly, the in-memory
routes back end and a recording event sink. Node addresses are on the loopback (every
127.x address is local), on a port of the test's own, so the speaker can listen there."""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from kuberouter.controllers.routing import RoutingController
from kuberouter.dataplane.routes import FakeRoutes
from kuberouter.health import Health
from kuberouter.k8s.store import Store
from kuberouter.routing.kernel import LocalNetwork
from kuberouter.routing.plan import Planner
from kuberouter.routing.settings import RouterSettings
from pybgp.control import request
from tests.kuberouter.routing.builders import node, service, store_of

A = "node-a"
A_IP, B_IP = "127.31.0.1", "127.31.0.2"


def settings(**values: object) -> RouterSettings:
    port = 20000 + os.getpid() % 20000
    return RouterSettings(port=port, **values)  # type: ignore[arg-type]


class Events:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def warn(self, node: str, reason: str, message: str) -> None:
        self.sent.append((node, reason, message))


@asynccontextmanager
async def running(
    store: Store, settings: RouterSettings, socket: Path | None = None
) -> AsyncIterator[tuple[RoutingController, Events]]:
    events = Events()
    local = LocalNetwork(subnets=(ipaddress.ip_network("127.31.0.0/24"),), addresses=(A_IP,))
    controller = RoutingController(
        store,
        Planner(A, settings),
        FakeRoutes(local),
        Health(),
        events=events,
        control_socket=str(socket) if socket else None,
    )
    controller.health.register("routing", 300)
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield controller, events
        nursery.cancel_scope.cancel()


async def settle(controller: RoutingController, syncs: int) -> None:
    with trio.fail_after(5):
        while controller.syncs < syncs:
            await trio.sleep(0.01)


async def test_originates_pod_cidr_then_follows_services() -> None:
    store = store_of(node(A, A_IP, "10.244.0.0/24"), node("node-b", B_IP))
    async with running(store, settings(advertise_cluster_ip=True)) as (controller, _):
        assert controller.sync is not None and set(controller.sync.routes) == {"10.244.0.0/24"}
        assert set(controller.sync.peerings) == {B_IP}
        web = service("web", "10.96.0.10")
        store.apply("Service", web.key, web)
        await settle(controller, 2)
        assert set(controller.sync.routes) == {"10.244.0.0/24", "10.96.0.10/32"}
        assert controller.speaker is not None
        local = controller.speaker.rib_json(prefix="10.96.0.10/32")
        assert [r["next_hop"] for r in local] == [A_IP]
        store.apply("Service", web.key, None)
        await settle(controller, 3)
        assert set(controller.sync.routes) == {"10.244.0.0/24"}


async def test_a_bad_annotation_is_reported_once_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "kuberouter.controllers.routing")
    store = store_of(node(A, A_IP, "10.244.0.0/24", node_bgp_communities="65000:1"))
    async with running(store, settings()) as (controller, events):
        speaker = controller.speaker
        bad = node(A, A_IP, "10.244.0.0/24", node_bgp_communities="65000:99999",
                   peers="- remoteip: [")  # fmt: skip
        store.apply("Node", A, bad)
        await settle(controller, 2)
        edited = node(A, A_IP, "10.244.0.0/24", node_bgp_communities="65000:99999",
                      peers="- remoteip: [", rr_client="x")  # fmt: skip
        store.apply("Node", A, edited)  # another problem: only it is new
        await settle(controller, 3)
        assert controller.speaker is speaker  # nothing restarted
        assert controller.planner.bgp[A].communities == ("65000:1",)  # the last good value
        reasons = [(n, r) for n, r, _ in events.sent]
        assert reasons == [(A, "InvalidAnnotation")] * 3
        logged = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
        assert len(logged) == 3 and any("node.bgp.communities" in line for line in logged)


async def test_waits_without_its_node_and_starts_when_it_appears() -> None:
    store = store_of(node("node-b", B_IP))
    async with running(store, settings()) as (controller, events):
        assert controller.speaker is None
        assert events.sent[0][1] == "BGPNotStarted" and "no Node object" in events.sent[0][2]
        store.apply("Node", A, node(A, A_IP, "10.244.0.0/24"))
        await settle(controller, 1)
        assert controller.speaker is not None


async def test_the_control_socket_answers_pybgp_requests(tmp_path: Path) -> None:
    socket = tmp_path / "bgp.sock"
    store = store_of(node(A, A_IP, "10.244.0.0/24"), node("node-b", B_IP))
    async with running(store, settings(), socket) as _:
        neighbors = await trio.to_thread.run_sync(request, str(socket), "neighbors")
        assert [n["address"] for n in neighbors] == [B_IP]
        rib = await trio.to_thread.run_sync(request, str(socket), "rib")
        assert [r["prefix"] for r in rib] == ["10.244.0.0/24"]
        assert socket.stat().st_mode & 0o777 == 0o600


async def test_under_a_churn_syncs_leave_the_agent_time_for_the_other_controllers(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(node(A, A_IP, "10.244.0.0/24"), node("node-b", B_IP))
    async with running(store, settings(advertise_cluster_ip=True)) as (controller, _):
        spans: list[tuple[float, float]] = []
        real_sync = controller._sync

        async def slow_sync(what: str) -> None:  # a big cluster's plan: a second's work
            started = trio.current_time()
            await trio.sleep(1.0)
            await real_sync(what)
            spans.append((started, trio.current_time()))

        monkeypatch.setattr(controller, "_sync", slow_sync)
        for number in range(40):  # a change every 0.1 s for 4 s
            web = service(f"web-{number}", f"10.96.0.{number + 10}")
            store.apply("Service", web.key, web)
            await trio.sleep(0.1)
        await trio.sleep(10)
        assert controller.sync is not None and len(controller.sync.routes) == 41  # all in
        rests = [begin - end for (_, end), (begin, _) in itertools.pairwise(spans)]
        assert 2 <= len(spans) <= 3 and all(rest >= 4.0 for rest in rests)
