"""Names and addresses of a box cluster, computed from (name, nodes, pods per node) alone
(and, when given, the number of fabric subnets and the ToR's AS).

Everything is derived, never stored separately, so `status` and `down` rebuild the same
picture from the few numbers in the state file. Every namespace starts with
"<name>-"; links made in the fabric, node and ToR namespaces start with it too (pods keep
the conventional `eth0`, and nodes the conventional `kube-bridge`, inside namespaces that
carry the prefix). Nothing is ever created in the host's own namespace.

    fabric ns <name>-fabric: bridge <name>-br (10.240.0.1/24, the API server listens here)
      <name>-n<i>  <- veth ->  node ns <name>-node<i>: <name>-eth0 10.240.0.<10+i>/24
      <name>-tor   <- veth ->  ToR ns <name>-tor:      <name>-eth0 10.240.0.254/24 (FRR)
    node ns: bridge kube-bridge 10.244.<i-1>.1/24 (pod gateway)
      <name>-p<j>  <- veth ->  pod ns <name>-node<i>-pod<j>: eth0 10.244.<i-1>.<1+j>/24

LoadBalancer Services get their addresses from 10.243.0.0/24 (the agents run the
allocator; one of them leads).

With `subnets` > 1 (up --subnets N) the fabric is N subnets 10.240.<s>.0/24, each its own
bridge (<name>-br<s>, s > 0) in the fabric namespace, and nodes take turns between them
(node i on subnet (i - 1) mod N, address 10.240.<s>.<10+i>). The ToR is on every subnet
(10.240.<s>.254, its links <name>-tor<s> / <name>-eth<s>) and routes between them; the
fabric namespace and every node reach the other subnets through it (10.240.0.0/16 via the
ToR's address on their own subnet), and nothing else is routed: pod CIDRs are the
agents' business (a direct route on a shared subnet, a tunnel across subnets).

Pods given as manifests to `up -f` ("placed" pods) follow a node's generated ones, in the
order given (j = pods per node + 1, ...); the state file records their (node, namespace/name)
so the same picture is rebuilt from it.

Addresses may repeat between boxes: each box is its own set of namespaces.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kuberouter.cluster.state import State

FABRIC = ipaddress.ip_network("10.240.0.0/24")  # subnet 0; subnet s is 10.240.<s>.0/24
FABRIC_SUPERNET = ipaddress.ip_network("10.240.0.0/16")  # routed by the ToR between subnets
POD_SUPERNET = ipaddress.ip_network("10.244.0.0/16")  # upstream's usual cluster CIDR
LOADBALANCER_RANGE = ipaddress.ip_network("10.243.0.0/24")  # --loadbalancer-ip-range
API_PORT = 6443
# The ToR's AS by default (up --tor-asn): upstream kube-router's default cluster ASN, so
# the ToR peers with the nodes over iBGP and reflects their routes to each other.
TOR_ASN = 64512
CLUSTER_ASN = 64512
HEALTH_PORT = 20244

# No dash in the name, so the prefix "<name>-" of one box never matches another box.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]{0,9}")
MAX_NODES = 99  # keeps "<name>-n<i>" within the 15 characters of an interface name
MAX_PODS = 250  # the pod /24 minus network, gateway and broadcast, with room to spare
MAX_SUBNETS = 4


class TopologyError(ValueError):
    """A name or size the box cannot be built with."""


@dataclass(frozen=True)
class Pod:
    name: str  # the Pod object's name and its network namespace
    index: int
    ip: str
    host_link: str  # the veth end on the node's kube-bridge
    manifest: str = ""  # "namespace/name" of a placed pod's object ("" for a generated one)

    @property
    def netns(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        """The Pod object's "namespace/name" (generated pods live in "default")."""
        return self.manifest or f"default/{self.name}"


@dataclass(frozen=True)
class Node:
    name: str  # the Node object's name, --hostname-override and its network namespace
    index: int
    ip: str
    pod_cidr: str
    gateway: str  # kube-bridge's address, the pods' default route
    fabric_link: str  # the veth end on the fabric bridge
    pods: tuple[Pod, ...]
    subnet: int = 0  # the fabric subnet the node is on

    @property
    def netns(self) -> str:
        return self.name


@dataclass(frozen=True)
class Subnet:
    """One fabric subnet: its bridge in the fabric namespace and the ToR's link into it."""

    index: int
    network: str
    bridge: str
    tor_link: str  # the ToR's veth end on this subnet's bridge
    tor_uplink: str  # its other end, inside the ToR's namespace
    tor_ip: str


@dataclass(frozen=True)
class Topology:
    name: str
    fabric_netns: str
    fabric_bridge: str
    api_ip: str
    tor_netns: str
    tor_link: str  # the ToR's veth end on the fabric bridge
    tor_ip: str
    uplink: str  # the fabric-facing link's name inside node and ToR namespaces
    nodes: tuple[Node, ...]
    subnets: tuple[Subnet, ...] = ()
    tor_asn: int = TOR_ASN

    @classmethod
    def build(
        cls,
        name: str,
        nodes: int,
        pods_per_node: int,
        placed: Sequence[Sequence[Any]] = (),
        *,
        subnets: int = 1,
        tor_asn: int = TOR_ASN,
    ) -> Topology:
        """`placed`: (node index from 1, "namespace/name") of each pod given as a manifest."""
        check(name, nodes, pods_per_node, subnets)
        manifests: dict[int, list[str]] = {}
        for index, key in placed:
            if not 1 <= int(index) <= nodes:
                raise TopologyError(f"pod {key}: no node {index} in a box of {nodes} nodes")
            manifests.setdefault(int(index), []).append(str(key))
        for index, keys in manifests.items():
            if pods_per_node + len(keys) > MAX_PODS:
                raise TopologyError(f"node {index}: more than {MAX_PODS} pods")
        hosts = list(FABRIC.hosts())
        fabric = tuple(_subnet(name, s) for s in range(subnets))
        return cls(
            name=name,
            fabric_netns=f"{name}-fabric",
            fabric_bridge=fabric[0].bridge,
            api_ip=str(hosts[0]),
            tor_netns=f"{name}-tor",
            tor_link=fabric[0].tor_link,
            tor_ip=fabric[0].tor_ip,
            uplink=f"{name}-eth0",
            nodes=tuple(
                _node(name, i, pods_per_node, manifests.get(i, ()), (i - 1) % subnets)
                for i in range(1, nodes + 1)
            ),
            subnets=fabric,
            tor_asn=tor_asn,
        )

    @classmethod
    def of(cls, state: State) -> Topology:
        """The picture of a box, rebuilt from its state file."""
        return cls.build(
            state.name, state.nodes, state.pods_per_node, state.placed,
            subnets=state.subnets, tor_asn=state.tor_asn,
        )  # fmt: skip

    @property
    def prefix(self) -> str:
        return prefix_of(self.name)

    @property
    def api_url(self) -> str:
        return f"https://{self.api_ip}:{API_PORT}"

    @property
    def namespaces(self) -> list[str]:
        """Every namespace, in the order `up` makes them."""
        names = [self.fabric_netns, self.tor_netns]
        for node in self.nodes:
            names += [node.netns, *(pod.netns for pod in node.pods)]
        return names

    def pods(self) -> list[tuple[Node, Pod]]:
        return [(node, pod) for node in self.nodes for pod in node.pods]

    def tor_address(self, node: Node) -> str:
        """The ToR's address on the node's subnet: its BGP peer and its way to the others."""
        return self.subnets[node.subnet].tor_ip

    def node(self, name: str) -> Node:
        """A node by its name, or its short name ("node2")."""
        for node in self.nodes:
            if name in (node.name, node.name.removeprefix(self.prefix)):
                return node
        known = ", ".join(n.name.removeprefix(self.prefix) for n in self.nodes)
        raise TopologyError(f"no node {name!r} in the box (its nodes: {known})")


def prefix_of(name: str) -> str:
    return f"{name}-"


def check(name: str, nodes: int, pods_per_node: int, subnets: int = 1) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise TopologyError(
            f"cluster name {name!r}: use 1-10 lower-case letters and digits, starting with a letter"
        )
    if not 1 <= nodes <= MAX_NODES:
        raise TopologyError(f"--nodes {nodes}: must be 1..{MAX_NODES}")
    if not 0 <= pods_per_node <= MAX_PODS:
        raise TopologyError(f"--pods-per-node {pods_per_node}: must be 0..{MAX_PODS}")
    if not 1 <= subnets <= MAX_SUBNETS:
        raise TopologyError(f"--subnets {subnets}: must be 1..{MAX_SUBNETS}")


def _subnet(name: str, index: int) -> Subnet:
    network = ipaddress.ip_network((int(FABRIC.network_address) + (index << 8), FABRIC.prefixlen))
    suffix = str(index) if index else ""
    return Subnet(
        index=index,
        network=str(network),
        bridge=f"{name}-br{suffix}",
        tor_link=f"{name}-tor{suffix}",
        tor_uplink=f"{name}-eth{index}",
        tor_ip=str(network.broadcast_address - 1),
    )


def _node(
    name: str, index: int, pods_per_node: int, manifests: Sequence[str] = (), subnet: int = 0
) -> Node:
    node_name = f"{name}-node{index}"
    cidr = ipaddress.ip_network((int(POD_SUPERNET.network_address) + ((index - 1) << 8), 24))
    addresses = list(cidr.hosts())
    objects = [""] * pods_per_node + list(manifests)
    pods = tuple(
        Pod(
            name=f"{node_name}-pod{j}",
            index=j,
            ip=str(addresses[j]),
            host_link=f"{name}-p{j}",
            manifest=manifest,
        )
        for j, manifest in enumerate(objects, start=1)
    )
    return Node(
        name=node_name,
        index=index,
        ip=str(FABRIC.network_address + (subnet << 8) + 10 + index),
        pod_cidr=str(cidr),
        gateway=str(addresses[0]),
        fabric_link=f"{name}-n{index}",
        pods=pods,
        subnet=subnet,
    )
