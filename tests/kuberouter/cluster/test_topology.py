"""The box's naming, addressing and state file, without root: what `down` relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuberouter.cluster import agents, tor
from kuberouter.cluster.state import Process, State
from kuberouter.cluster.topology import (
    MAX_NODES,
    MAX_PODS,
    MAX_SUBNETS,
    Topology,
    TopologyError,
)
from kuberouter.cluster.up import node_annotations
from kuberouter.ctl import build_parser


def test_every_name_carries_the_prefix_and_links_fit_in_15_characters() -> None:
    topology = Topology.build("abcdefghij", MAX_NODES, MAX_PODS)
    assert all(name.startswith("abcdefghij-") for name in topology.namespaces)
    links = [topology.fabric_bridge, topology.tor_link, topology.uplink]
    links += [node.fabric_link for node in topology.nodes]
    links += [pod.host_link for _, pod in topology.pods()]
    assert all(link.startswith("abcdefghij-") and len(link) <= 15 for link in links)
    assert len(set(topology.namespaces)) == len(topology.namespaces)


def test_addresses_follow_the_layout() -> None:
    topology = Topology.build("krbox", 3, 2)
    node = topology.nodes[2]
    assert (node.name, node.ip, node.pod_cidr, node.gateway) == (
        "krbox-node3", "10.240.0.13", "10.244.2.0/24", "10.244.2.1",
    )  # fmt: skip
    assert [(p.name, p.ip) for p in node.pods] == [
        ("krbox-node3-pod1", "10.244.2.2"),
        ("krbox-node3-pod2", "10.244.2.3"),
    ]
    assert (topology.api_url, topology.tor_ip) == ("https://10.240.0.1:6443", "10.240.0.254")


@pytest.mark.parametrize(
    ("name", "nodes", "pods"),
    [("kr-box", 1, 1), ("Krbox", 1, 1), ("abcdefghijk", 1, 1), ("krbox", 0, 1), ("krbox", 1, 251)],
)
def test_names_and_sizes_that_would_collide_or_overflow_are_refused(
    name: str, nodes: int, pods: int
) -> None:
    with pytest.raises(TopologyError):
        Topology.build(name, nodes, pods)


def test_state_file_round_trips(tmp_path: Path) -> None:
    state = State(tmp_path, "krbox", 2, 1, static_routes=False, agent_args=["--run-firewall"])
    state.save()
    state.record_netns("krbox-fabric")
    state.record_process(Process("apiserver", 42, "krbox-fabric", "log", ["python"]))
    loaded = State.load(tmp_path)
    assert loaded == state
    (tmp_path / "state.json").write_text("{not json")
    assert State.load(tmp_path) is None


def test_tor_peers_with_every_node_over_ibgp() -> None:
    topology = Topology.build("krbox", 3, 0)
    config = tor.config(topology, Path("/x/bgpd.log"))
    assert "router bgp 64512" in config
    for ip in ("10.240.0.11", "10.240.0.12", "10.240.0.13"):
        assert f" neighbor {ip} remote-as 64512" in config
        assert f" neighbor {ip} peer-group NODES" in config


def test_agent_flags_let_extra_arguments_win() -> None:
    topology = Topology.build("krbox", 1, 0)
    node = topology.nodes[0]
    argv = agents.argv(topology, node, Path("/s/kubeconfig"), ["--run-firewall"])
    assert "--hostname-override=krbox-node1" in argv and "--kubeconfig=/s/kubeconfig" in argv
    assert argv.index("--run-firewall") > argv.index("--run-firewall=false")
    assert agents.health_port(["--health-port=9999"]) == 9999


def test_cli_parses_the_cluster_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["cluster", "up", "-f", "a.yaml", "b.yaml", "--agent-arg=--run-firewall",
         "--no-static-routes", "--nodes", "2"]
    )  # fmt: skip
    assert (args.name, args.nodes, args.pods_per_node) == ("krbox", 2, 2)
    assert (args.files, args.agent_args, args.static_routes) == (
        ["a.yaml", "b.yaml"], ["--run-firewall"], False,
    )  # fmt: skip
    for command in ("status", "down", "load"):
        extra = ["-f", "x.yaml"] if command == "load" else []
        assert parser.parse_args(["cluster", command, "--name", "kt1", *extra]).name == "kt1"


def test_nodes_take_turns_between_subnets_and_the_tor_is_on_each() -> None:
    topology = Topology.build("krbox", 3, 0, subnets=2)
    assert [(n.ip, n.subnet) for n in topology.nodes] == [
        ("10.240.0.11", 0), ("10.240.1.12", 1), ("10.240.0.13", 0),
    ]  # fmt: skip
    assert [(s.network, s.bridge, s.tor_ip) for s in topology.subnets] == [
        ("10.240.0.0/24", "krbox-br", "10.240.0.254"),
        ("10.240.1.0/24", "krbox-br1", "10.240.1.254"),
    ]
    assert [topology.tor_address(n) for n in topology.nodes] == [
        "10.240.0.254", "10.240.1.254", "10.240.0.254",
    ]  # fmt: skip
    argv = agents.argv(topology, topology.nodes[1], Path("/s/kubeconfig"), [])
    assert "--peer-router-ips=10.240.1.254" in argv
    biggest = Topology.build("abcdefghij", MAX_NODES, 0, subnets=MAX_SUBNETS)
    links = [name for s in biggest.subnets for name in (s.bridge, s.tor_link, s.tor_uplink)]
    assert all(len(link) <= 15 for link in links) and len(set(links)) == len(links)
    with pytest.raises(TopologyError, match="--subnets"):
        Topology.build("krbox", 3, 0, subnets=MAX_SUBNETS + 1)


def test_tor_of_its_own_as_peers_over_ebgp_with_next_hops_unchanged() -> None:
    topology = Topology.build("krbox", 2, 0, tor_asn=64999)
    asns = tor.node_asns(
        topology,
        {"krbox-node1": {"kube-router.io/node.asn": "65001"}},
        ["--nodes-full-mesh=false"],
    )
    assert asns == {"krbox-node1": 65001, "krbox-node2": 64512}  # no annotation: the cluster's
    config = tor.config(topology, Path("/x/bgpd.log"), asns, password="s3cret")
    assert "router bgp 64999" in config and " neighbor NODES password s3cret" in config
    assert " neighbor 10.240.0.11 remote-as 65001" in config
    assert "  neighbor 10.240.0.11 attribute-unchanged next-hop" in config
    # With full mesh (the default) the agents ignore node.asn, and so does the ToR.
    assert set(tor.node_asns(topology, {"krbox-node1": {"kube-router.io/node.asn": "65001"}},
                             []).values()) == {64512}  # fmt: skip


def test_tor_in_the_cluster_as_reflects_between_nodes() -> None:
    topology = Topology.build("krbox", 2, 0)
    config = tor.config(topology, Path("/x/bgpd.log"))
    assert "  neighbor 10.240.0.12 route-reflector-client" in config
    assert "password" not in config and "attribute-unchanged" not in config


def test_a_tor_password_is_one_printable_word(tmp_path: Path) -> None:
    given = tmp_path / "password"
    given.write_text("s3cret-word\nignored\n")
    assert tor.read_password(given) == "s3cret-word"
    for bad in ("two words", "", "x" * 81, "caf\u00e9"):
        given.write_text(bad)
        with pytest.raises(TopologyError, match="--tor-password-file"):
            tor.read_password(given)


def test_node_annotations_name_a_node_of_the_box() -> None:
    topology = Topology.build("krbox", 2, 0)
    given = ["node2:kube-router.io/rr.client=42", "krbox-node1:kube-router.io/peers=- a: b:c"]
    assert node_annotations(topology, given) == {
        "krbox-node2": {"kube-router.io/rr.client": "42"},
        "krbox-node1": {"kube-router.io/peers": "- a: b:c"},
    }
    with pytest.raises(TopologyError, match="no node 'node3'"):
        node_annotations(topology, ["node3:a=b"])
    with pytest.raises(TopologyError, match="NODE:KEY=VALUE"):
        node_annotations(topology, ["node1:no-value"])


def test_cli_parses_the_bgp_options_and_the_agent_command() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["cluster", "up", "--subnets", "2", "--tor-asn", "64999", "--tor-password-file", "pw",
         "--node-annotation", "node1:kube-router.io/node.asn=65001",
         "--node-annotation", "node2:kube-router.io/node.asn=65002"]
    )  # fmt: skip
    assert (args.subnets, args.tor_asn, args.tor_password_file) == (2, 64999, Path("pw"))
    assert len(args.node_annotations) == 2
    args = parser.parse_args(["cluster", "agent", "restart", "node2", "node3"])
    assert (args.action, args.nodes) == ("restart", ["node2", "node3"])
