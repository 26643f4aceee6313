"""The pod network controller against the in-memory back ends and a Store filled directly;
the CNI file is a real file in a temporary directory."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from kuberouter.controllers.podnet import (
    PodNetController,
    missing_requirement,
    settings_of,
)
from kuberouter.dataplane.fake_podnet import FakeBridge, FakeEgress
from kuberouter.health import Health
from kuberouter.k8s.store import Store
from kuberouter.model import Node
from kuberouter.options import Options
from kuberouter.podnet.desired import Settings, cluster_egress
from tests.kuberouter.controllers.test_firewall import until
from tests.kuberouter.podnet.builders import node

NODE = "node-1"
PERIOD = 30.0


def put(store: Store, *nodes: Node) -> None:
    for value in nodes:
        store.apply("Node", value.key, value)


def this_node(*cidrs: str) -> Node:
    return node(NODE, "192.168.0.1", pod_cidrs=cidrs or ("10.244.1.0/24",))


@attrs.define
class Box:
    store: Store
    bridge: FakeBridge
    egress: FakeEgress
    health: Health
    settings: Settings

    def expected_egress(self) -> Any:
        return cluster_egress(self.settings, self.store.snapshot().items(Node).values())

    def conf(self) -> dict[str, Any]:
        return dict(json.loads(self.settings.cni_conf_file.read_text()))


def make_box(tmp_path: Path, **settings: Any) -> Box:
    store = Store()
    put(store, this_node(), node("node-2", "192.168.0.2", pod_cidrs=("10.244.2.0/24",)))
    conf = tmp_path / "net.d" / "10-kuberouter.conflist"
    return Box(
        store=store,
        bridge=FakeBridge(node_mtus={"192.168.0.1": 1450}),
        egress=FakeEgress(),
        health=Health(),
        settings=Settings(node_name=NODE, cni_conf_file=conf, **settings),
    )


@asynccontextmanager
async def running(
    box: Box, link_events: Callable[[], socket.socket] | None = None
) -> AsyncIterator[PodNetController]:
    box.health.register("podnet", PERIOD)
    controller = PodNetController(
        box.store, box.bridge, box.egress, box.settings, box.health, PERIOD,
        link_events=link_events,
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield controller
        nursery.cancel_scope.cancel()


def last_action(health: Health) -> str:
    report: Any = health.status()[1]["podnet"]
    return str(report["last_action"])


async def test_the_initial_sync_makes_the_bridge_the_cni_file_and_egress(tmp_path: Path) -> None:
    box = make_box(tmp_path)
    box.bridge.ports = {"veth-a": False, "veth-b": True}
    async with running(box) as controller:
        bridge = box.bridge.bridges["kube-bridge"]
        assert bridge.addresses == ("10.244.1.1/24",) and bridge.mtu == 1450
        plugin = box.conf()["plugins"][0]
        assert plugin["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
        assert plugin["mtu"] == 1450
        assert box.bridge.ports == {"veth-a": True, "veth-b": True}
        assert box.egress.holds(box.expected_egress())
        assert box.egress.applies[0].repaired
        assert box.egress.sets["kube-router-pod-subnets"].entries == {
            "10.244.1.0/24",
            "10.244.2.0/24",
        }
        assert controller.syncs == 1
        assert last_action(box.health) == (
            "initial sync: bridge 1 changes; CNI file written; hairpin on 1 ports; "
            "egress 2 sets written, 1 rules added"
        )


async def test_a_node_joining_changes_only_egress_members(tmp_path: Path) -> None:
    box = make_box(tmp_path)
    async with running(box) as controller:
        before = box.settings.cni_conf_file.stat()
        writes = box.bridge.writes
        put(box.store, node("node-3", "192.168.0.3", pod_cidrs=("10.244.3.0/24",)))
        await until(lambda: controller.syncs == 2)
        assert box.egress.holds(box.expected_egress())
        latest = box.egress.applies[-1]
        assert (latest.repaired, latest.members_changed, latest.sets_written) == (False, 2, 0)
        after = box.settings.cni_conf_file.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        assert box.bridge.writes == writes
        box.store.apply("Node", "node-3", None)
        await until(lambda: controller.syncs == 3)
        assert "10.244.3.0/24" not in box.egress.sets["kube-router-pod-subnets"].entries
        assert box.egress.applies[-1].members_changed == 2


async def test_this_nodes_new_pod_cidr_rewrites_the_cni_file_and_the_gateway(
    tmp_path: Path,
) -> None:
    box = make_box(tmp_path)
    async with running(box) as controller:
        before = box.settings.cni_conf_file.stat()
        put(box.store, this_node("10.244.9.0/24"))
        await until(lambda: controller.syncs == 2)
        assert box.conf()["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.9.0/24"}]]
        assert box.settings.cni_conf_file.stat().st_ino != before.st_ino  # renamed into place
        assert box.bridge.bridges["kube-bridge"].addresses == ("10.244.9.1/24",)
        assert "10.244.1.0/24" not in box.egress.sets["kube-router-pod-subnets"].entries


async def test_an_operators_template_is_kept_and_a_node_without_pod_cidr_gets_no_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = make_box(tmp_path, auto_mtu=False)
    template = {"cniVersion": "0.3.0", "name": "mynet", "plugins": [
        {"type": "bridge", "bridge": "kube-bridge", "ipMasq": False, "ipam": {"type": "host-local"}},
    ]}  # fmt: skip
    box.settings.cni_conf_file.parent.mkdir()
    box.settings.cni_conf_file.write_text(json.dumps(template))
    async with running(box) as controller:
        plugin = box.conf()["plugins"][0]
        assert plugin["ipMasq"] is False and "mtu" not in plugin  # no --auto-mtu
        assert box.bridge.bridges["kube-bridge"].mtu is None
        written = box.settings.cni_conf_file.read_text()
        with caplog.at_level(logging.WARNING):
            put(box.store, node(NODE, "192.168.0.1"))  # its pod CIDR is gone
            await until(lambda: controller.syncs == 2)
            put(box.store, node(NODE, "192.168.0.1", external=("203.0.113.1",)))
            await until(lambda: controller.syncs == 3)
        assert box.settings.cni_conf_file.read_text() == written  # left, not emptied
        assert box.bridge.bridges["kube-bridge"].addresses == ()
        warnings = [r.message for r in caplog.records if "no pod CIDR" in r.message]
        assert warnings == [f"node {NODE} has no pod CIDR yet: no CNI file written"]  # once


async def test_a_failed_sync_is_retried_as_a_repair_and_drift_is_repaired_periodically(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    box = make_box(tmp_path)
    async with running(box) as controller:
        box.egress.fail_next = "ipset: lock"
        put(box.store, node("node-3", "192.168.0.3", pod_cidrs=("10.244.3.0/24",)))
        await until(lambda: controller.failures == 1)
        assert controller.programmed is None
        assert "initial sync" in last_action(box.health)  # no beat for the failed one
        put(box.store, node("node-4", "192.168.0.4", pod_cidrs=("10.244.4.0/24",)))
        await until(lambda: controller.syncs == 2)
        assert box.egress.applies[-1].repaired and box.egress.holds(box.expected_egress())
        box.egress.drop_member("kube-router-node-ips", "192.168.0.2")
        put(box.store, node("node-5", "192.168.0.5"))  # incremental: the drift stays
        await until(lambda: controller.syncs == 3)
        assert not box.egress.holds(box.expected_egress())
        await until(lambda: controller.syncs == 4)  # the periodic reconcile
        assert box.egress.applies[-1].repaired and box.egress.holds(box.expected_egress())
        assert last_action(box.health).startswith("reconcile:")


async def test_egress_off_removes_ours_and_cni_off_leaves_the_bridge_alone(
    tmp_path: Path,
) -> None:
    box = make_box(tmp_path, enable_pod_egress=False, enable_cni=False)
    box.egress.rules, box.egress.sets = {4}, {"kube-router-pod-subnets": object()}  # type: ignore[dict-item]
    async with running(box):
        assert box.egress.rules == set() and box.egress.sets == {}
        assert box.bridge.bridges == {} and not box.settings.cni_conf_file.exists()


async def test_a_link_change_wakes_a_hairpin_sweep(tmp_path: Path) -> None:
    box = make_box(tmp_path)
    kernel_side, agent_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    agent_side.setblocking(False)
    with kernel_side:
        async with running(box, link_events=lambda: agent_side) as controller:
            box.bridge.ports["veth-new"] = False  # a pod's port joined the bridge
            for _ in range(3):  # a burst of link messages: one sweep
                kernel_side.send(b"RTM_NEWLINK")
            await until(lambda: controller.hairpin_sweeps == 1)
            assert box.bridge.ports == {"veth-new": True}
            await trio.sleep(0.2)
            assert controller.hairpin_sweeps == 1


def test_settings_come_from_the_flags_and_upstreams_environment_variable() -> None:
    defaults = Options.defaults()
    assert settings_of(defaults, {}).cni_conf_file == Path("/etc/cni/net.d/10-kuberouter.conflist")
    assert settings_of(defaults, {}).conflist
    env = {"KUBE_ROUTER_CNI_CONF_FILE": "/etc/cni/net.d/10-kuberouter.conf"}
    assert settings_of(defaults, env).cni_conf_file == Path("/etc/cni/net.d/10-kuberouter.conf")
    assert not settings_of(defaults, env).conflist
    chosen = attrs.evolve(
        defaults, hostname_override="n1", enable_ipv6=True, enable_pod_egress=False, auto_mtu=False
    )
    settings = settings_of(chosen, env)
    assert (settings.node_name, settings.families) == ("n1", (4, 6))
    assert (settings.enable_pod_egress, settings.auto_mtu, settings.enable_cni) == (
        False,
        False,
        True,
    )


def test_missing_requirements_are_named() -> None:
    settings = Settings(node_name=NODE)
    assert missing_requirement(settings, euid=lambda: 1000) == "not running as root"
    found = {"ip", "ipset", "iptables-nft"}
    assert (
        missing_requirement(settings, euid=lambda: 0, which=lambda t: t if t in found else None)
        is None
    )
    no_ipset = {"ip", "iptables-nft"}
    which = lambda t: t if t in no_ipset else None  # noqa: E731
    assert missing_requirement(settings, euid=lambda: 0, which=which) == "ipset not found"
    no_egress = Settings(node_name=NODE, enable_pod_egress=False)
    assert missing_requirement(no_egress, euid=lambda: 0, which=which) is None
