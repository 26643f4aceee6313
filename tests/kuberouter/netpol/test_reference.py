"""The reference evaluator on small, hand-checked cases (one documented rule each)."""

from __future__ import annotations

from kuberouter.netpol import reference
from kuberouter.netpol.reference import allowed, flow_allowed
from tests.kuberouter.netpol.builders import cluster, namespace, pod, policy

WEB = (("http", 80, "TCP"), ("metrics", 9090, "TCP"), ("dns", 53, "UDP"))
A = pod("x/a", "10.0.0.1", labels={"app": "a"}, node="node-1", ports=WEB)
B = pod("x/b", "10.0.0.2", labels={"app": "b"}, node="node-2")
C = pod("y/c", "10.0.1.3", labels={"app": "c"}, node="node-2")


def test_pods_no_policy_selects_are_open() -> None:
    snapshot = cluster([A, B, C])
    assert allowed(snapshot, B, A, 80, "TCP")
    assert allowed(snapshot, A, C, 1234, "SCTP")


def test_no_rules_allow_nothing_and_empty_from_allows_everything() -> None:
    deny = policy("x/deny", {"podSelector": {"matchLabels": {"app": "a"}}})
    assert not allowed(cluster([A, B], [deny]), B, A, 80, "TCP")
    everyone = policy("x/all", {"podSelector": {}, "ingress": [{}]})
    assert allowed(cluster([A, B], [deny, everyone]), B, A, 80, "TCP")  # policies add up
    assert flow_allowed(cluster([A, B], [deny, everyone]), "8.8.8.8", "10.0.0.1", 80, "TCP")


def test_isolation_is_per_direction() -> None:
    egress_only = policy(
        "x/e", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"]}
    )
    snapshot = cluster([A, B], [egress_only])
    assert allowed(snapshot, B, A, 80, "TCP")  # ingress of a still open
    assert not allowed(snapshot, A, B, 80, "TCP")


def test_pod_and_namespace_selector_in_one_peer_is_and() -> None:
    both = policy(
        "x/and",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "t"}},
                            "podSelector": {"matchLabels": {"app": "c"}},
                        }
                    ]
                }
            ],
        },
    )
    other = pod("y/d", "10.0.1.4", labels={"app": "d"})
    spaces = [namespace("y", team="t")]
    assert allowed(cluster([A, C, other], [both], spaces), C, A, 80, "TCP")
    assert not allowed(cluster([A, C, other], [both], spaces), other, A, 80, "TCP")
    assert not allowed(cluster([A, C], [both]), C, A, 80, "TCP")  # namespace y lacks the label


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    same_labels = pod("y/b", "10.0.1.2", labels={"app": "b"})
    only_b = policy(
        "x/b",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}],
        },
    )
    snapshot = cluster([A, B, same_labels], [only_b])
    assert allowed(snapshot, B, A, 80, "TCP")
    assert not allowed(snapshot, same_labels, A, 80, "TCP")


def test_ip_block_with_except_matches_pods_and_outside_addresses() -> None:
    block = policy(
        "x/block",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [
                {"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}}]}
            ],
        },
    )
    snapshot = cluster([A, B, C], [block])
    assert allowed(snapshot, B, A, 80, "TCP")  # a pod address inside the block
    assert not allowed(snapshot, C, A, 80, "TCP")  # inside the except
    assert flow_allowed(snapshot, "10.0.200.1", "10.0.0.1", 80, "TCP")
    assert not flow_allowed(snapshot, "192.0.2.1", "10.0.0.1", 80, "TCP")


def test_ports_numbers_ranges_protocols() -> None:
    rules = policy(
        "x/ports",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [
                {
                    "ports": [
                        {"port": 80},
                        {"port": 1000, "endPort": 1010, "protocol": "UDP"},
                        {"protocol": "SCTP"},
                    ]
                }
            ],
        },
    )
    snapshot = cluster([A, B], [rules])
    assert allowed(snapshot, B, A, 80, "TCP")
    assert not allowed(snapshot, B, A, 80, "UDP")
    assert allowed(snapshot, B, A, 1010, "UDP")
    assert not allowed(snapshot, B, A, 1011, "UDP")
    assert allowed(snapshot, B, A, 7, "SCTP")


def test_named_port_resolves_against_the_destination() -> None:
    other_http = pod("x/c", "10.0.0.3", labels={"app": "c"}, ports=(("http", 8080, "TCP"),))
    egress = policy(
        "x/egress",
        {"podSelector": {"matchLabels": {"app": "b"}}, "egress": [{"ports": [{"port": "http"}]}]},
    )
    snapshot = cluster([A, B, other_http], [egress])
    assert allowed(snapshot, B, A, 80, "TCP")
    assert not allowed(snapshot, B, A, 8080, "TCP")
    assert allowed(snapshot, B, other_http, 8080, "TCP")
    assert not allowed(snapshot, B, other_http, 80, "TCP")
    assert not flow_allowed(snapshot, "10.0.0.2", "192.0.2.1", 80, "TCP")  # not a pod: no name
    dns = policy(
        "x/dns",
        {"podSelector": {"matchLabels": {"app": "b"}}, "egress": [{"ports": [{"port": "dns"}]}]},
    )
    assert not allowed(cluster([A, B], [dns]), B, A, 53, "UDP")  # protocol of the entry is TCP


def test_traffic_from_the_destination_node_is_allowed() -> None:
    deny = policy("x/deny", {"podSelector": {}})
    snapshot = cluster([A, B], [deny])
    assert flow_allowed(snapshot, "192.168.0.1", "10.0.0.1", 80, "TCP")  # node-1 runs x/a
    assert not flow_allowed(snapshot, "192.168.0.2", "10.0.0.1", 80, "TCP")


def test_host_network_pods_are_not_policed_and_not_selected() -> None:
    host = pod("x/h", "192.168.0.2", labels={"app": "b"}, node="node-2", host_network=True)
    deny_all = policy("x/deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    from_b = policy(
        "x/from-b",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}],
        },
    )
    snapshot = cluster([A, host], [deny_all, from_b])
    assert reference.isolating_policies(snapshot, host, "ingress") == []
    assert not allowed(snapshot, host, A, 80, "TCP")  # its address is a node's, not pod app=b's
    assert not allowed(snapshot, A, host, 80, "TCP")  # but the egress of x/a still applies


def test_dual_stack_needs_every_family() -> None:
    a6 = pod("x/a", "10.0.0.1", "fd00::1", labels={"app": "a"})
    b6 = pod("x/b", "10.0.0.2", "fd00::2", labels={"app": "b"})
    v4_only = policy(
        "x/v4",
        {
            "podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]}],
        },
    )
    snapshot = cluster([a6, b6], [v4_only])
    assert flow_allowed(snapshot, "10.0.0.2", "10.0.0.1", 80, "TCP")
    assert not flow_allowed(snapshot, "fd00::2", "fd00::1", 80, "TCP")
    assert not allowed(snapshot, b6, a6, 80, "TCP")


def test_self_traffic_is_judged_like_any_flow() -> None:
    deny = policy("x/deny", {"podSelector": {"matchLabels": {"app": "a"}}})
    assert not allowed(cluster([A], [deny]), A, A, 80, "TCP")
    assert allowed(cluster([A]), A, A, 80, "TCP")


def test_finished_pods_reach_nothing() -> None:
    done = pod("x/d", "10.0.0.9", phase="Succeeded")
    assert not allowed(cluster([A, done]), done, A, 80, "TCP")
