"""`cluster agent stop|start|restart NODE...`: nodes' agents, as a kubelet restarts a pod.

- stop: SIGTERM, the agent's clean stop (with --bgp-graceful-restart its sessions' routes
  stay with its peers and in its kernel, for its next start to take over); SIGKILL after
  10 s. The Node object stays: deleting it is `kubectl delete node`'s business.
- start: the agent as `up` started it; done when its /healthz answers 200 and,
  when the agents route, its BGP sessions (and the ToR's with it) are Established.
- restart: stop, then start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kuberouter.cluster import agents, server
from kuberouter.cluster.agents import AgentError
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import Topology

Say = Callable[[str], None]
TIMEOUT = 60.0


def agent(name: str, state_dir: Path, action: str, nodes: Sequence[str], say: Say = print) -> None:
    state = State.load(state_dir)
    if state is None:
        raise AgentError(f"no cluster {name!r}: no state in {state_dir}")
    topology = Topology.of(state)
    chosen = [topology.node(node) for node in nodes]
    if action in ("stop", "restart"):
        for node in chosen:
            stopped = agents.stop(state, node)
            say(f"agent on {node.name}: {'stopped' if stopped else 'was not running'}")
    if action in ("start", "restart"):
        started = time.monotonic()
        for node in chosen:
            process = agents.start(topology, state, node, server.kubeconfig_path(state))
            say(f"agent on {node.name}: started (pid {process.pid})")
        agents.wait_healthy(topology, state, TIMEOUT, chosen)
        ready = "healthy"
        if agents.routing(state):
            agents.wait_bgp(topology, state, TIMEOUT, chosen)
            ready += ", BGP sessions established"
        say(f"{ready} after {time.monotonic() - started:.1f}s")
