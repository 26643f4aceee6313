"""Building the box's network: the fabric, the ToR's link, nodes and their pods.

Every namespace is recorded in the state file before it is made. Veth pairs are created
straight between two of the box's namespaces (`ip -n A link add ... peer ... netns B`), so
not even a transient link appears in the host's namespace.
"""

from __future__ import annotations

from kuberouter.cluster import netns
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import FABRIC, FABRIC_SUPERNET, Node, Pod, Subnet, Topology

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
    """The fabric namespace: a bridge per subnet, the API server's address on the first."""
    make_netns(state, topology.fabric_netns)
    commands = []
    for subnet in topology.subnets:
        commands += [f"link add {subnet.bridge} type bridge", f"link set {subnet.bridge} up"]
    commands.append(f"addr add {topology.api_ip}/{PREFIXLEN} dev {topology.fabric_bridge}")
    if len(topology.subnets) > 1:  # the API server answers nodes on the other subnets
        commands.append(f"route add {FABRIC_SUPERNET} via {topology.tor_ip}")
    netns.batch(topology.fabric_netns, commands)


def uplink(
    topology: Topology,
    outside: str,
    inside_netns: str,
    address: str,
    subnet: Subnet | None = None,
    inside: str = "",
) -> None:
    """A veth from a fabric bridge (`outside`, on `subnet`'s, the first by default) into
    `inside_netns` (named `inside`, the uplink by default), holding `address`."""
    bridge = (subnet or topology.subnets[0]).bridge
    inside = inside or topology.uplink
    netns.run(
        ["ip", "-n", topology.fabric_netns, "link", "add", outside, "type", "veth",
         "peer", "name", inside, "netns", inside_netns],
    )  # fmt: skip
    netns.batch(topology.fabric_netns, [f"link set {outside} master {bridge}",
                                        f"link set {outside} up"])  # fmt: skip
    netns.batch(inside_netns, [f"addr add {address}/{PREFIXLEN} dev {inside}",
                               f"link set {inside} up"])  # fmt: skip


def tor(topology: Topology, state: State) -> None:
    """The ToR's namespace, on every subnet; it routes between them."""
    make_netns(state, topology.tor_netns)
    for subnet in topology.subnets:
        uplink(topology, subnet.tor_link, topology.tor_netns, subnet.tor_ip, subnet,
               subnet.tor_uplink)  # fmt: skip
    if len(topology.subnets) > 1:
        netns.exec_in(topology.tor_netns, ["sysctl", "-q", "-w", *NODE_SYSCTLS])


def node(topology: Topology, state: State, node: Node) -> None:
    make_netns(state, node.netns)
    uplink(topology, node.fabric_link, node.netns, node.ip, topology.subnets[node.subnet])
    commands = [
        "link add kube-bridge type bridge",
        f"addr add {node.gateway}/24 dev kube-bridge",
        "link set kube-bridge up",
    ]
    if len(topology.subnets) > 1:  # the API server and the other subnets' nodes
        commands.append(f"route add {FABRIC_SUPERNET} via {topology.tor_address(node)}")
    netns.batch(node.netns, commands)
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
    """Each node: a route to every other node's pod CIDR on its subnet via that node's
    fabric address.

    A stand-in for the BGP routing controller: it is what that controller installs without
    an overlay (learned over BGP), so `up --no-static-routes` leaves it to the agents.
    """
    for here in topology.nodes:
        routes = [
            f"route add {there.pod_cidr} via {there.ip} proto static"
            for there in topology.nodes
            if there is not here and there.subnet == here.subnet
        ]
        if routes:
            netns.batch(here.netns, routes)
