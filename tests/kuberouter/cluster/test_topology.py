"""The box's naming, addressing and state file, without root: what `down` relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuberouter.cluster import agents, tor
from kuberouter.cluster.state import Process, State
from kuberouter.cluster.topology import MAX_NODES, MAX_PODS, Topology, TopologyError
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
    assert "router bgp 64512" in config and " neighbor NODES remote-as 64512" in config
    for ip in ("10.240.0.11", "10.240.0.12", "10.240.0.13"):
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
