"""What a user looks at in a box whose agents route over BGP: kernel routes, the agents'
sessions (`pybgp --socket ... -j`), the ToR's table and sessions (vtysh), real packets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.kuberouter.cluster.conftest import Box

T = TypeVar("T")
PYBGP = Path(sys.executable).with_name("pybgp")
PROTO_KUBE_ROUTER = "17"
SETTLE = 30.0  # seconds for a change to reach every agent, kernel and the ToR


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def wait_until(what: str, check: Callable[[], T], timeout: float = SETTLE) -> T:
    """The first truthy result of `check()`, polled; fails naming `what` and the last one."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:.0f}s still not {what}; last: {found!r}")
        time.sleep(0.2)


def node(box: Box, index: int) -> str:
    return f"{box.name}-node{index}"


def pod(box: Box, index: int) -> str:
    """The first pod on node `index` (boxes here have one pod per node)."""
    return f"{box.name}-node{index}-pod1"


def pod_ip(index: int) -> str:
    return f"10.244.{index - 1}.2"


def pod_cidr(index: int) -> str:
    return f"10.244.{index - 1}.0/24"


# -- the kernel ---------------------------------------------------------------------------


def routes(box: Box, index: int) -> list[dict[str, Any]]:
    """Node `index`'s main routing table, as `ip -j route show` gives it."""
    return list(json.loads(ok(box.exec_in(node(box, index), "ip", "-j", "route", "show"))))


def bgp_routes(box: Box, index: int) -> dict[str, str]:
    """Node `index`'s routes of protocol 17 (the agent's): prefix -> gateway."""
    return {r["dst"]: r.get("gateway", r.get("dev", "?")) for r in routes(box, index)
            if r.get("protocol") == PROTO_KUBE_ROUTER}  # fmt: skip


def ping(box: Box, source_netns: str, address: str) -> bool:
    return box.exec_in(source_netns, "ping", "-c", "1", "-W", "2", address).returncode == 0


def unreachable_pairs(box: Box, pods: Iterable[int]) -> list[str]:
    """Every ordered pair of pods on different nodes whose ping gets no answer."""
    chosen = list(pods)
    return [f"{pod(box, a)} -> {pod_ip(b)}" for a in chosen for b in chosen
            if a != b and not ping(box, pod(box, a), pod_ip(b))]  # fmt: skip


# -- the agents -----------------------------------------------------------------------------


def pybgp(box: Box, index: int, *args: str) -> str:
    """`pybgp --socket <state>/bgp-<i>.sock ARGS`, as a user runs it against an agent."""
    socket = box.state_dir / f"bgp-{index}.sock"
    done = subprocess.run([str(PYBGP), "--socket", str(socket), *args],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    return ok(done)


def sessions(box: Box, index: int) -> dict[str, dict[str, Any]]:
    """Node `index`'s BGP sessions by peer address (`pybgp -j neighbor`)."""
    return {peer["address"]: peer for peer in json.loads(pybgp(box, index, "-j", "neighbor"))}


def agent_log(box: Box, index: int) -> str:
    return (box.state_dir / "logs" / f"agent-{node(box, index)}.log").read_text(errors="replace")


def metrics(box: Box, index: int, port: int) -> str:
    """The agent's /metrics, fetched inside its node's namespace."""
    fetch = (f"import urllib.request; print(urllib.request.urlopen("
             f"'http://127.0.0.1:{port}/metrics', timeout=5).read().decode())")  # fmt: skip
    return ok(box.exec_in(node(box, index), sys.executable, "-c", fetch))


# -- the ToR (FRR) ----------------------------------------------------------------------------


def tor(box: Box, command: str) -> dict[str, Any]:
    """A `vtysh -c COMMAND` (JSON) against the ToR's bgpd."""
    argv = ["vtysh", "--vty_socket", str(box.state_dir / "tor"), "-d", "bgpd", "-c", command]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return dict(json.loads(ok(done) or "{}"))


def tor_prefixes(box: Box) -> set[str]:
    return set(tor(box, "show bgp ipv4 unicast json").get("routes", {}))


def tor_paths(box: Box, prefix: str) -> dict[str, dict[str, Any]]:
    """The ToR's paths for `prefix` by the peer it learned each from."""
    paths = tor(box, f"show bgp ipv4 unicast {prefix} json").get("paths", [])
    return {path["peer"]["peerId"]: path for path in paths}


def tor_best_next_hop(box: Box, prefix: str) -> str:
    """The next hop of the ToR's best path for `prefix` ("" when it has none)."""
    for path in tor_paths(box, prefix).values():
        best = path.get("bestpath", {})
        if best is True or (isinstance(best, dict) and best.get("overall")):
            return str(path["nexthops"][0]["ip"])
    return ""


def communities(path: dict[str, Any]) -> set[str]:
    return set(path.get("community", {}).get("list", []))


def tor_neighbors(box: Box) -> dict[str, dict[str, Any]]:
    return tor(box, "show bgp neighbors json")


def connections(box: Box) -> dict[str, int]:
    """How many times the ToR brought up each session (FRR's connectionsEstablished)."""
    return {ip: int(n.get("connectionsEstablished", 0)) for ip, n in tor_neighbors(box).items()}


def plain_connect(box: Box, index: int, address: str) -> str:
    """A TCP connection to address:179 from node `index`, without an MD5 signature:
    "connected", or how it failed ("timeout" when the peer drops unsigned segments)."""
    script = (
        "import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], 179), timeout=2)\n"
        "print('connected')\n"
    )
    done = box.exec_in(node(box, index), sys.executable, "-c", script, address)
    if done.returncode == 0:
        return done.stdout.strip()
    return "timeout" if "timed out" in done.stderr else done.stderr.strip().splitlines()[-1]
