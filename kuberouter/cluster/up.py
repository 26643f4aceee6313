"""`cluster up`: build the box, step by step, recording each made thing in the state file.

Order: fabric -> API server started (it boots while the rest is built) -> ToR namespace
and bgpd -> nodes and pods -> static routes (optional) -> Node and Pod objects (with the
--node-annotation ones) -> the user's manifests -> the controller manager (EndpointSlices)
and the pods' workloads (workloads.py) -> one agent per node -> wait until every
/healthz answers 200 and, when the agents route, every BGP session is Established.
A failure (or Ctrl-C) runs `down`, unless `keep_on_failure`; a crash leaves the state
file for `down` to finish the job.

A Pod among the manifests becomes one of the box's pods ("placed"): a namespace on the node
its spec.nodeName names (a box node; when unset, nodes take turns), an address from that
node's pod CIDR, and its object registered as given (labels, containers and their ports)
but bound to the node and Running at that address, as a kubelet would report it.
`iptables_hint` plays the kubelet's other part: the KUBE-IPTABLES-HINT chain in the mangle
table of that iptables variant in every node, before the agents start (it decides which
variant an agent uses, as upstream's iptables-wrapper does).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kuberouter.cluster import agents, containers, netns, network, procs, server, tor, workloads
from kuberouter.cluster.api import (
    Api,
    ManifestError,
    Object,
    collection,
    node_object,
    placed_pod_object,
    pod_object,
    read_manifests,
)
from kuberouter.cluster.down import down
from kuberouter.cluster.state import STATE_FILE, State
from kuberouter.cluster.topology import TOR_ASN, Topology, TopologyError
from kuberouter.model.node_bgp import MAX_ASN

Say = Callable[[str], None]


class UpError(RuntimeError):
    """The box cannot be built here (e.g. one of that name exists already)."""


@dataclass(frozen=True)
class UpOptions:
    name: str
    nodes: int
    pods_per_node: int
    state_dir: Path
    manifests: Sequence[str] = ()
    agent_args: Sequence[str] = ()
    static_routes: bool = True
    timeout: float = 60.0  # for the API server and the agents to come up
    keep_on_failure: bool = False
    iptables_hint: Literal["legacy", "nft"] | None = None  # as a kubelet leaves it
    subnets: int = 1  # fabric subnets; nodes take turns between them (topology.py)
    node_annotations: Sequence[str] = ()  # "NODE:KEY=VALUE", NODE as "node2" or its full name
    tor_asn: int = TOR_ASN  # the ToR's AS; another than the nodes' makes its sessions eBGP
    tor_password_file: Path | None = None  # an MD5 password for every ToR session
    agent_image: str = ""  # run the agents from this image (containers.py)
    workloads: bool = True  # pods answer with their names (off: bare namespaces)
    say: Say = field(default=print, compare=False)


@dataclass(frozen=True)
class BgpSetup:
    """The BGP side of `up`, read and checked before anything is made."""

    annotations: dict[str, dict[str, str]]  # node name -> its --node-annotation ones
    password: str | None


def up(options: UpOptions) -> State:
    if options.agent_image:
        containers.require_image(options.agent_image)
    topology = _topology(options)
    manifests = read_manifests(options.manifests)  # a bad file fails before anything is made
    for obj in manifests:
        collection(obj)  # and so does a kind the box does not serve
    bgp = BgpSetup(
        annotations=node_annotations(topology, options.node_annotations),
        password=tor.read_password(options.tor_password_file)
        if options.tor_password_file else None,
    )  # fmt: skip
    placed = placements(topology, manifests)
    topology = _topology(options, placed)
    state = new_state(topology, options, placed)
    try:
        build(topology, state, options, manifests, bgp)
    except BaseException:
        if not options.keep_on_failure:
            options.say("up failed; removing what was made")
            clean_up(options)
        raise
    return state


def _topology(options: UpOptions, placed: Sequence[Sequence[Any]] = ()) -> Topology:
    if not 1 <= options.tor_asn <= MAX_ASN:
        raise TopologyError(f"--tor-asn {options.tor_asn}: must be 1..{MAX_ASN}")
    return Topology.build(
        options.name, options.nodes, options.pods_per_node, placed,
        subnets=options.subnets, tor_asn=options.tor_asn,
    )  # fmt: skip


def node_annotations(topology: Topology, given: Sequence[str]) -> dict[str, dict[str, str]]:
    """ "NODE:KEY=VALUE" items by node name (a later one wins); the value is kept as given
    (a malformed one is for the agents to report, as they would on a real cluster)."""
    found: dict[str, dict[str, str]] = {}
    for item in given:
        where, colon, annotation = item.partition(":")
        key, equals, value = annotation.partition("=")
        if not (colon and equals and key.strip()):
            raise TopologyError(f"--node-annotation {item!r}: expected NODE:KEY=VALUE")
        found.setdefault(topology.node(where).name, {})[key.strip()] = value
    return found


def clean_up(options: UpOptions) -> None:
    """`down` after a failed `up`; its own failure must not hide the first one."""
    try:
        down(options.name, options.state_dir, say=lambda _: None)
    except Exception as exc:
        options.say(f"cleaning up failed too ({exc}); run `cluster down --name {options.name}`")


def placements(topology: Topology, manifests: list[Object]) -> list[list[Any]]:
    """[node index, "namespace/name"] for each Pod manifest, in order (see the docstring)."""
    nodes = {node.name: node.index for node in topology.nodes}
    turns = itertools.cycle(nodes.values())
    placed: list[list[Any]] = []
    for obj in manifests:
        if obj.get("kind") != "Pod":
            continue
        key = f"{obj['metadata']['namespace']}/{obj['metadata'].get('name')}"
        wanted = (obj.get("spec") or {}).get("nodeName")
        if wanted is not None and wanted not in nodes:
            raise ManifestError(f"pod {key}: spec.nodeName {wanted!r} is not a node of the box"
                                f" ({', '.join(nodes)})")  # fmt: skip
        if any(key == other for _, other in placed):
            raise ManifestError(f"pod {key} is given twice")
        placed.append([nodes[wanted] if wanted is not None else next(turns), key])
    return placed


def new_state(topology: Topology, options: UpOptions, placed: list[list[Any]]) -> State:
    """A fresh state directory with the state file in it, before anything else exists."""
    existing = netns.listed(topology.prefix)
    if (options.state_dir / STATE_FILE).exists() or existing:
        raise UpError(
            f"a cluster named {options.name!r} exists already ({len(existing)} namespaces, "
            f"state in {options.state_dir}); run `kube-router-ctl cluster down"
            f" --name {options.name}` first"
        )
    if options.state_dir.is_dir() and any(options.state_dir.iterdir()):
        raise UpError(f"state directory {options.state_dir} is not empty")
    options.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(options.state_dir, 0o700)  # the kubeconfig in it holds the token
    state = State(
        path=options.state_dir,
        name=options.name,
        nodes=options.nodes,
        pods_per_node=options.pods_per_node,
        static_routes=options.static_routes,
        agent_args=list(options.agent_args),
        placed=placed,
        subnets=options.subnets,
        tor_asn=options.tor_asn,
        tor_md5=options.tor_password_file is not None,
        agent_image=options.agent_image,
    )
    state.save()
    return state


def build(
    topology: Topology, state: State, options: UpOptions, manifests: list[Object], bgp: BgpSetup
) -> None:
    say, started = options.say, time.monotonic()
    network.fabric(topology, state)
    apiserver = server.start(topology, state)
    network.tor(topology, state)
    asns = tor.node_asns(topology, bgp.annotations, options.agent_args)
    tor.write_config(topology, state, asns, bgp.password)
    procs.start(state, tor.ROLE, topology.tor_netns, tor.argv(topology, state))
    md5 = ", MD5" if bgp.password is not None else ""
    say(f"fabric, ToR ({topology.tor_ip}, AS {topology.tor_asn}{md5}) and API server started")
    for node in topology.nodes:
        network.node(topology, state, node)
        if options.iptables_hint:
            network.iptables_hint(node, options.iptables_hint)
    if options.static_routes:
        network.static_routes(topology)
    routes = " (static routes between nodes' pod CIDRs)" if options.static_routes else ""
    say(f"networked: nodes {len(topology.nodes)}, pods {len(topology.pods())}{routes}")
    api = server.wait_ready(topology, state, apiserver, options.timeout)
    register(api, topology, manifests, say, bgp.annotations)
    workloads.start_controller_manager(topology, state)
    if options.workloads:
        workloads.start_pods(topology, state, manifests)
    agents.start_all(topology, state, server.kubeconfig_path(state))
    agents.wait_healthy(topology, state, options.timeout)
    if agents.routing(state):
        agents.wait_bgp(topology, state, options.timeout)
        say("BGP sessions established (see `cluster status`)")
    state.phase = "up"
    state.save()
    say(f"cluster {topology.name} up in {time.monotonic() - started:.1f}s; state in {state.path}")


def register(
    api: Api,
    topology: Topology,
    manifests: list[Object],
    say: Say,
    annotations: dict[str, dict[str, str]] | None = None,
) -> None:
    for node in topology.nodes:
        api.apply(node_object(topology, node, (annotations or {}).get(node.name)))
    placed = {}
    for node, pod in topology.pods():
        if pod.manifest:
            placed[pod.manifest] = (node, pod)
        else:
            api.apply(pod_object(node, pod))
    for obj in manifests:
        key = f"{obj['metadata'].get('namespace')}/{obj['metadata'].get('name')}"
        if obj.get("kind") == "Pod" and key in placed:
            obj = placed_pod_object(obj, *placed[key])
        outcome = api.apply(obj)
        say(f"{obj['kind'].lower()}/{obj['metadata']['name']} {outcome}")
