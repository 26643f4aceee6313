"""`cluster status`: what the box has, checked live; the list of problems decides the exit code.

Checked: the state file and `up` having finished, the API server (process and answers),
each node (namespace, Node object, agent process, /healthz 200), each pod (namespace,
Pod object Running with its IP), each running agent's BGP sessions (read from its control
socket, what `pybgp --socket <state>/bgp-<i>.sock -j neighbor` prints) and bgpd on the ToR
(process and its sessions). A session that is not Established is a problem, unless the
agents run without the routing controller (--agent-arg=--run-router=false).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kuberouter.cluster import agents, netns, procs, server, tor
from kuberouter.cluster.api import Api, ApiError
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import Topology, prefix_of

Say = Callable[[str], None]


def status(name: str, state_dir: Path, say: Say = print) -> int:
    """Print the report; 0 when everything is there and healthy, 1 otherwise."""
    state = State.load(state_dir)
    if state is None:
        leftovers = netns.listed(prefix_of(name))
        say(f"no cluster {name!r}: no state in {state_dir}")
        if leftovers:
            say(f"leftover namespaces (run `cluster down`): {', '.join(leftovers)}")
        return 1
    topology = Topology.of(state)
    problems: list[str] = []
    if state.phase != "up":
        problems.append(f"`up` did not finish (phase {state.phase!r})")
    nodes, pods = _objects(topology, state, problems, say)
    _nodes(topology, state, nodes, problems, say)
    _pods(topology, pods, problems, say)
    routing = agents.routing(state)
    if routing:
        _sessions(topology, state, problems, say)
    else:
        say("")
        say("BGP: the agents run without the routing controller (--run-router=false)")
    _tor(topology, state, problems, say, routing)
    say("")
    say("problems: " + ("none" if not problems else ""))
    for problem in problems:
        say(f"  - {problem}")
    return 1 if problems else 0


def _objects(
    topology: Topology, state: State, problems: list[str], say: Say
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Node and Pod objects by name, as the API server has them (empty if it is down)."""
    process = state.process(server.ROLE)
    running = process is not None and procs.alive(process.pid)
    kubeconfig = server.kubeconfig_path(state)
    say(f"cluster {topology.name}: state {state.path}, phase {state.phase}")
    pid = f"pid {process.pid}" if process else "no pid"
    say(f"API server {topology.api_url} in netns {topology.fabric_netns}"
        f" ({pid}, {'running' if running else 'NOT RUNNING'})")  # fmt: skip
    say(f"  kubectl: ip netns exec {topology.fabric_netns}"
        f" kubectl --kubeconfig {kubeconfig} get pods -o wide")  # fmt: skip
    if state.static_routes:
        routes = "static routes installed by `cluster up` (stand-in for the BGP routing controller)"
    else:
        routes = "none from `cluster up`: left to the agents (BGP via the ToR)"
    say(f"pod routes between nodes: {routes}")
    if not running:
        problems.append("the API server is not running")
        return {}, {}
    try:
        api = Api(kubeconfig, topology.fabric_netns)
        nodes = {n["metadata"]["name"]: n for n in api.items("Node")}
        pods = {f"{p['metadata'].get('namespace')}/{p['metadata']['name']}": p
                for p in api.items("Pod")}  # fmt: skip
    except (ApiError, OSError, ValueError, KeyError) as exc:
        problems.append(f"the API server does not answer: {exc}")
        return {}, {}
    return nodes, pods


def _nodes(
    topology: Topology, state: State, objects: dict[str, Any], problems: list[str], say: Say
) -> None:
    port = agents.health_port(state.agent_args)
    say("")
    say(f"{'NODE':<16} {'INTERNAL-IP':<14} {'POD-CIDR':<16} {'AGENT':<12} HEALTHZ")
    for node in topology.nodes:
        obj = objects.get(node.name)
        process = state.process(agents.role(node))
        running = process is not None and procs.alive(process.pid)
        answer = agents.healthz(node, port) if running and netns.exists(node.netns) else None
        health = str(answer[0]) if answer else "-"
        agent = f"pid {process.pid}" if running and process else "not running"
        say(f"{node.name:<16} {node.ip:<14} {node.pod_cidr:<16} {agent:<12} {health}")
        if not netns.exists(node.netns):
            problems.append(f"node {node.name}: namespace missing")
        if obj is None:
            problems.append(f"node {node.name}: no Node object")
        if not running:
            problems.append(f"node {node.name}: agent not running")
        elif health != "200":
            problems.append(f"node {node.name}: /healthz answered {health}")


def _pods(topology: Topology, objects: dict[str, Any], problems: list[str], say: Say) -> None:
    say("")
    say(f"{'POD NETNS (= object default/NAME, or shown)':<40} {'NODE':<16} {'IP':<14} PHASE")
    for node, pod in topology.pods():
        status_ = (objects.get(pod.key) or {}).get("status", {})
        phase = status_.get("phase", "missing")
        placed = f" ({pod.manifest})" if pod.manifest else ""
        say(f"{pod.name:<40} {node.name:<16} {pod.ip:<14} {phase}{placed}")
        if not netns.exists(pod.netns):
            problems.append(f"pod {pod.name}: namespace missing")
        if phase != "Running" or status_.get("podIP") != pod.ip:
            problems.append(f"pod {pod.name}: no Running Pod object with IP {pod.ip}")


def _sessions(topology: Topology, state: State, problems: list[str], say: Say) -> None:
    """Each running agent's BGP sessions, from its control socket."""
    say("")
    say(f"BGP sessions of each node (pybgp --socket {state.path}/bgp-<i>.sock neighbor):")
    say(f"{'NODE':<16} {'PEER':<15} {'AS':<10} {'STATE':<12} {'UP':>8}  RCVD/ACC/SENT  WHO")
    for node in topology.nodes:
        process = state.process(agents.role(node))
        if process is None or not procs.alive(process.pid):
            continue  # a problem already
        found = agents.sessions(state, node)
        if isinstance(found, str):
            say(f"{node.name:<16} ({found})")
            problems.append(f"node {node.name}: its BGP sessions cannot be read: {found}")
            continue
        for peer in found:
            say(f"{node.name:<16} {_session(peer)}")
            if peer.get("state") != "Established":
                problems.append(f"node {node.name}: BGP session with {peer['address']}"
                                f" is {peer.get('state')}")  # fmt: skip


def _session(peer: dict[str, Any]) -> str:
    counts = list(peer.get("families", {}).values())
    prefixes = "/".join(str(sum(c.get(k, 0) for c in counts))
                        for k in ("received", "accepted", "advertised"))  # fmt: skip
    uptime = peer.get("uptime")
    up = f"{int(uptime)}s" if isinstance(uptime, int | float) else "-"
    return (f"{peer['address']:<15} {peer.get('peer_asn', '?')!s:<10} {peer.get('state', '?'):<12}"
            f" {up:>8}  {prefixes:<13}  {peer.get('description', '')}")  # fmt: skip


def _tor(topology: Topology, state: State, problems: list[str], say: Say, routing: bool) -> None:
    process = state.process(tor.ROLE)
    running = process is not None and procs.alive(process.pid)
    md5 = ", MD5" if state.tor_md5 else ""
    say("")
    say(f"ToR {topology.tor_netns} {topology.tor_ip} AS {topology.tor_asn}{md5}: bgpd "
        + (f"pid {process.pid}" if running and process else "NOT RUNNING"))  # fmt: skip
    if not running:
        problems.append("the ToR's bgpd is not running")
        return
    sessions = tor.summary(state)
    if not sessions:
        problems.append("the ToR's bgpd does not answer")
    for address, peer in sorted(sessions.items()):
        session = peer.get("state", "?")
        say(f"  neighbor {address:<14} AS {peer.get('remoteAs', '?')!s:<10} {session}"
            f"  received {peer.get('pfxRcd', 0)}")  # fmt: skip
        if routing and session != "Established":
            problems.append(f"the ToR's BGP session with {address} is {session}")
