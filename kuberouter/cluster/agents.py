"""One real `kube-router` agent per node, inside the node's namespace.

Each agent is started with --hostname-override=<node>, the box's kubeconfig, the BGP
settings matching the ToR and the LoadBalancer allocator over the box's range. The
service proxy runs in nftables mode (this kernel has no IPVS); the firewall is off
unless a demo opts in: `--agent-arg=--run-firewall` turns it on, since later flags win.
"""

from __future__ import annotations

import http.client
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kuberouter.cluster import netns, procs
from kuberouter.cluster.state import Process, State
from kuberouter.cluster.topology import (
    CLUSTER_ASN,
    HEALTH_PORT,
    LOADBALANCER_RANGE,
    TOR_ASN,
    Node,
    Topology,
)
from kuberouter.podnet.desired import CNI_CONF_ENV

BASE_ARGS = (
    "--run-firewall=false", "--service-proxy-mode=nftables",
    "--run-loadbalancer", f"--loadbalancer-ip-range={LOADBALANCER_RANGE}",
)  # fmt: skip
CNI_CONF = "10-kuberouter.conflist"  # under <state>/cni/<node>/, never the host's /etc


class AgentError(RuntimeError):
    """An agent exited or never became healthy."""


def role(node: Node) -> str:
    return f"agent {node.name}"


def argv(topology: Topology, node: Node, kubeconfig: Path, extra: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "kuberouter",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={node.name}",
        f"--health-port={HEALTH_PORT}",
        f"--cluster-asn={CLUSTER_ASN}",
        f"--peer-router-ips={topology.tor_ip}",
        f"--peer-router-asns={TOR_ASN}",
        *BASE_ARGS,
        *extra,
    ]  # fmt: skip


def health_port(extra: Sequence[str]) -> int:
    """The port /healthz listens on, honouring a --health-port among the extra arguments."""
    port = HEALTH_PORT
    for arg in extra:
        if arg.startswith("--health-port="):
            port = int(arg.split("=", 1)[1])
    return port


def start_all(topology: Topology, state: State, kubeconfig: Path) -> list[Process]:
    extra = state.agent_args
    return [
        procs.start(
            state,
            role(node),
            node.netns,
            argv(topology, node, kubeconfig, extra),
            env={CNI_CONF_ENV: str(state.path / "cni" / node.name / CNI_CONF)},
        )
        for node in topology.nodes
    ]


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


def wait_healthy(topology: Topology, state: State, timeout: float) -> None:
    """Until every agent's /healthz answers 200; an agent that exits fails at once."""
    port = health_port(state.agent_args)
    waiting = {node.name: node for node in topology.nodes}
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


def tail(process: Process | None, lines: int = 5) -> str:
    if process is None:
        return "  (never started)"
    try:
        text = Path(process.log).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "  (no log)"
    return "\n".join(f"  {line}" for line in text)
