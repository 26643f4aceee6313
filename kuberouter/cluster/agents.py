"""One real `kube-router` agent per node, inside the node's namespace.

Each agent is started with --hostname-override=<node>, the box's kubeconfig, the BGP
settings matching the ToR (its address on the node's subnet, its AS, its MD5 password) and
the LoadBalancer allocator over the box's range. The service proxy runs in nftables mode
(this kernel has no IPVS); the firewall is off unless a demo opts in:
`--agent-arg=--run-firewall` turns it back on, since later flags win. With `--agent-image`
the same command line is given to the image's kube-router instead (containers.py).

An agent can be stopped (SIGTERM, as the kubelet stops a pod: with --bgp-graceful-restart
a graceful stop) and started again as `up` started it (`cluster agent`).
`wait_bgp` waits until every session each agent has, and each of the ToR's, is up.
"""

from __future__ import annotations

import http.client
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kuberouter.cluster import containers, netns, procs, tor
from kuberouter.cluster.state import Process, State
from kuberouter.cluster.topology import (
    CLUSTER_ASN,
    HEALTH_PORT,
    LOADBALANCER_RANGE,
    Node,
    Topology,
)
from kuberouter.podnet.desired import CNI_CONF_ENV
from pybgp.control import ControlError, request

BASE_ARGS = (
    "--run-firewall=false", "--service-proxy-mode=nftables",
    "--run-loadbalancer", f"--loadbalancer-ip-range={LOADBALANCER_RANGE}",
)  # fmt: skip
CNI_DIR = "cni"  # <state>/cni/<node>/: each agent's CNI file, never the host's /etc
CNI_CONF = "10-kuberouter.conflist"


class AgentError(RuntimeError):
    """An agent exited or never became healthy."""


def role(node: Node) -> str:
    return f"agent {node.name}"


def argv(
    topology: Topology,
    node: Node,
    kubeconfig: Path,
    extra: Sequence[str],
    image: str = "",
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """This Python's kube-router, or with `image` that image's, in a container given `env`
    (containers.py)."""
    program = (
        containers.run_argv(image, node, kubeconfig.parent, env or {}) if image
        else [sys.executable, "-m", "kuberouter"]
    )  # fmt: skip
    return [
        *program,
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={node.name}",
        f"--health-port={HEALTH_PORT}",
        f"--cluster-asn={CLUSTER_ASN}",
        f"--peer-router-ips={topology.tor_address(node)}",
        f"--peer-router-asns={topology.tor_asn}",
        f"--bgp-control-socket={control_socket(kubeconfig.parent, node)}",
        *BASE_ARGS,
        *extra,
    ]  # fmt: skip


def control_socket(state_dir: Path, node: Node) -> Path:
    """Where the node's agent serves `pybgp --socket ...` (each agent its own)."""
    return state_dir / f"bgp-{node.index}.sock"


def health_port(extra: Sequence[str]) -> int:
    """The port /healthz listens on, honouring a --health-port among the extra arguments."""
    port = HEALTH_PORT
    for arg in extra:
        if arg.startswith("--health-port="):
            port = int(arg.split("=", 1)[1])
    return port


def start_all(topology: Topology, state: State, kubeconfig: Path) -> list[Process]:
    return [launch(topology, state, node, kubeconfig) for node in topology.nodes]


def launch(topology: Topology, state: State, node: Node, kubeconfig: Path) -> Process:
    """The node's agent as the box runs it (at `up`, and again after a stop)."""
    extra, image = [*tor.agent_args(state), *state.agent_args], state.agent_image
    env = {CNI_CONF_ENV: str(state.path / CNI_DIR / node.name / CNI_CONF)}
    command = argv(topology, node, kubeconfig, extra, image, env)
    return procs.start(state, role(node), node.netns, command, env, enter=not image)


def stop(state: State, node: Node, grace: float = 10.0) -> bool:
    """SIGTERM the node's agent (SIGKILL after `grace`); False when it was not running."""
    process = state.process(role(node))
    if process is None or not procs.alive(process.pid):
        return False
    procs.stop([process.pid], grace)
    return True


def start(topology: Topology, state: State, node: Node, kubeconfig: Path) -> Process:
    """The node's agent again, as `up` started it."""
    process = state.process(role(node))
    if process is not None and procs.alive(process.pid):
        raise AgentError(f"the agent on {node.name} is running already (pid {process.pid})")
    return launch(topology, state, node, kubeconfig)


def healthz(node: Node, port: int, timeout: float = 2.0) -> tuple[int, str] | None:
    """GET /healthz inside the node's namespace: (status, body), or None if nothing answers."""

    def get() -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", "/healthz")
            reply = connection.getresponse()
            return reply.status, reply.read().decode(errors="replace")
        finally:
            connection.close()

    try:
        return netns.call_in(node.netns, get)
    except OSError:
        return None


def wait_healthy(
    topology: Topology, state: State, timeout: float, nodes: Sequence[Node] = ()
) -> None:
    """Until every agent's (or `nodes`' agents') /healthz answers 200; an agent that exits
    fails at once."""
    port = health_port(state.agent_args)
    waiting = {node.name: node for node in nodes or topology.nodes}
    deadline = time.monotonic() + timeout
    while waiting:
        for name, node in list(waiting.items()):
            process = state.process(role(node))
            if process is None or not procs.alive(process.pid):
                raise AgentError(f"the agent on {name} exited:\n{tail(process)}")
            answer = healthz(node, port)
            if answer is not None and answer[0] == 200:
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            raise AgentError(f"agents not healthy after {timeout:.0f}s: {', '.join(waiting)}")
        time.sleep(0.2 if waiting else 0)


def routing(state: State) -> bool:
    """Whether the agents run the routing controller (--run-router, true by default)."""
    return tor.agent_options(state.agent_args).run_router


def sessions(state: State, node: Node) -> list[dict[str, Any]] | str:
    """The agent's BGP sessions, as `pybgp --socket SOCKET -j neighbor` shows them; or why
    they cannot be read."""
    try:
        found = request(str(control_socket(state.path, node)), "neighbors", timeout=5.0)
    except (ControlError, OSError, ValueError) as err:
        return str(err)
    return list(found) if isinstance(found, list) else f"unexpected answer {found!r}"


def bgp_down(topology: Topology, state: State, nodes: Sequence[Node] = ()) -> list[str]:
    """Every session of the agents (of `nodes`, all by default) and of the ToR with them
    that is not Established, in words."""
    nodes = nodes or topology.nodes
    down = []
    for node in nodes:
        found = sessions(state, node)
        if isinstance(found, str):
            down.append(f"{node.name}: {found}")
            continue
        if not found:
            down.append(f"{node.name}: no BGP sessions")
        down += [f"{node.name} -> {peer['address']}: {peer['state']}" for peer in found
                 if peer.get("state") != "Established"]  # fmt: skip
    at_tor = tor.sessions(state)
    down += [f"ToR -> {node.ip}: {at_tor.get(node.ip, 'not answering')}"
             for node in nodes if at_tor.get(node.ip) != "Established"]  # fmt: skip
    return down


def wait_bgp(topology: Topology, state: State, timeout: float, nodes: Sequence[Node] = ()) -> None:
    """Until every BGP session of the agents (of `nodes`) and the ToR is Established."""
    deadline = time.monotonic() + timeout
    while down := bgp_down(topology, state, nodes):
        if time.monotonic() > deadline:
            shown = "\n  ".join(down[:20])
            raise AgentError(f"BGP sessions not Established after {timeout:.0f}s:\n  {shown}")
        time.sleep(0.2)


def tail(process: Process | None, lines: int = 5) -> str:
    if process is None:
        return "  (never started)"
    try:
        text = Path(process.log).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "  (no log)"
    return "\n".join(f"  {line}" for line in text)
