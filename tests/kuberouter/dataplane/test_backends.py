"""The three back ends against the real kernel, each in its own network namespace:
only our chains and sets are touched (another tool's chain, FORWARD rule, ipset and nft
table survive every apply), an incremental change rewrites only what it affects, the
incremental result equals a from-scratch apply, drift is repaired, cleanup is exact."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from kuberouter.dataplane import Runner, detect_variant
from kuberouter.dataplane.firewall import PlannedBackend
from kuberouter.dataplane.nftables import table
from kuberouter.netpol import names
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.ruleset import DesiredState
from tests import netns
from tests.kuberouter.dataplane.helpers import (
    BACKENDS,
    cluster_of,
    documents,
    iptables_variant,
    make_backend,
    require_backend,
)

pytestmark = pytest.mark.privileged

OTHER_RULES = (
    "-A FORWARD -s 203.0.113.0/24 -j OTHER-TOOL",
    "-A OTHER-TOOL -m set --match-set other-tool-set src -j RETURN",
    "-A OTHER-TOOL -s 198.51.100.0/24 -j ACCEPT",
)


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": "x"}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": spec,
    }


def _allow_b(*ports: int) -> dict[str, Any]:
    """x/a accepts ingress from pods labelled pod=b in x, on `ports`."""
    peers = [{"podSelector": {"matchLabels": {"pod": "b"}}}]
    rule = {"from": peers, "ports": [{"port": port} for port in ports]}
    return _policy("allow-b", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [rule]})


ALLOW_B = _allow_b(80)
ALLOW_B_81 = _allow_b(80, 81)
EGRESS = _policy(
    "egress",
    {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}],
                "ports": [{"port": "serve-80-udp", "protocol": "UDP"}],
            },
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.2.0/24"]}}]},
        ],
    },
)


def desired(
    *policies: dict[str, Any], relabel: dict[str, str] | None = None, drop: str = ""
) -> DesiredState:
    """node-1's rules for the e2e cluster plus `policies`; `relabel` maps "ns/pod" to a
    new `pod` label; `drop` removes a pod."""
    docs = [doc for doc in documents() if _key(doc) != drop] + list(policies)
    for doc in docs:
        if relabel and _key(doc) in relabel:
            doc["metadata"]["labels"]["pod"] = relabel[_key(doc)]
    return compile_node(cluster_of(docs), "node-1")


def _key(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}" if doc["kind"] == "Pod" else ""


@attrs.define
class Kernel:
    """One namespace, one back end, and another tool's rules beside ours."""

    kind: str
    ns: str
    runner: Runner
    backend: PlannedBackend

    def run(self, *argv: str, input: str | None = None) -> str:
        return self.runner.run(*argv, input=input).stdout

    def iptables(self, *args: str, family: int = 4) -> str:
        tool = f"{'ip6tables' if family == 6 else 'iptables'}-{iptables_variant(self.kind)}"
        return self.run(tool, "-w", *args)

    def save(self, family: int = 4) -> str:
        tool = f"{'ip6tables' if family == 6 else 'iptables'}-{iptables_variant(self.kind)}-save"
        return self.run(tool, "-t", "filter")

    def add_other_tool(self) -> None:
        self.run("ipset", "create", "other-tool-set", "hash:ip")
        self.run("ipset", "add", "other-tool-set", "192.0.2.9")
        self.iptables("-N", "OTHER-TOOL")
        for rule in OTHER_RULES:
            self.iptables(*rule.split())
        if self.kind == "nftables":
            script = "table inet other-tool {\n chain otherchain {\n type filter hook forward priority 10;\n ip saddr 203.0.113.0/24 counter accept\n }\n}\n"
            self.run("nft", "-f", "-", input=script)

    def assert_other_tool(self) -> None:
        saved = self.save()
        for rule in OTHER_RULES:
            assert rule in saved, rule
        assert "192.0.2.9" in self.run("ipset", "list", "other-tool-set")
        if self.kind == "nftables":
            assert "203.0.113.0/24" in self.run("nft", "list", "table", "inet", "other-tool")

    def ours_left(self) -> list[str]:
        found = [
            line for family in (4, 6) for line in self.save(family).splitlines() if "KUBE-" in line
        ]
        found += [
            name for name in self.run("ipset", "list", "-n").split() if name != "other-tool-set"
        ]
        tables = self.run("nft", "list", "tables")
        return found + [line for line in tables.splitlines() if "kube-router" in line]


@pytest.fixture(params=BACKENDS)
def kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    require_backend(request.param)
    with netns.netns("dp") as ns:
        runner = Runner(ns, record=True)
        found = Kernel(request.param, ns, runner, make_backend(request.param, runner))
        found.add_other_tool()
        yield found


def _names(state: DesiredState) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    chains = {(family, name) for family, rules in state.rulesets.items() for name in rules.chains}
    sets = {(family, name) for family, rules in state.rulesets.items() for name in rules.sets}
    return chains, sets


def test_apply_programs_exactly_ours_and_other_tools_survive(kernel: Kernel) -> None:
    state = desired(ALLOW_B, EGRESS)
    stats = kernel.backend.apply(state, None)
    assert stats.chains_written == sum(len(rules.chains) for rules in state.rulesets.values())
    programmed = kernel.backend.read()
    chains, sets = _names(state)
    assert set(programmed.chains) == chains and set(programmed.sets) == sets
    assert programmed.hooks == {
        (family, hook) for family in (4, 6) for hook in ("INPUT", "FORWARD", "OUTPUT")
    }
    kernel.assert_other_tool()
    if kernel.kind != "nftables":  # our jump is the first rule of FORWARD, theirs stays
        forward = [line for line in kernel.save().splitlines() if line.startswith("-A FORWARD")]
        assert "KUBE-ROUTER-FORWARD" in forward[0] and OTHER_RULES[0] in forward[1:]
    again = kernel.backend.apply(state, None)
    assert not again.changed
    kernel.assert_other_tool()


def test_a_label_change_adds_one_member_and_touches_nothing_else(kernel: Kernel) -> None:
    before = desired(ALLOW_B)
    kernel.backend.apply(before, None)
    kernel.runner.forget()
    after = desired(ALLOW_B, relabel={"x/c": "b"})  # x/c joins the peers of allow-b
    stats = kernel.backend.apply(after, before)
    assert (stats.sets_written, stats.chains_written, stats.sets_deleted) == (1, 0, 0)
    [call] = kernel.runner.calls
    peers = names.rule_pods_set("x", "allow-b", "ingress", 0, 4)
    if kernel.kind == "nftables":  # one element added, inside one transaction
        added = f"add element {table(4)} {peers} {{ 10.0.1.3 }}"
        assert call.input == f"add table {table(4)}\n{added}\n"
    else:  # one member: a single add is as atomic as a swap, and costs no refill
        assert call.argv == ("ipset", "restore")
        assert call.input == f"add {peers} 10.0.1.3 -exist\n"
    assert any("10.0.1.3" in entry for entry in kernel.backend.read().sets[(4, peers)])
    kernel.assert_other_tool()
    kernel.runner.forget()
    both = desired(ALLOW_B, relabel={"x/b": "c"})  # x/b and x/c both leave the peers
    kernel.backend.apply(both, after)
    text = "".join(call.input or "" for call in kernel.runner.calls)
    if kernel.kind == "nftables":  # members added and removed in the same transaction
        assert "flush set" not in text and "delete element" in text
    else:  # several members of one set change: filled aside and swapped in at once
        assert "\nswap " in text
    incremental = kernel.backend.read()
    kernel.backend.cleanup()
    kernel.backend.apply(both, None)
    assert kernel.backend.read() == incremental


def test_a_policy_change_rewrites_only_its_chain(kernel: Kernel) -> None:
    before = desired(ALLOW_B, EGRESS)
    kernel.backend.apply(before, None)
    kernel.runner.forget()
    after = desired(ALLOW_B_81, EGRESS)
    stats = kernel.backend.apply(after, before)
    assert (stats.sets_written, stats.chains_written, stats.chains_deleted) == (0, 1, 0)
    [call] = kernel.runner.calls
    assert call.input is not None
    if kernel.kind == "nftables":
        assert call.input.count("flush chain") == 1 and "KUBE-NWPLCY-" in call.input
    else:
        assert call.tool == f"iptables-{iptables_variant(kernel.kind)}-restore"
        # The chain is rewritten whole or edited rule by rule; nothing else is named.
        lines = call.input.splitlines()[1:-1]
        named = {line.split()[1] if line[0] == "-" else line[1:].split()[0] for line in lines}
        assert len(named) == 1 and named.pop().startswith("KUBE-NWPLCY-")
        assert not any(line.startswith("-X") for line in lines)
    kernel.assert_other_tool()


def test_a_new_local_pod_costs_its_own_jumps_not_the_top_chains(kernel: Kernel) -> None:
    without = desired(ALLOW_B, EGRESS, drop="x/c")
    kernel.backend.apply(without, None)
    kernel.runner.forget()
    state = desired(ALLOW_B, EGRESS)
    assert not kernel.backend.apply(state, without).repaired
    text = "".join(call.input or "" for call in kernel.runner.calls if call.tool != "ipset")
    ruleset = state.rulesets[4]
    owned = {chain.name for chain in ruleset.chains.values() if chain.owner == "x/c"}
    jumps = [
        rule
        for hook in ("INPUT", "FORWARD", "OUTPUT")
        for rule in ruleset.top_chain(hook).rules
        if rule.target in owned
    ]
    assert owned and len(jumps) == 3  # x/c is isolated for egress: a jump in each hook
    if kernel.kind == "nftables":  # elements of the top chains' maps, no rule of theirs
        assert "KUBE-ROUTER-FORWARD {" not in text and "add rule" in text
        assert not [line for line in text.splitlines() if " rule " in line and "ROUTER" in line]
        assert text.count(": jump KUBE-POD-FW-") == len(jumps)
    else:  # -I of each jump into the top chains, which are not declared (flushed)
        assert ":KUBE-ROUTER-" not in text
        inserted = [line for line in text.splitlines() if line.startswith("-I KUBE-ROUTER-")]
        assert len(inserted) == len(jumps)
    incremental = kernel.backend.read()
    kernel.backend.cleanup()
    kernel.backend.apply(state, None)
    assert kernel.backend.read() == incremental
    # A jump removed by hand: taking the pod out again cannot edit the chain as planned,
    # so the apply repairs from what the kernel holds.
    jump = jumps[1]  # its jump in FORWARD
    assert jump.src_addr is not None
    if kernel.kind == "nftables":
        element = f"{{ {jump.src_addr} }}"
        kernel.run(
            "nft", "delete", "element", *table(4).split(), "KUBE-ROUTER-FORWARD-SADDR", element
        )
    else:
        listed = kernel.iptables("-S", "KUBE-ROUTER-FORWARD").splitlines()
        spec = next(line for line in listed if f"{jump.src_addr}/32" in line)
        kernel.iptables("-D", *shlex.split(spec)[1:])
    stats = kernel.backend.apply(without, state)
    assert stats.repaired
    assert not kernel.backend.reconcile(without).changed
    kernel.assert_other_tool()


def test_incremental_applies_end_where_a_fresh_apply_does(kernel: Kernel) -> None:
    relabelled = {"x/c": "b", "y/b": "a"}
    steps = [
        desired(ALLOW_B),
        desired(ALLOW_B, EGRESS),
        desired(ALLOW_B, EGRESS, relabel=relabelled),
        desired(EGRESS, relabel=relabelled),  # a policy deleted: its chains and sets go
        desired(EGRESS, relabel=relabelled, drop="x/a"),  # a pod deleted
        desired(ALLOW_B),
    ]
    previous = None
    for state in steps:
        stats = kernel.backend.apply(state, previous)
        assert stats.repaired == (previous is None)
        kernel.assert_other_tool()
        previous = state
    incremental = kernel.backend.read()
    kernel.backend.cleanup()
    kernel.backend.apply(steps[-1], None)
    assert kernel.backend.read() == incremental


def test_drift_is_repaired(kernel: Kernel) -> None:
    state = desired(ALLOW_B, EGRESS)
    kernel.backend.apply(state, None)
    before = kernel.backend.read()
    pod_chain = next(name for name in state.rulesets[4].chains if name.startswith("KUBE-POD-FW-"))
    ipset = next(s for s in state.rulesets[4].sets.values() if s.type == "hash:ip" and s.entries)
    if kernel.kind == "nftables":
        where = table(4)
        script = [
            f"flush chain {where} KUBE-ROUTER-{hook}" for hook in ("INPUT", "FORWARD", "OUTPUT")
        ]
        # The top chains' jumps to pod chains are their verdict maps' elements.
        script += [
            f"flush map {where} KUBE-ROUTER-{hook}-{field}"
            for hook in ("INPUT", "FORWARD", "OUTPUT")
            for field in ("SADDR", "DADDR")
        ]
        script += [f"flush chain {where} {pod_chain}", f"delete chain {where} {pod_chain}"]
        script += [f"delete chain {where} KUBE-ROUTER-INPUT"]  # its hook goes with it
        script += [f"delete element {where} {ipset.name} {{ {min(ipset.entries)} }}"]
        kernel.run("nft", "-f", "-", input="\n".join(script) + "\n")
        expected_hooks = 1
    else:
        for hook in ("INPUT", "FORWARD", "OUTPUT"):
            kernel.iptables("-F", f"KUBE-ROUTER-{hook}")
        kernel.iptables("-F", pod_chain)
        kernel.iptables("-X", pod_chain)
        kernel.iptables("-D", "FORWARD", "1")  # our jump
        kernel.iptables("-I", "INPUT", "1", "-s", "192.0.2.1/32", "-j", "ACCEPT")  # not first now
        kernel.run("ipset", "del", ipset.name, min(ipset.entries))
        expected_hooks = 2
    assert kernel.backend.read() != before
    stats = kernel.backend.reconcile(state)
    assert (stats.chains_written, stats.sets_written, stats.hooks_fixed) == (4, 1, expected_hooks)
    assert kernel.backend.read() == before
    assert not kernel.backend.reconcile(state).changed
    kernel.assert_other_tool()
    if kernel.kind != "nftables":
        assert "-A INPUT -s 192.0.2.1/32 -j ACCEPT" in kernel.save()


def test_a_repair_from_an_earlier_read_ends_as_desired(kernel: Kernel) -> None:
    before = desired(ALLOW_B)
    kernel.backend.apply(before, None)
    found = kernel.backend.read()  # the periodic repair's read, then an update comes
    after = desired(ALLOW_B, relabel={"x/c": "b"})  # x/c joins the peers of allow-b
    kernel.backend.apply(after, before)
    kernel.runner.forget()
    stats = kernel.backend.reconcile(after, found=found)
    assert stats.sets_written == 1  # judged from the read: the peer set is rewritten
    if kernel.kind != "nftables":  # member by member from what was read: no refill
        text = "".join(call.input or "" for call in kernel.runner.calls_of("ipset"))
        assert "swap" not in text and "-exist" in text
    assert not kernel.backend.reconcile(after).changed
    incremental = kernel.backend.read()
    kernel.backend.cleanup()
    kernel.backend.apply(after, None)
    assert kernel.backend.read() == incremental
    kernel.assert_other_tool()


def test_cleanup_removes_everything_ours_and_nothing_else(kernel: Kernel) -> None:
    kernel.backend.apply(desired(ALLOW_B, EGRESS), None)
    assert kernel.ours_left()
    kernel.backend.cleanup()
    assert kernel.ours_left() == []
    assert kernel.backend.read().chains == {} and kernel.backend.read().sets == {}
    kernel.assert_other_tool()


def test_a_family_that_goes_away_takes_its_jumps_along(kernel: Kernel) -> None:
    both = desired(ALLOW_B)
    kernel.backend.apply(both, None)
    only_v4 = DesiredState(node=both.node, rulesets={4: both.rulesets[4]})
    stats = kernel.backend.apply(only_v4, both)
    assert not stats.repaired and stats.chains_deleted == len(both.rulesets[6].chains)
    programmed = kernel.backend.read()
    assert {family for family, _ in programmed.chains} == {4}
    assert {family for family, _ in programmed.hooks} == {4}
    if kernel.kind != "nftables":
        assert "KUBE-" not in kernel.save(6)
    kernel.assert_other_tool()


def test_a_failed_incremental_apply_falls_back_to_a_repair(kernel: Kernel) -> None:
    before = desired(ALLOW_B)
    kernel.backend.apply(before, None)
    after = desired(ALLOW_B_81)
    # By hand: the policy chain emptied and its peer set destroyed; the incremental
    # apply rewrites that chain, whose rules name the missing set, and fails.
    chain = names.policy_chain("x", "allow-b", "ingress", 4)
    peers = names.rule_pods_set("x", "allow-b", "ingress", 0, 4)
    if kernel.kind == "nftables":
        kernel.run("nft", "flush", "chain", *table(4).split(), chain)
        kernel.run("nft", "delete", "set", *table(4).split(), peers)
    else:
        kernel.iptables("-F", chain)
        kernel.run("ipset", "destroy", peers)
    stats = kernel.backend.apply(after, before)
    assert stats.repaired and stats.sets_written >= 1
    assert not kernel.backend.reconcile(after).changed
    assert (4, peers) in kernel.backend.read().sets
    kernel.assert_other_tool()


def test_the_variant_in_use_is_detected_in_a_real_namespace() -> None:
    require_backend("iptables-legacy")
    require_backend("iptables-nft")
    with netns.netns("dv") as ns:
        runner = Runner(ns)
        assert detect_variant(runner) == "nft"  # nothing anywhere: the default
        runner.run("iptables-legacy", "-w", "-A", "FORWARD", "-s", "192.0.2.1/32", "-j", "ACCEPT")
        assert detect_variant(runner) == "legacy"  # the rules are in legacy
        runner.run("iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
        assert detect_variant(runner) == "nft"  # kubelet's hint chain wins
