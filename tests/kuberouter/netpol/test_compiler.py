"""The compiler's structure: local pods only, peers in sets, per-family output, stable
names, and the chain layout upstream operators know."""

from __future__ import annotations

import attrs

from kuberouter.netpol import names
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.evaluate import Packet, walk
from kuberouter.netpol.render import render_iptables
from kuberouter.netpol.ruleset import MARK_ACCEPT, MARK_ALLOWED
from kuberouter.netpol.simulate import Simulator
from tests.kuberouter.netpol.builders import cluster, pod, policy

A = pod(
    "x/a", "10.0.0.1", "fd00::1", labels={"app": "a"}, node="node-1", ports=(("http", 80, "TCP"),)
)
B = pod("x/b", "10.0.0.2", labels={"app": "b"}, node="node-2", ports=(("http", 8080, "TCP"),))
HOST = pod("x/h", "192.168.0.1", labels={"app": "b"}, node="node-1", host_network=True)
DONE = pod("x/d", "10.0.0.4", labels={"app": "b"}, node="node-2", phase="Failed")
FROM_B = policy(
    "x/from-b",
    {
        "podSelector": {"matchLabels": {"app": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}],
    },
)


def test_only_local_pods_get_chains_and_peers_go_into_sets() -> None:
    snapshot = cluster([A, B, HOST, DONE], [FROM_B])
    local = compile_node(snapshot, "node-1").rulesets[4]
    owners = {chain.owner for chain in local.chains.values() if chain.owner}
    assert owners == {"x/a", "x/from-b"}
    peer_set = local.sets[names.rule_pods_set("x", "from-b", "ingress", 0, 4)]
    assert sorted(peer_set.entries) == [
        "10.0.0.2"
    ]  # x/b on node-2; not the host-network or failed pod
    remote = compile_node(snapshot, "node-2").rulesets[4]
    assert {chain.owner for chain in remote.chains.values() if chain.owner} == set()
    assert remote.sets == {}
    assert [rule.target for rule in remote.top_chain("FORWARD").rules] == ["ACCEPT"]


def test_pod_chain_layout() -> None:
    ruleset = compile_node(cluster([A, B], [FROM_B]), "node-1").rulesets[4]
    chain = ruleset.chains[names.pod_chain("x", "a", "ingress", 4)]
    targets = [rule.target for rule in chain.rules]
    assert targets == [
        names.COMMON_CHAIN,
        "ACCEPT",  # source local to the node
        names.policy_chain("x", "from-b", "ingress", 4),
        "NFLOG",
        "REJECT",
        "MARK",
        "MARK",
    ]
    assert chain.rules[1].src_local
    assert chain.rules[4].mark == (MARK_ALLOWED, MARK_ALLOWED) and chain.rules[4].mark_negate
    assert chain.rules[6].set_mark == (MARK_ACCEPT, MARK_ACCEPT)
    common = ruleset.chains[names.COMMON_CHAIN].rules
    assert common[0].ctstate == ("INVALID",) and common[0].target == "DROP"
    assert common[1].ctstate == ("RELATED", "ESTABLISHED") and common[1].target == "ACCEPT"
    forward = ruleset.top_chain("FORWARD").rules
    assert forward[0].dst_addr == "10.0.0.1" and forward[0].target == chain.name
    assert forward[-1].mark == (MARK_ACCEPT, MARK_ACCEPT) and forward[-1].target == "ACCEPT"


def test_families_are_kept_apart() -> None:
    v4_block = policy(
        "x/v4",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
        },
    )
    state = compile_node(cluster([A, B], [v4_block]), "node-1")
    v6 = state.rulesets[6]
    policy_chain = v6.chains[names.policy_chain("x", "v4", "ingress", 6)]
    assert policy_chain.rules == ()  # a rule whose peers are all IPv4 allows no IPv6 source
    assert all(":" in entry for ipset in v6.sets.values() for entry in ipset.entries)
    assert v6.top_chain("FORWARD").rules[0].dst_addr == "fd00::1"
    sim = Simulator(cluster([A, B], [v4_block]))
    assert sim.flow("10.9.9.9", "10.0.0.1", 80, "TCP").allowed
    assert not sim.flow("fd00::9", "fd00::1", 80, "TCP").allowed


def test_named_ports_resolve_per_destination_pod() -> None:
    egress = policy(
        "x/web",
        {"podSelector": {"matchLabels": {"app": "a"}}, "egress": [{"ports": [{"port": "http"}]}]},
    )
    ruleset = compile_node(cluster([A, B], [egress]), "node-1").rulesets[4]
    named = ruleset.sets[names.named_port_set("http", "TCP", 4)]
    assert named.type == "hash:ip,port"
    assert sorted(named.entries) == ["10.0.0.1,tcp:80", "10.0.0.2,tcp:8080"]
    sim = Simulator(cluster([A, B], [egress]))
    assert sim.allowed(A, B, 8080, "TCP") and not sim.allowed(A, B, 80, "TCP")


def test_a_policy_selecting_both_ends_keeps_directions_apart() -> None:
    # Upstream shares one chain per pod and per policy; then this policy's ingress rule
    # (from x/*) would also admit the packet in x/a's egress check. Here it must not.
    both = policy(
        "x/both",
        {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
    )
    a, b = pod("x/a", "10.0.0.1", node="node-1"), pod("x/b", "10.0.0.2", node="node-1")
    sim = Simulator(cluster([a, b], [both]))
    assert not sim.allowed(a, b, 80, "TCP")


def test_names_and_output_are_stable() -> None:
    first = compile_node(cluster([A, B], [FROM_B]), "node-1").rulesets[4]
    again = compile_node(cluster([B, A], [FROM_B]), "node-1").rulesets[4]
    assert render_iptables(first) == render_iptables(again)
    assert names.pod_chain("x", "a", "ingress", 4) != names.pod_chain("x", "a", "egress", 4)
    assert names.short_hash("x" + "a") == names.short_hash("xa")  # upstream-style concatenation
    assert len(names.short_hash("anything")) == 16


def test_default_deny_drops_pods_of_the_node_cidr_that_are_not_compiled_in() -> None:
    here_a = pod("x/la", "10.0.3.1", labels={"app": "a"}, node="node-1")
    here_b = pod("x/lb", "10.0.3.2", labels={"app": "b"}, node="node-1")
    snapshot = cluster([here_a, here_b, B], [FROM_B])
    ruleset = compile_node(snapshot, "node-1", default_deny=("10.0.3.0/24",)).rulesets[4]
    forward = [rule.target for rule in ruleset.top_chain("FORWARD").rules]
    assert forward[:2] == [names.DENY_NEW_DST_CHAIN, names.DENY_NEW_SRC_CHAIN]

    def verdict(hook: str, src: str, dst: str) -> str:
        return walk(ruleset, hook, Packet(src=src, dst=dst)).verdict

    new = "10.0.3.9"  # in node-1's pod CIDR, but no pod the compiler knows
    assert verdict("FORWARD", new, "10.0.3.2") == "DROP"  # a new pod's egress
    assert verdict("FORWARD", "10.0.3.2", new) == "DROP"  # and ingress
    assert verdict("FORWARD", "10.0.0.2", new) == "DROP"  # from another node
    assert verdict("OUTPUT", "192.168.0.1", new) == "DROP"  # the node too, until known
    assert verdict("INPUT", new, "192.168.0.1") == "DROP"
    assert verdict("FORWARD", "10.0.3.2", "10.0.3.1") == "ACCEPT"  # x/la allows x/lb
    assert verdict("FORWARD", "10.0.3.1", "10.0.3.2") == "CONTINUE"  # x/lb is open
    assert verdict("OUTPUT", "192.168.0.1", "10.0.3.1") == "ACCEPT"  # kubelet probes
    assert verdict("FORWARD", "10.1.0.1", "10.1.0.2") == "CONTINUE"  # not this node's pods
    # the node's own address inside the CIDR (a bridge gateway) is not a new pod
    gateway = attrs.evolve(ruleset, local_addresses=frozenset({"10.0.3.254"}))
    assert walk(gateway, "INPUT", Packet(src="10.0.3.254", dst="10.0.3.254")).verdict == (
        "CONTINUE"
    )
    assert walk(gateway, "OUTPUT", Packet(src="10.0.3.254", dst="10.0.3.254")).verdict == (
        "CONTINUE"
    )
    open_ = compile_node(snapshot, "node-1").rulesets[4]
    assert names.DENY_NEW_DST_CHAIN not in open_.chains
    assert names.DENY_NEW_DST_CHAIN not in open_.top_chain("OUTPUT").rules[0].target
