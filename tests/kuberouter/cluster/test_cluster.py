"""Cluster in a box, end to end: up, real clients and real traffic, status, then down leaves
nothing behind, also after `up` is killed half-way or fails on its own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.kuberouter.cluster.conftest import Box, leftovers

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
"""
HEALTHZ = (
    "import urllib.request;"
    " print(urllib.request.urlopen('http://127.0.0.1:20244/healthz', timeout=5).status)"
)
SERVE_ONCE = (
    "import socket; s = socket.create_server(('0.0.0.0', 8080)); s.settimeout(10);"
    " c, _ = s.accept(); c.sendall(b'hello from ' + socket.gethostname().encode()); c.close()"
)
SERVE_PEER = (  # answers with the address the connection came from
    "import socket; s = socket.create_server(('0.0.0.0', 8080)); s.settimeout(10);"
    " c, peer = s.accept(); c.sendall(peer[0].encode()); c.close()"
)
PODNET_HEALTHY = (
    "import json, urllib.request;"
    " r = urllib.request.urlopen('http://127.0.0.1:20244/healthz', timeout=5);"
    " print(json.load(r)['controllers']['podnet']['healthy'])"
)
CONNECT = (
    "import socket, sys, time\n"
    "for _ in range(50):\n"
    "    try:\n"
    "        c = socket.create_connection((sys.argv[1], 8080), timeout=2); break\n"
    "    except ConnectionRefusedError:\n"
    "        time.sleep(0.05)\n"
    "print(c.recv(100).decode())\n"
)


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def _tcp(box: Box, client_ns: str, server_ns: str, server_ip: str, serve: str = SERVE_ONCE) -> str:
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "python3", "-c", serve],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        return _ok(box.exec_in(client_ns, "python3", "-c", CONNECT, server_ip))
    finally:
        server.kill()
        server.wait()


def test_up_serves_clients_and_traffic_then_down_leaves_nothing(box: Box) -> None:
    started = time.monotonic()
    _ok(box.ctl("up", "--nodes", "2", "--pods-per-node", "2"))
    up_seconds = time.monotonic() - started

    nodes = json.loads(_ok(box.kubectl("get", "nodes", "-o", "json")))["items"]
    assert {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes} == {
        f"{box.name}-node1": "10.244.0.0/24",
        f"{box.name}-node2": "10.244.1.0/24",
    }
    pods = json.loads(_ok(box.kubectl("get", "pods", "-o", "json")))["items"]
    placed = {p["metadata"]["name"]: (p["spec"]["nodeName"], p["status"]["podIP"]) for p in pods}
    assert placed[f"{box.name}-node1-pod1"] == (f"{box.name}-node1", "10.244.0.2")
    assert placed[f"{box.name}-node2-pod2"] == (f"{box.name}-node2", "10.244.1.3")
    assert len(placed) == 4

    pod = f"{box.name}-node1-pod1"
    _ok(box.exec_in(pod, "ping", "-c", "1", "-W", "2", "10.244.0.3"))  # same node
    _ok(box.exec_in(pod, "ping", "-c", "1", "-W", "2", "10.244.1.2"))  # other node
    reply = _tcp(box, pod, f"{box.name}-node2-pod2", "10.244.1.3")
    assert reply.startswith("hello from")

    for node in (f"{box.name}-node1", f"{box.name}-node2"):
        assert _ok(box.exec_in(node, "python3", "-c", HEALTHZ)).strip() == "200"
        assert _ok(box.exec_in(node, "python3", "-c", PODNET_HEALTHY)).strip() == "True"
    # pod egress: leaving the pod ranges (here for the API server's address), a pod's
    # traffic comes from its node's address; the fabric has no route to the pods
    assert _tcp(box, pod, f"{box.name}-fabric", "10.240.0.1", SERVE_PEER).strip() == "10.240.0.11"
    conflist = box.state_dir / "cni" / f"{box.name}-node1" / "10-kuberouter.conflist"
    ranges = json.loads(conflist.read_text())["plugins"][0]["ipam"]["ranges"]
    assert ranges == [[{"subnet": "10.244.0.0/24"}]]

    status = box.ctl("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "problems: none" in status.stdout
    assert "static routes" in status.stdout

    refused = box.ctl("up", "--nodes", "1")  # the name is taken: refused, nothing touched
    assert refused.returncode == 1 and "exists already" in refused.stderr
    policy = box.scratch / "policy.yaml"
    policy.write_text(POLICY)
    assert "networkpolicy/deny-web created" in _ok(box.ctl("load", "-f", str(policy)))
    assert "deny-web" in _ok(box.kubectl("get", "networkpolicies"))
    _ok(box.kubectl("create", "service", "loadbalancer", "web", "--tcp=80:8080"))
    jsonpath = "jsonpath={.status.loadBalancer.ingress[*].ip}"
    deadline = time.monotonic() + 20
    while not (address := _ok(box.kubectl("get", "svc", "web", "-o", jsonpath)).strip()):
        assert time.monotonic() < deadline, "no LoadBalancer address from the agents"
        time.sleep(0.2)
    assert address == "10.243.0.0"  # the first of the box's range

    started = time.monotonic()
    _ok(box.ctl("down"))
    down_seconds = time.monotonic() - started
    assert leftovers(box) == []
    again = box.ctl("down")
    assert again.returncode == 0 and "nothing to remove" in again.stdout
    print(f"up {up_seconds:.1f}s, down {down_seconds:.1f}s")


def _wait_for_state(box: Box, up: subprocess.Popen[str], ready: str) -> None:
    """Until the state file shows `ready` ("nodes": a node namespace; "agents": an agent)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert up.poll() is None, "up finished before it could be killed"
        try:
            state = json.loads((box.state_dir / "state.json").read_text())
        except (OSError, ValueError):
            state = {}
        roles = [p["role"] for p in state.get("processes", [])]
        if ready == "nodes" and any("-node2" in n for n in state.get("netns", [])):
            return
        if ready == "agents" and any(r.startswith("agent") for r in roles):
            return
        time.sleep(0.01)
    pytest.fail(f"up never reached {ready!r}")


@pytest.mark.parametrize("stage", ["nodes", "agents"])
def test_down_after_up_is_killed_half_way_leaves_nothing(box: Box, stage: str) -> None:
    up = subprocess.Popen(
        box.argv("up", "--nodes", "3"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_state(box, up, stage)
        os.killpg(up.pid, signal.SIGKILL)  # `up` and whatever command it was running
    finally:
        up.kill()
        up.communicate()
    assert up.returncode == -signal.SIGKILL
    left = leftovers(box)
    assert any(item.startswith("netns") for item in left)
    assert any(item.startswith("process") for item in left)  # at least the API server

    _ok(box.ctl("down"))
    assert leftovers(box) == []


def test_up_that_fails_removes_what_it_made(box: Box) -> None:
    failed = box.ctl("up", "--nodes", "2", "--pods-per-node", "1", "--agent-arg=--no-such-flag")
    assert failed.returncode == 1
    assert "the agent on" in failed.stderr and "--no-such-flag" in failed.stderr
    assert leftovers(box) == []


def test_status_exits_non_zero_when_an_agent_is_gone(box: Box) -> None:
    _ok(box.ctl("up", "--nodes", "1", "--pods-per-node", "1"))
    state = json.loads((box.state_dir / "state.json").read_text())
    agent = next(p for p in state["processes"] if p["role"].startswith("agent"))
    os.kill(agent["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (status := box.ctl("status")).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status.returncode == 1
    assert "agent not running" in status.stdout
    _ok(box.ctl("down"))
    assert leftovers(box) == []


def test_down_without_a_state_directory_works_by_prefix(box: Box) -> None:
    _ok(box.ctl("up", "--nodes", "2", "--pods-per-node", "1"))
    shutil.rmtree(box.state_dir)  # lost: down has only the name to go by
    assert any(item.startswith("process") for item in leftovers(box))
    _ok(box.ctl("down"))
    assert leftovers(box) == []
