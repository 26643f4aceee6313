"""The compiler's structure: local pods only, peers in sets, per-family output, stable
names, and the chain layout upstream operators know."""

from __future__ import annotations

from kuberouter.netpol import names
from kuberouter.netpol.compiler import compile_node
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
    assert peer_set.entries == ("10.0.0.2",)  # x/b on node-2; not the host-network or failed pod
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
    assert named.entries == ("10.0.0.1,tcp:80", "10.0.0.2,tcp:8080")
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
