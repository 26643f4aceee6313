"""The pure parts: kube-bridge's gateways, the egress sets and rule, one node's network."""

from __future__ import annotations

from pathlib import Path

from kuberouter.podnet.bridge import BridgeSpec, bridge_spec, gateway
from kuberouter.podnet.desired import Settings, cluster_egress, node_network
from kuberouter.podnet.egress import (
    NO_EGRESS,
    egress_state,
    every_rule,
    masquerade_rule,
    stale_rules,
)
from tests.kuberouter.podnet.builders import node


def test_the_gateway_is_the_first_address_of_each_pod_cidr() -> None:
    assert gateway("10.244.1.0/24") == "10.244.1.1/24"
    assert gateway("fd00:1::/64") == "fd00:1::1/64"
    assert gateway("10.244.1.7/24") == "10.244.1.1/24"  # host bits dropped
    assert gateway("10.244.1.0/31") is None and gateway("fd00::/127") is None
    spec = bridge_spec(["10.244.1.0/24", "fd00:1::/64"], (4,), 1500)
    assert spec == BridgeSpec(name="kube-bridge", addresses=("10.244.1.1/24",), mtu=1500)


def test_egress_sets_hold_every_nodes_pod_cidrs_and_addresses_per_family() -> None:
    nodes = [
        node("a", "10.0.0.1", "fd::1", pod_cidrs=("10.244.0.0/24", "fd00::/64")),
        node("b", "10.0.0.2", pod_cidrs=("10.244.1.0/24",), external=("203.0.113.9",)),
        node("c", "10.0.0.3", annotations={"kube-router.io/pod-cidrs": "10.99.0.0/24"}),
    ]
    state = egress_state(nodes, (4, 6))
    v4, v6 = state.families[4], state.families[6]
    assert v4.pod_subnets.name == "kube-router-pod-subnets" and v4.pod_subnets.type == "hash:net"
    assert v4.pod_subnets.entries == {"10.244.0.0/24", "10.244.1.0/24", "10.99.0.0/24"}
    assert v4.node_ips.name == "kube-router-node-ips" and v4.node_ips.type == "hash:ip"
    assert v4.node_ips.entries == {"10.0.0.1", "10.0.0.2", "10.0.0.3", "203.0.113.9"}
    assert v6.pod_subnets.name == "inet6:kube-router-pod-subnets"
    assert v6.pod_subnets.entries == {"fd00::/64"} and v6.node_ips.entries == {"fd::1"}
    assert set(egress_state(nodes, (4,)).families) == {4}


def test_the_masquerade_rule_is_upstreams_text_and_old_forms_are_known() -> None:
    rule = masquerade_rule(4, random_fully=True)
    assert " ".join(rule) == (
        "-m set --match-set kube-router-pod-subnets src "
        "-m set ! --match-set kube-router-pod-subnets dst "
        "-m set ! --match-set kube-router-node-ips dst -j MASQUERADE --random-fully"
    )
    assert "inet6:kube-router-node-ips" in masquerade_rule(6, random_fully=False)
    assert masquerade_rule(4, random_fully=False) in stale_rules(4, random_fully=True)
    assert rule not in stale_rules(4, random_fully=True)
    assert set(every_rule(4)) >= {rule, *stale_rules(4, random_fully=True)}


def test_one_nodes_network_and_egress_follow_the_options(tmp_path: Path) -> None:
    here = node("a", "10.0.0.1", pod_cidrs=("10.244.0.0/24", "fd00::/64"))
    settings = Settings(node_name="a", cni_conf_file=tmp_path / "10-kuberouter.conflist")
    wanted = node_network(settings, here, mtu=1400, existing_conf=None)
    assert wanted.bridge.addresses == ("10.244.0.1/24",) and wanted.bridge.mtu == 1400
    assert wanted.cni is not None and '"fd00::/64"' not in wanted.cni.text  # IPv6 off
    manual = Settings(node_name="a", auto_mtu=False)
    assert node_network(manual, here, mtu=1400, existing_conf=None).bridge.mtu is None
    bare = node_network(settings, node("a", "10.0.0.1"), mtu=None, existing_conf=None)
    assert bare.cni is None and bare.bridge.addresses == ()
    assert cluster_egress(Settings(node_name="a", enable_pod_egress=False), [here]) == NO_EGRESS
    assert set(cluster_egress(settings, [here]).families) == {4}
