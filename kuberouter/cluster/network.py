"""Building the box's network: the fabric, the ToR's link, nodes and their pods.

Every namespace is recorded in the state file before it is made. Veth pairs are created
straight between two of the box's namespaces (`ip -n A link add ... peer ... netns B`), so
not even a transient link appears in the host's namespace.
"""

from __future__ import annotations

from kuberouter.cluster import netns
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import FABRIC, Node, Pod, Topology

PREFIXLEN = FABRIC.prefixlen
NODE_SYSCTLS = (
    "net.ipv4.ip_forward=1",  # a node routes between its pods and the fabric
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
)
# Bridged pod-to-pod traffic passes the node's iptables FORWARD hook, as on a real node, so
# the firewall controller can filter it; missing if br_netfilter is unavailable (tolerated).
BRIDGE_SYSCTLS = ("net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")


def make_netns(state: State, name: str) -> None:
    state.record_netns(name)  # first: a crash right after `ip netns add` is still cleaned up
    netns.add(name)


def fabric(topology: Topology, state: State) -> None:
    make_netns(state, topology.fabric_netns)
    netns.batch(
        topology.fabric_netns,
        [
            f"link add {topology.fabric_bridge} type bridge",
            f"addr add {topology.api_ip}/{PREFIXLEN} dev {topology.fabric_bridge}",
            f"link set {topology.fabric_bridge} up",
        ],
    )


def uplink(topology: Topology, outside: str, inside_netns: str, address: str) -> None:
    """A veth from the fabric bridge (`outside`) into `inside_netns`, holding `address`."""
    netns.run(
        ["ip", "-n", topology.fabric_netns, "link", "add", outside, "type", "veth",
         "peer", "name", topology.uplink, "netns", inside_netns],
    )  # fmt: skip
    netns.batch(
        topology.fabric_netns,
        [f"link set {outside} master {topology.fabric_bridge}", f"link set {outside} up"],
    )
    netns.batch(
        inside_netns,
        [f"addr add {address}/{PREFIXLEN} dev {topology.uplink}", f"link set {topology.uplink} up"],
    )


def tor(topology: Topology, state: State) -> None:
    make_netns(state, topology.tor_netns)
    uplink(topology, topology.tor_link, topology.tor_netns, topology.tor_ip)


def node(topology: Topology, state: State, node: Node) -> None:
    make_netns(state, node.netns)
    uplink(topology, node.fabric_link, node.netns, node.ip)
    netns.batch(
        node.netns,
        [
            "link add kube-bridge type bridge",
            f"addr add {node.gateway}/24 dev kube-bridge",
            "link set kube-bridge up",
        ],
    )
    netns.exec_in(node.netns, ["sysctl", "-q", "-w", *NODE_SYSCTLS])
    netns.exec_in(node.netns, ["sysctl", "-q", "-w", *BRIDGE_SYSCTLS], check=False)
    for pod_ in node.pods:
        pod(state, node, pod_)


def iptables_hint(node: Node, variant: str) -> None:
    """As a kubelet does: mark the iptables variant the node uses with an empty chain
    KUBE-IPTABLES-HINT in its mangle table (what the agent's variant detection reads)."""
    netns.exec_in(node.netns, [f"iptables-{variant}", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"])


def pod(state: State, node: Node, pod: Pod) -> None:
    make_netns(state, pod.netns)
    netns.run(
        ["ip", "-n", node.netns, "link", "add", pod.host_link, "type", "veth",
         "peer", "name", "eth0", "netns", pod.netns],
    )  # fmt: skip
    netns.batch(node.netns, [f"link set {pod.host_link} master kube-bridge",
                             f"link set {pod.host_link} up"])  # fmt: skip
    netns.batch(
        pod.netns,
        [
            f"addr add {pod.ip}/24 dev eth0",
            "link set eth0 up",
            f"route add default via {node.gateway}",
        ],
    )


def static_routes(topology: Topology) -> None:
    """Each node: a route to every other node's pod CIDR via that node's fabric address.

    A stand-in until the BGP routing controller exists: it is what that controller will
    install (learned from the ToR), so `up --no-static-routes` leaves it to the agents.
    """
    for here in topology.nodes:
        routes = [
            f"route add {there.pod_cidr} via {there.ip} proto static"
            for there in topology.nodes
            if there is not here
        ]
        if routes:
            netns.batch(here.netns, routes)
