"""The shared apply/reconcile logic through the in-memory back end (no root needed):
incremental writes touch only what changed, repairs fix drift, failures fall back."""

from __future__ import annotations

import random

import pytest

from kuberouter.dataplane import FakeBackend
from kuberouter.dataplane.plan import Learned, Programmed, plan_changes, plan_repair
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.ruleset import DesiredState
from tests.kuberouter.netpol.builders import cluster, namespace, pod, policy

ALLOW_B = {
    "podSelector": {"matchLabels": {"app": "a"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}],
}


def state(labels: dict[str, str] | None = None, policies: int = 1, pods: int = 3) -> DesiredState:
    labels = labels or {}
    found = [
        pod(
            f"x/p{i}",
            f"10.0.0.{i + 1}",
            labels={"app": labels.get(f"x/p{i}", "ab"[i % 2])},
            node="node-1" if i % 2 == 0 else "node-2",
        )
        for i in range(pods)
    ]
    rules = [policy(f"x/allow-{i}", ALLOW_B) for i in range(policies)]
    return compile_node(cluster(found, rules, [namespace("x")]), "node-1", families=(4,))


def test_first_apply_is_a_full_repair_then_nothing_to_do() -> None:
    fake, desired = FakeBackend(), state()
    stats = fake.apply(desired, None)
    assert stats.repaired and stats.chains_written == len(desired.rulesets[4].chains)
    assert stats.hooks_fixed == 3 and fake.holds(desired)
    again = fake.reconcile(desired)
    assert not again.changed and again.commands == 1  # one read, no write


def test_a_label_change_writes_only_the_peer_set() -> None:
    fake, before = FakeBackend(), state()
    fake.apply(before, None)
    after = state(labels={"x/p1": "c"})  # p1 (node-2) leaves the peers
    stats = fake.apply(after, before)
    assert (stats.sets_written, stats.chains_written, stats.repaired) == (1, 0, False)
    assert fake.holds(after)


def test_a_removed_policy_deletes_its_chain_and_sets() -> None:
    fake, before = FakeBackend(), state(policies=2)
    fake.apply(before, None)
    after = state(policies=1)
    [plan] = plan_changes(after, before)
    assert plan.delete_chains and plan.delete_sets
    assert all(name.startswith("KUBE-NWPLCY-") for name in plan.delete_chains)
    fake.apply(after, before)
    assert fake.holds(after)


def test_random_change_sequences_end_as_a_fresh_compile() -> None:
    chooser = random.Random(7)
    fake, previous = FakeBackend(), None
    for _ in range(40):
        labels = {f"x/p{i}": chooser.choice("abc") for i in range(6)}
        desired = state(labels, policies=chooser.randint(0, 3), pods=chooser.randint(1, 6))
        fake.apply(desired, previous)
        assert fake.holds(desired)
        previous = desired


def test_drift_is_found_and_only_it_is_rewritten() -> None:
    fake, desired = FakeBackend(), state()
    fake.apply(desired, None)
    rules = desired.rulesets[4]
    pod_chain = next(name for name in rules.chains if name.startswith("KUBE-POD-FW-"))
    ipset = next(s for s in rules.sets.values() if s.entries)
    fake.drop_chain(4, pod_chain)
    fake.drop_member(4, ipset.name, min(ipset.entries))
    fake.drop_hook(4, "FORWARD")
    fake.chains[(4, "KUBE-POD-FW-STRAYSTRAYSTRAY")] = rules.chains[pod_chain]
    stats = fake.reconcile(desired)
    assert (stats.chains_written, stats.sets_written, stats.hooks_fixed) == (1, 1, 1)
    assert stats.chains_deleted == 1
    assert fake.holds(desired)


def test_a_chain_changed_since_it_was_last_seen_is_rewritten_once() -> None:
    fake, before = FakeBackend(), state()
    fake.apply(before, None)
    after = state(policies=2, labels={"x/p1": "c"})
    fake.apply(after, before)  # incremental: the kernel's listings of the new chains are unseen
    stats = fake.reconcile(after)
    old, new = before.rulesets[4].chains, after.rulesets[4].chains
    assert stats.chains_written == sum(old.get(name) != chain for name, chain in new.items())
    assert stats.chains_written and stats.sets_written == 0  # sets are judged by their members
    assert not fake.reconcile(after).changed


def test_a_failed_incremental_write_falls_back_to_a_repair() -> None:
    fake, before = FakeBackend(), state()
    fake.apply(before, None)
    after = state(policies=2)
    fake.fail_next = "iptables-restore: line 3 failed"
    stats = fake.apply(after, before)
    assert stats.repaired and fake.holds(after)


def test_cleanup_removes_everything() -> None:
    fake = FakeBackend()
    fake.apply(state(policies=2), None)
    stats = fake.cleanup()
    assert stats.chains_deleted and stats.sets_deleted
    assert (fake.chains, fake.sets, fake.hooks) == ({}, {}, set())
    assert len(fake.learned) == 0


def test_a_repair_plan_of_nothing_desired_unhooks_every_family() -> None:
    programmed = Programmed(chains={(6, "KUBE-ROUTER-INPUT"): ()}, hooks=frozenset({(6, "INPUT")}))
    nothing = DesiredState(node="n", rulesets={})
    [plan] = plan_repair(nothing, programmed, Learned(), FakeBackend().set_listing)
    assert plan.family == 6 and plan.ruleset is None
    assert plan.delete_chains == ("KUBE-ROUTER-INPUT",)
    assert plan.unhook == ("INPUT", "FORWARD", "OUTPUT")


@pytest.mark.parametrize("family", [5, 0])
def test_unknown_families_are_refused(family: int) -> None:
    bad = DesiredState(node="n", rulesets={family: state().rulesets[4]})
    with pytest.raises(ValueError, match="family"):
        plan_changes(bad, DesiredState(node="n", rulesets={}))
