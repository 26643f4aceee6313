"""The service-proxy topology of fixtures/services/cluster.yaml as network namespaces.

    client ns: bridge "fabric", 192.168.0.100/24  <- veth ->  node ns eth0 (InternalIP/24)
    node ns:   bridge "kube-bridge" (<pod CIDR>.1)  <- veth ->  pod ns eth0 (pod IP/24)

The client is the world outside (and the top-of-rack): it routes the service ranges
(10.96.0.0/16, 203.0.113.0/24, 198.51.100.0/24) to node-1 and each pod CIDR to its node,
and does not forward (so a packet nobody takes dies there). Each node routes the other
pod CIDRs to their nodes and everything else to the client; br_netfilter is on, so a
reply bridged between two pods of one node is still un-NATed; pod ports are in hairpin
mode, as the bridge CNI plugin sets them up. Everything lives in
namespaces made here and is deleted on exit.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
from collections.abc import Iterator

import attrs

from kuberouter.model import Node, Pod
from tests import netns
from tests.kuberouter.dataplane.echo import Place

CLIENT_IP = "192.168.0.100"
ROUTED_TO_NODE_1 = ("10.96.0.0/16", "203.0.113.0/24", "198.51.100.0/24")
_NODE_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.bridge.bridge-nf-call-iptables=1",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv4.icmp_ratemask=0",
)


@attrs.frozen
class ServiceBox:
    client: Place
    nodes: dict[str, Place]
    pods: dict[str, Place]  # pod name -> place

    def place(self, name: str) -> Place:
        if name == "client":
            return self.client
        return self.nodes.get(name) or self.pods[name]


def _batch(namespace: str, commands: list[str]) -> None:
    subprocess.run(["ip", "-n", namespace, "-batch", "-"], input="\n".join(commands) + "\n",
                   text=True, check=True, capture_output=True)  # fmt: skip


@contextlib.contextmanager
def service_box(nodes: list[Node], pods: list[Pod]) -> Iterator[ServiceBox]:
    with contextlib.ExitStack() as stack:
        client_ns = stack.enter_context(netns.netns("sc"))
        _batch(client_ns, ["link add fabric type bridge", "link set fabric up",
                           f"addr add {CLIENT_IP}/24 dev fabric"])  # fmt: skip
        netns.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=0", "net.ipv4.icmp_ratemask=0",
                  netns=client_ns)  # fmt: skip
        placed = {node.name: Place(node.name, stack.enter_context(netns.netns("sn")),
                                   node.internal_ips[0]) for node in nodes}  # fmt: skip
        for node in nodes:
            _node(client_ns, placed[node.name], node, nodes)
        routes = [f"route add {cidr} via {nodes[0].internal_ips[0]}" for cidr in ROUTED_TO_NODE_1]
        routes += [f"route add {node.pod_cidrs[0]} via {node.internal_ips[0]}" for node in nodes]
        _batch(client_ns, routes)
        where = {node.name: node for node in nodes}
        found: dict[str, Place] = {}
        for pod in pods:
            found[pod.name] = Place(pod.name, stack.enter_context(netns.netns("sp")), pod.ips[0])
            _pod(placed[pod.node_name], where[pod.node_name], found[pod.name])
        yield ServiceBox(client=Place("client", client_ns, CLIENT_IP), nodes=placed, pods=found)


def _gateway(node: Node) -> str:
    return str(next(ipaddress.ip_network(node.pod_cidrs[0]).hosts()))


def _node(client_ns: str, place: Place, node: Node, nodes: list[Node]) -> None:
    outside = netns.unique_name("sf")
    netns.run("ip", "-n", client_ns, "link", "add", outside, "type", "veth",
              "peer", "name", "eth0", "netns", place.netns)  # fmt: skip
    _batch(client_ns, [f"link set {outside} master fabric", f"link set {outside} up"])
    prefix = ipaddress.ip_network(node.pod_cidrs[0]).prefixlen
    others = [f"route add {other.pod_cidrs[0]} via {other.internal_ips[0]}"
              for other in nodes if other.name != node.name]  # fmt: skip
    _batch(place.netns, [
        "link add kube-bridge type bridge",
        f"addr add {_gateway(node)}/{prefix} dev kube-bridge",
        "link set kube-bridge up",
        f"addr add {place.ip}/24 dev eth0",
        "link set eth0 up",
        f"route add default via {CLIENT_IP}",
        *others,
    ])  # fmt: skip
    netns.run("sysctl", "-q", "-w", *_NODE_SYSCTLS, netns=place.netns)


def _pod(node_place: Place, node: Node, pod: Place) -> None:
    outside = netns.unique_name("sv")
    netns.run("ip", "-n", node_place.netns, "link", "add", outside, "type", "veth",
              "peer", "name", "eth0", "netns", pod.netns)  # fmt: skip
    _batch(node_place.netns, [f"link set {outside} master kube-bridge", f"link set {outside} up"])
    # as the bridge CNI with hairpinMode: a pod may reach itself through a service
    netns.run("bridge", "link", "set", "dev", outside, "hairpin", "on", netns=node_place.netns)
    prefix = ipaddress.ip_network(node.pod_cidrs[0]).prefixlen
    _batch(pod.netns, [f"addr add {pod.ip}/{prefix} dev eth0", "link set eth0 up",
                       f"route add default via {_gateway(node)}"])  # fmt: skip
    netns.run("sysctl", "-q", "-w", "net.ipv4.icmp_ratemask=0", netns=pod.netns)
