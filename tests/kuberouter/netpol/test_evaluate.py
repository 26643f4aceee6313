"""The chain walker: paths through nodes, conntrack, marks, local-node traffic, traces."""

from __future__ import annotations

from kuberouter.netpol.cluster import Location
from kuberouter.netpol.evaluate import Packet, path, walk
from kuberouter.netpol.explain import explain
from kuberouter.netpol.simulate import Simulator
from tests.kuberouter.netpol.builders import cluster, pod, policy

A = pod("x/a", "10.0.0.1", labels={"app": "a"}, node="node-1")
B = pod("x/b", "10.0.0.2", labels={"app": "b"}, node="node-2")
C = pod("x/c", "10.0.0.3", labels={"app": "c"}, node="node-1")
DENY_A = policy("x/deny-a", {"podSelector": {"matchLabels": {"app": "a"}}})


def test_paths_follow_the_packet() -> None:
    pod1 = Location(place="pod", node="n1")
    pod2 = Location(place="pod", node="n2")
    host1 = Location(place="host", node="n1")
    outside = Location(place="external")
    assert path(pod1, pod2) == [("n1", "FORWARD"), ("n2", "FORWARD")]
    assert path(pod1, Location(place="pod", node="n1")) == [("n1", "FORWARD")]
    assert path(pod1, host1) == [("n1", "INPUT")]
    assert path(host1, pod1) == [("n1", "OUTPUT")]
    assert path(host1, pod2) == [("n1", "OUTPUT"), ("n2", "FORWARD")]
    assert path(outside, pod2) == [("n2", "FORWARD")]
    assert path(pod1, outside) == [("n1", "FORWARD")]


def test_replies_of_allowed_connections_pass() -> None:
    sim = Simulator(cluster([A, B], [DENY_A]))
    ruleset = sim.ruleset("node-1", 4)
    new = walk(ruleset, "FORWARD", Packet(src="10.0.0.2", dst="10.0.0.1"))
    assert new.verdict == "REJECT"
    established = walk(
        ruleset, "FORWARD", Packet(src="10.0.0.2", dst="10.0.0.1", ctstate="ESTABLISHED")
    )
    assert established.verdict == "ACCEPT"
    assert established.steps[-1].rule.comment == "rule for stateful firewall for pod"


def test_traffic_from_the_pods_node_is_accepted() -> None:
    sim = Simulator(cluster([A, B], [DENY_A]))
    verdict = sim.flow("192.168.0.1", "10.0.0.1", 80, "TCP")
    assert verdict.allowed
    assert [(w.node, w.hook, w.verdict) for w in verdict.walks] == [("node-1", "OUTPUT", "ACCEPT")]
    _, ingress = explain(sim, verdict)
    assert ingress.decided_by is not None and "local node" in ingress.decided_by.rule.comment
    assert not sim.flow("192.168.0.2", "10.0.0.1", 80, "TCP").allowed


def test_trace_names_the_policy_rule_that_allowed() -> None:
    from_b = policy(
        "x/from-b",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": 80}]}
            ],
        },
    )
    sim = Simulator(cluster([A, B, C], [DENY_A, from_b]))
    verdict = sim.flow("10.0.0.2", "10.0.0.1", 80, "TCP")
    assert verdict.allowed
    marks = [
        step for w in verdict.walks for step in w.steps if step.action.startswith("MARK 0x10000")
    ]
    assert [(step.rule.policy, step.rule.origin) for step in marks] == [
        ("x/from-b", "ingress[0] from[0] ports[0]")
    ]
    egress, ingress = explain(sim, verdict)
    assert egress.outcome == "not isolated"
    assert ingress.outcome == "allowed" and ingress.policies == ("x/deny-a", "x/from-b")
    blocked = sim.flow("10.0.0.3", "10.0.0.1", 80, "TCP")
    assert not blocked.allowed
    _, why = explain(sim, blocked)
    assert why.outcome == "blocked" and why.allowed_by == ()
    assert why.decided_by is not None and why.decided_by.action == "REJECT"
