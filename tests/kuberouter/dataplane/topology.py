"""A cluster in a box: nodes and pods of a snapshot as network namespaces.

    fabric ns:  bridge "fabric"  <- veth ->  node ns eth0 (the node's address, /24)
    node ns:    bridge "kube-bridge" (gateway 10.0.255.<n>/16)  <- veth ->  pod ns eth0

Pods get their status.podIP as <ip>/16 on eth0 (the whole pod range is on-link, as with
the bridge CNI), a default route via their node's bridge address. Pods on the same node
talk across kube-bridge (bridged; br_netfilter, built into this kernel and per network
namespace, hands the frames to the IPv4 FORWARD hook when net.bridge.bridge-nf-call-
iptables=1, set explicitly); a node answers ARP for pods on other nodes (proxy_arp on
kube-bridge, proxy_delay 0) and routes to them with a /32 via that node's address, so
cross-node traffic is routed (FORWARD on each node). Both match the path the compiled
evaluator models. ICMP error rate limits are off (icmp_ratemask=0) so every REJECT is
seen. Everything lives in namespaces made here and is deleted on exit.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
from collections.abc import Iterator

import attrs

from kuberouter.netpol.cluster import Cluster, actionable
from tests import netns
from tests.kuberouter.dataplane.probe import Endpoint

POD_RANGE = ipaddress.ip_network("10.0.0.0/16")
_NODE_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.bridge.bridge-nf-call-iptables=1",
    "net.bridge.bridge-nf-call-ip6tables=1",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv4.icmp_ratemask=0",
)


@attrs.frozen
class Box:
    nodes: dict[str, Endpoint]  # node name -> its namespace and address
    pods: dict[str, Endpoint]  # pod key -> its namespace and address


def _batch(namespace: str, commands: list[str]) -> None:
    """Several `ip` commands in one process (ip -batch)."""
    subprocess.run(
        ["ip", "-n", namespace, "-batch", "-"],
        input="\n".join(commands) + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


def _node_address(cluster: Cluster, node: str) -> str:
    ips = [ip for ip in cluster.node_ips.get(node, ()) if ":" not in ip]
    if not ips:
        raise ValueError(f"node {node} has no IPv4 address in the snapshot")
    return ips[0]


@contextlib.contextmanager
def cluster_box(cluster: Cluster) -> Iterator[Box]:
    """Namespaces for every node and every policy-actionable IPv4 pod of `cluster`."""
    with contextlib.ExitStack() as stack:
        fabric = stack.enter_context(netns.netns("kf"))
        _batch(fabric, ["link add fabric type bridge", "link set fabric up"])
        nodes: dict[str, Endpoint] = {}
        for number, node in enumerate(cluster.nodes, start=1):
            name = stack.enter_context(netns.netns("kn"))
            nodes[node] = Endpoint(node, name, _node_address(cluster, node))
            _node(fabric, nodes[node], number)
        pods: dict[str, Endpoint] = {}
        for pod in cluster.pods:
            ips = pod.ips_of_family(4)
            if not (actionable(pod) and ips and pod.node_name in nodes):
                continue
            if ipaddress.ip_address(ips[0]) not in POD_RANGE:
                raise ValueError(f"pod {pod.key} address {ips[0]} is outside {POD_RANGE}")
            name = stack.enter_context(netns.netns("kp"))
            pods[pod.key] = Endpoint(pod.key, name, ips[0])
            _pod(nodes[pod.node_name], pods[pod.key])
        _routes(cluster, nodes, pods)
        yield Box(nodes=nodes, pods=pods)


def _node(fabric: str, node: Endpoint, number: int) -> None:
    outside = netns.unique_name("kf")
    netns.run(
        "ip", "-n", fabric, "link", "add", outside, "type", "veth",
        "peer", "name", "eth0", "netns", node.netns,
    )  # fmt: skip
    _batch(fabric, [f"link set {outside} master fabric", f"link set {outside} up"])
    _batch(
        node.netns,
        [
            "link add kube-bridge type bridge",
            f"addr add 10.0.255.{number}/16 dev kube-bridge",
            "link set kube-bridge up",
            f"addr add {node.ip}/24 dev eth0",
            "link set eth0 up",
        ],
    )
    bridge = (
        "net.ipv4.conf.kube-bridge.proxy_arp=1",
        "net.ipv4.neigh.kube-bridge.proxy_delay=0",
    )
    netns.run("sysctl", "-q", "-w", *_NODE_SYSCTLS, *bridge, netns=node.netns)


def _pod(node: Endpoint, pod: Endpoint) -> None:
    outside = netns.unique_name("kv")
    netns.run(
        "ip", "-n", node.netns, "link", "add", outside, "type", "veth",
        "peer", "name", "eth0", "netns", pod.netns,
    )  # fmt: skip
    _batch(node.netns, [f"link set {outside} master kube-bridge", f"link set {outside} up"])
    gateway = _gateway(node)
    _batch(
        pod.netns,
        [
            f"addr add {pod.ip}/{POD_RANGE.prefixlen} dev eth0",
            "link set eth0 up",
            f"route add default via {gateway}",
        ],
    )
    netns.run("sysctl", "-q", "-w", "net.ipv4.icmp_ratemask=0", netns=pod.netns)


def _gateway(node: Endpoint) -> str:
    shown = netns.run("ip", "-n", node.netns, "-4", "-o", "addr", "show", "dev", "kube-bridge")
    return shown.stdout.split()[3].split("/")[0]


def _routes(cluster: Cluster, nodes: dict[str, Endpoint], pods: dict[str, Endpoint]) -> None:
    """Each node: a /32 to every pod of another node, via that node's address."""
    where = {key: pod.node_name for key, pod in cluster.pods_by_key.items()}
    for name, node in nodes.items():
        routes = [
            f"route add {pod.ip}/32 via {nodes[where[key]].ip}"
            for key, pod in pods.items()
            if where[key] != name
        ]
        if routes:
            _batch(node.netns, routes)
