"""The firewall controller against FakeBackend and a Store filled directly."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import prometheus_client
import pytest
import trio

from kuberouter.controllers.firewall import (
    FirewallController,
    cluster_of,
    count_chains,
    missing_requirement,
)
from kuberouter.dataplane import ApplyStats, CommandError, FakeBackend, Programmed
from kuberouter.health import GRACE, REGISTRY, Health
from kuberouter.k8s.store import Store
from kuberouter.model import Namespace, NetworkPolicy, Node, Pod
from kuberouter.netpol import names
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.ruleset import DesiredState
from kuberouter.options import Options
from tests.kuberouter.netpol.builders import namespace, pod, policy

NODE = "node-1"
PERIOD = 30.0
ALLOW_B_TO_A = {
    "podSelector": {"matchLabels": {"app": "a"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}],
}


def node(name: str, *ips: str, pod_cidrs: tuple[str, ...] = ()) -> Node:
    addresses = [{"type": "InternalIP", "address": ip} for ip in ips]
    return Node.from_k8s(
        {
            "kind": "Node",
            "metadata": {"name": name},
            "spec": {"podCIDRs": list(pod_cidrs)},
            "status": {"addresses": addresses},
        }
    )


def put(store: Store, *values: Node | Namespace | Pod | NetworkPolicy) -> None:
    for value in values:
        key = value.name if isinstance(value, Namespace) else value.key
        store.apply(type(value).__name__, key, value)


def cluster_store() -> Store:
    store = Store()
    put(
        store,
        node(NODE, "192.168.0.1"),
        node("node-2", "192.168.0.2"),
        namespace("x"),
        pod("x/a", "10.0.1.1", labels={"app": "a"}, node=NODE),
        pod("x/b", "10.0.1.2", labels={"app": "b"}, node=NODE),
        pod("x/a2", "10.0.2.1", labels={"app": "a"}, node="node-2"),
        pod("x/b2", "10.0.2.2", labels={"app": "b"}, node="node-2"),
        policy("x/allow-b", ALLOW_B_TO_A),
    )
    return store


def fresh(store: Store) -> DesiredState:
    return compile_node(cluster_of(store.snapshot()), NODE)


def contents(state: DesiredState) -> tuple[dict[Any, Any], dict[Any, Any]]:
    chains = {(f, n): c for f, r in state.rulesets.items() for n, c in r.chains.items()}
    sets = {(f, n): s for f, r in state.rulesets.items() for n, s in r.sets.items()}
    return chains, sets


class CountingBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.applies: list[DesiredState | None] = []  # the `previous` of every apply
        self.failing = False  # every write fails while set

    def apply(self, desired: DesiredState, previous: DesiredState | None = None) -> ApplyStats:
        self.applies.append(previous)
        return super().apply(desired, previous)

    def reconcile(
        self, desired: DesiredState, *, learn: bool = True, found: Programmed | None = None
    ) -> ApplyStats:
        if learn:  # apply(desired, None), counted there
            return super().reconcile(desired, found=found)
        self.applies.append(None)  # the controller's repair from what the kernel holds
        return super().reconcile(desired, learn=False, found=found)

    def _execute(self, plans: Any) -> None:
        if self.failing:
            raise CommandError(["fake"], 1, "still broken", None)
        super()._execute(plans)


@asynccontextmanager
async def running(
    store: Store, backend: FakeBackend, health: Health | None = None, default_deny: bool = False
) -> AsyncIterator[FirewallController]:
    health = health or Health()
    health.register("firewall", PERIOD)
    controller = FirewallController(
        store, backend, NODE, None, health, PERIOD, default_deny=default_deny
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield controller
        nursery.cancel_scope.cancel()


async def until(condition: Callable[[], bool]) -> None:
    # Small steps: under the autojump clock virtual time runs on while a back-end call
    # is in its worker thread, so a coarse step would time out before the thread ends.
    with trio.fail_after(120):
        while not condition():
            await trio.sleep(0.01)


async def until_programmed(controller: FirewallController, expected: DesiredState) -> None:
    """Wait on the controller's own record (set after the back-end thread returns)."""
    await until(
        lambda: (
            controller.programmed is not None
            and contents(controller.programmed) == contents(expected)
        )
    )


def last_action(health: Health) -> str:
    report: Any = health.status()[1]["firewall"]
    return str(report["last_action"])


async def test_initial_sync_programs_this_nodes_pods_only() -> None:
    store, backend, health = cluster_store(), CountingBackend(), Health()
    async with running(store, backend, health) as controller:
        expected = fresh(store)
        assert backend.holds(expected)
        assert backend.applies == [None]  # a full repair from what the kernel holds
        owners = {
            chain.owner
            for chain in backend.chains.values()
            if chain.name.startswith(names.POD_CHAIN_PREFIX)
        }
        assert owners == {"x/a"}  # x/b is selected by no policy; x/a2 lives on node-2
        assert expected.rulesets[4].local_addresses == {"192.168.0.1"}  # from the Node
        assert controller.syncs == 1
        assert (
            last_action(health)
            == f"initial sync: {count_chains(expected)} chains, 2 sets, {count_chains(expected) + 2} written"
        )


@pytest.mark.parametrize("change", ["label", "policy"])
async def test_a_change_is_applied_incrementally_to_a_fresh_compile(change: str) -> None:
    store, backend = cluster_store(), CountingBackend()
    async with running(store, backend) as controller:
        before = len(backend.executed)
        if change == "label":
            put(store, pod("x/b2", "10.0.2.2", labels={"app": "c"}, node="node-2"))
        else:
            spec = {**ALLOW_B_TO_A, "podSelector": {}}  # now selects x/b too
            put(store, policy("x/allow-b", spec))
        expected = fresh(store)
        await until_programmed(controller, expected)
        assert backend.holds(expected)
        assert backend.applies[-1] is not None  # incremental: apply(desired, previous)
        written = backend.executed[before:]
        assert len(written) == 1
        if change == "label":  # only the peer set of the policy was rewritten
            assert [(len(p.write_sets), len(p.write_chains)) for p in written[0]] == [(1, 0)]


async def test_a_change_recompiles_only_what_depends_on_it_and_a_reconcile_repairs(
    autojump_clock: trio.abc.Clock,
) -> None:
    store, backend = cluster_store(), CountingBackend()
    put(store, policy("x/unrelated", {"podSelector": {"matchLabels": {"app": "b"}}}))
    async with running(store, backend) as controller:
        compiler = controller.compiler
        assert compiler is not None
        compiler.recomputed = 0
        put(store, pod("x/b2", "10.0.2.2", labels={"app": "c"}, node="node-2"))
        await until_programmed(controller, fresh(store))
        assert controller.compiler is compiler  # fed the change, not rebuilt
        assert compiler.recomputed == 0  # x/allow-b gains a peer member; no policy recompiled
        peers = next(
            name
            for (_, name), ipset in backend.sets.items()
            if name.startswith("KUBE-SRC-") and ipset.entries
        )
        backend.drop_member(4, peers, min(backend.sets[(4, peers)].entries))  # drift
        assert not backend.holds(fresh(store))
        await until(lambda: controller.syncs > 2)  # the periodic reconcile
        assert controller.compiler is compiler  # kept: it equals a fresh compile
        assert backend.holds(fresh(store))  # the drift is repaired


async def test_default_deny_covers_the_pod_cidrs_of_this_nodes_node_object(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, backend = cluster_store(), CountingBackend()
    async with running(store, backend, default_deny=True) as controller:
        assert (4, names.DENY_NEW_DST_CHAIN) not in backend.chains  # no pod CIDR known yet
        assert "has no pod CIDR" in caplog.text
        put(store, node(NODE, "192.168.0.1", pod_cidrs=("10.0.1.0/24",)))
        cidrs = ("10.0.1.0/24",)
        expected = compile_node(cluster_of(store.snapshot()), NODE, default_deny=cidrs)
        await until_programmed(controller, expected)
        assert backend.holds(expected)
        deny = backend.chains[(4, names.DENY_NEW_DST_CHAIN)]
        known = {rule.dst_addr for rule in deny.rules if rule.dst_addr}
        assert known == {"10.0.1.1", "10.0.1.2"}  # this node's pods, not node-2's
        put(store, pod("x/new", "10.0.1.3", labels={"app": "a"}, node=NODE))
        expected = compile_node(cluster_of(store.snapshot()), NODE, default_deny=cidrs)
        await until_programmed(controller, expected)
        assert backend.holds(expected)
        # the new pod is let through in the same write that adds its own chains
        [write] = backend.executed[-1:]
        [plan] = write
        written = {chain.name for chain in plan.write_chains}
        assert (
            names.DENY_NEW_DST_CHAIN in written
            and names.pod_chain("x", "new", "ingress", 4) in written
        )


async def test_a_burst_of_changes_leads_to_few_applies(autojump_clock: trio.abc.Clock) -> None:
    store, backend = cluster_store(), CountingBackend()
    async with running(store, backend) as controller:
        for number in range(100):
            labels = {"app": "b", "n": str(number)} if number % 2 else {"app": "a"}
            put(store, pod("x/b2", "10.0.2.2", labels=labels, node="node-2"))
            await trio.sleep(0.001)
        expected = fresh(store)
        await until_programmed(controller, expected)
        assert backend.holds(expected)
        assert len(backend.applies) <= 4  # the initial one + at most a batch per 50 ms burst


async def test_a_failed_sync_is_logged_and_retried_on_the_next_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, backend, health = cluster_store(), CountingBackend(), Health()
    backend.fail_next = "iptables-restore: line 3 failed"
    with caplog.at_level(logging.ERROR, "kuberouter.controllers.firewall"):
        async with running(store, backend, health) as controller:
            assert controller.failures == 1 and controller.syncs == 0
            assert last_action(health) == "starting"  # no progress claimed
            assert backend.chains == {}
            put(store, pod("x/b2", "10.0.2.2", labels={"app": "c"}, node="node-2"))
            await until(lambda: controller.syncs == 1)
            assert backend.holds(fresh(store))
            assert backend.applies[-1] is None  # the state was unknown: a full repair
            assert last_action(health).startswith("update: ")
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 1 and "line 3 failed" in errors[0] and "\n" not in errors[0]


async def test_health_turns_red_while_syncs_fail_and_green_after(
    autojump_clock: trio.abc.Clock,
) -> None:
    store, backend, health = cluster_store(), CountingBackend(), Health()
    async with running(store, backend, health) as controller:
        backend.failing = True
        backend.drop_chain(4, "KUBE-ROUTER-INPUT")  # drift the reconcile cannot repair
        await until(lambda: controller.failures >= 1)  # the reconcile at PERIOD fails
        await trio.sleep(GRACE + 1)
        assert health.status()[0] is False
        assert last_action(health).startswith("initial sync")
        backend.failing = False
        await until(lambda: controller.syncs > 1)  # the next period repairs
        assert health.status()[0] is True
        assert last_action(health).startswith("reconcile: ")
        assert backend.holds(fresh(store))


async def test_the_periodic_reconcile_repairs_a_dropped_chain(
    autojump_clock: trio.abc.Clock,
) -> None:
    store, backend, health = cluster_store(), CountingBackend(), Health()
    async with running(store, backend, health) as controller:
        expected = fresh(store)
        dropped = next(
            name for _, name in backend.chains if name.startswith(names.POD_CHAIN_PREFIX)
        )
        backend.drop_chain(4, dropped)
        await trio.sleep(PERIOD - 1)
        assert controller.syncs == 1 and not backend.holds(expected)  # no reconcile yet
        await until(lambda: controller.syncs > 1)
        assert backend.holds(expected)
        assert last_action(health).endswith(", 1 written")
        assert last_action(health).startswith("reconcile: ")


class SlowReadBackend(CountingBackend):
    """Its reads wait for `release` once `slow` is set (a big kernel takes its time)."""

    def __init__(self) -> None:
        super().__init__()
        self.slow = False
        self.reading, self.release = threading.Event(), threading.Event()

    def read(self) -> Programmed:
        if self.slow:
            self.reading.set()
            self.release.wait(timeout=60)
        return super().read()


async def test_updates_go_on_while_the_periodic_repair_reads_the_kernel(
    autojump_clock: trio.abc.Clock,
) -> None:
    store, backend, health = cluster_store(), SlowReadBackend(), Health()
    async with running(store, backend, health) as controller:
        dropped = next(
            name for _, name in backend.chains if name.startswith(names.POD_CHAIN_PREFIX)
        )
        backend.drop_chain(4, dropped)
        backend.slow = True
        await until(backend.reading.is_set)  # the periodic repair has begun its read
        put(store, pod("x/b2", "10.0.2.2", labels={"app": "c"}, node="node-2"))
        await until(lambda: controller.syncs == 2)  # programmed while the read goes on
        assert last_action(health).startswith("update: ") and not backend.holds(fresh(store))
        backend.release.set()
        await until(lambda: controller.syncs == 3)
        assert last_action(health).startswith("reconcile: ")
        assert backend.holds(fresh(store))  # the drift repaired, the update kept


async def test_metrics_are_exported() -> None:
    store, backend = cluster_store(), CountingBackend()
    async with running(store, backend):
        text = prometheus_client.generate_latest(REGISTRY).decode()
        expected = fresh(store)
    assert "kube_router_controller_iptables_sync_time_bucket{" in text
    assert "kube_router_controller_iptables_sync_time_count " in text
    assert f"kube_router_controller_policy_chains {float(count_chains(expected))}" in text
    assert "kube_router_controller_policy_ipsets 2.0" in text


@pytest.mark.parametrize(
    ("euid", "nft", "tools", "reason"),
    [
        (1000, False, {"ipset", "iptables-nft-restore"}, "not running as root"),
        (0, False, {"ipset", "iptables-legacy-restore"}, None),
        (0, False, {"iptables-nft-restore"}, "ipset not found"),
        (0, False, {"ipset"}, "iptables-legacy-restore or iptables-nft-restore not found"),
        (0, True, {"nft"}, None),
        (0, True, {"ipset", "iptables-nft-restore"}, "nft not found"),
    ],
)
def test_the_real_back_end_needs_root_and_its_tools(
    euid: int, nft: bool, tools: set[str], reason: str | None
) -> None:
    options = attrs.evolve(Options.defaults(), use_nftables_for_netpol=nft)
    found = missing_requirement(
        options, euid=lambda: euid, which=lambda tool: f"/sbin/{tool}" if tool in tools else None
    )
    assert found == reason


def _timed_changes() -> float:
    name = "kube_router_controller_policy_change_to_programmed_seconds_count"
    return REGISTRY.get_sample_value(name) or 0.0


async def test_chains_are_read_back_once_idle_and_each_change_is_timed(
    autojump_clock: trio.abc.Clock,
) -> None:
    store, backend = cluster_store(), CountingBackend()
    async with running(store, backend) as controller:
        await until(lambda: len(backend.learned) > 0)  # read back once idle
        assert controller.programmed is not None
        assert not backend.reconcile(controller.programmed).changed  # nothing to rewrite
        timed = _timed_changes()
        put(store, pod("x/b2", "10.0.2.2", labels={"app": "c"}, node="node-2"))
        await until_programmed(controller, fresh(store))
        assert _timed_changes() == timed + 1
