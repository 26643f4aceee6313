"""The box's API server: the project's test API server as its own process in the fabric namespace.

It listens on the fabric bridge's address (HTTPS, bearer token) so every node reaches it,
and writes the kubeconfig the agents, kubectl and `status` use. The token lives in a
0600 file in the state directory and is never put on a command line or in a log.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

from kuberouter.cluster import procs
from kuberouter.cluster.api import Api, ApiError
from kuberouter.cluster.state import Process, State
from kuberouter.cluster.topology import API_PORT, Topology

ROLE = "apiserver"


def kubeconfig_path(state: State) -> Path:
    return state.path / "kubeconfig"


def token_path(state: State) -> Path:
    return state.path / "token"


def audit_path(state: State) -> Path:
    """Every request the server answered, as audit events (kuberouter/testing/audit.py)."""
    return state.path / "audit.log"


def start(topology: Topology, state: State) -> Process:
    token = token_path(state)
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(24) + "\n")
    state.record_file(token)
    kubeconfig = kubeconfig_path(state)
    state.api = {"url": topology.api_url, "kubeconfig": str(kubeconfig)}
    state.record_file(kubeconfig)
    state.record_file(audit_path(state))
    argv = [
        sys.executable, "-m", "kuberouter.testing.apiserver",
        "--bind", topology.api_ip, "--port", str(API_PORT),
        "--token-file", str(token), "--kubeconfig", str(kubeconfig),
        "--audit-log", str(audit_path(state)),
    ]  # fmt: skip
    return procs.start(state, ROLE, topology.fabric_netns, argv)


def wait_ready(topology: Topology, state: State, process: Process, timeout: float) -> Api:
    """Once the server wrote its kubeconfig and answers; a client for it."""
    deadline = time.monotonic() + timeout
    while not _announced(topology, process):
        if not procs.alive(process.pid):
            raise ApiError(f"the API server exited while starting (log: {process.log})")
        if time.monotonic() > deadline:
            raise ApiError(f"the API server did not start within {timeout:.0f}s")
        time.sleep(0.05)
    api = Api(kubeconfig_path(state), topology.fabric_netns)
    api.wait_ready(max(deadline - time.monotonic(), 1.0), lambda: procs.alive(process.pid))
    return api


def _announced(topology: Topology, process: Process) -> bool:
    """The server prints its URL once it listens, after writing the kubeconfig."""
    try:
        return topology.api_url in Path(process.log).read_text(errors="replace")
    except OSError:
        return False
