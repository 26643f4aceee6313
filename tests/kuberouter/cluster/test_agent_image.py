"""The agent's container image (scripts/agent-image.sh) runs each node's agent in the box
(`up --agent-image`), as a privileged container in the node's namespace, like a hostNetwork
pod: it holds the operator toolbox, its routing controller carries the pods' routes over BGP
(no static routes: `up --no-static-routes`), its firewall filters the node's real traffic,
and `cluster agent stop|start` stops and starts the container."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from kuberouter.cluster.containers import PODMAN
from kuberouter.version import __version__
from tests.kuberouter.cluster import bgp
from tests.kuberouter.cluster.conftest import REPO, Box, leftovers, new_box, torn_down
from tests.support import require_tools

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

IMAGE = f"localhost/kube-router:{__version__}"
TOOLBOX = ("ip", "iptables", "ipset", "ipvsadm", "nft", "conntrack", "tcpdump", "pybgp")
DENY_ALL = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
SERVE = (
    "import socket; s = socket.create_server(('0.0.0.0', 8080)); s.settimeout(30)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'hello'); c.close()\n"
)
CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    print(socket.create_connection((sys.argv[1], 8080), timeout=2).recv(10).decode())\n"
    "except OSError as error:\n"
    "    print(type(error).__name__)\n"
)


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built from this tree (the apt layer is reused after the first build)."""
    require_tools("podman", "debootstrap")
    subprocess.run(["bash", str(REPO / "scripts" / "agent-image.sh")], check=True,
                   capture_output=True, timeout=1200)  # fmt: skip
    return IMAGE


def podman(*args: str) -> str:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, f"podman {args}: {done.stderr}"
    return done.stdout


def connect(box: Box, client: str, address: str) -> str:
    return box.exec_in(client, "python3", "-c", CONNECT, address).stdout.strip()


def wait_for(box: Box, client: str, address: str, answer: str) -> None:
    deadline = time.monotonic() + 30
    while (got := connect(box, client, address)) != answer:
        assert time.monotonic() < deadline, f"{client} -> {address}: {got}, not {answer}"
        time.sleep(0.5)


def test_each_node_runs_its_agent_from_the_image(image: str, tmp_path: Path) -> None:
    (tmp_path / "deny.yaml").write_text(DENY_ALL)
    with torn_down(new_box(tmp_path)) as box:
        up = box.ctl("up", "--nodes", "2", "--pods-per-node", "1", "--agent-image", image,
                     "--agent-arg=--run-firewall", "--no-static-routes")  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        nodes = [f"{box.name}-node1", f"{box.name}-node2"]
        for node in nodes:
            container = f"{node}-agent"
            info = json.loads(podman("inspect", container))[0]
            assert info["State"]["Running"] and info["ImageName"] == image
            assert info["HostConfig"]["Privileged"] is True
            # The container shares the node's network, as a hostNetwork pod shares its node's.
            agent = str(info["State"]["Pid"])
            assert agent in box.exec_in(node, "ip", "netns", "pids", node).stdout.split()
            inside = podman("exec", container, "ip", "-o", "link", "show", "kube-bridge")
            assert "kube-bridge" in inside
            found = podman("exec", container, "sh", "-c",
                           " && ".join(f"command -v {tool}" for tool in TOOLBOX))  # fmt: skip
            assert len(found.split()) == len(TOOLBOX)
            assert __version__ in podman("exec", container, "kube-router", "--version")
        # Each container's routing controller: its control socket in the shared state
        # directory answers pybgp on the host, and the other node's pod CIDR is in the
        # node's kernel as a route it learned (protocol 17).
        for index, node in enumerate(nodes, 1):
            other = f"10.244.{2 - index}.0/24"
            sessions = bgp.sessions(box, index)
            assert {peer["state"] for peer in sessions.values()} == {"Established"}, sessions
            assert other in bgp.wait_until(f"{node}'s learned routes",
                                           lambda i=index: bgp.bgp_routes(box, i))  # fmt: skip
        # The containers' firewall acts on the nodes' traffic: a pod on node 1 reaches a pod
        # on node 2 until a deny-all policy is loaded, then it is refused.
        server = subprocess.Popen(["ip", "netns", "exec", f"{nodes[1]}-pod1", "python3", "-c",
                                   SERVE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for(box, f"{nodes[0]}-pod1", "10.244.1.2", "hello")
            loaded = box.ctl("load", "-f", str(tmp_path / "deny.yaml"))
            assert loaded.returncode == 0, loaded.stderr
            wait_for(box, f"{nodes[0]}-pod1", "10.244.1.2", "ConnectionRefusedError")
        finally:
            server.kill()
            server.wait()
        # `cluster agent stop|start` acts on the container as on a process: gone, then back
        # with its sessions (the control socket is in the state directory again).
        assert box.ctl("agent", "stop", "node1").returncode == 0
        assert f"{nodes[0]}-agent" not in podman("ps", "--format", "{{.Names}}").split()
        started = box.ctl("agent", "start", "node1")
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"{nodes[0]}-agent" in podman("ps", "--format", "{{.Names}}").split()
        sessions = bgp.sessions(box, 1)
        assert {peer["state"] for peer in sessions.values()} == {"Established"}, sessions
    assert leftovers(box) == []
    names = podman("ps", "--all", "--format", "{{.Names}}").split()
    assert not [name for name in names if name.startswith(box.prefix)]


def test_a_missing_image_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    box = new_box(tmp_path)
    require_tools("podman")
    failed = box.ctl("up", "--nodes", "1", "--agent-image", "localhost/no-such-image:0")
    assert failed.returncode == 1
    assert failed.stderr == ("kube-router-ctl: error: --agent-image localhost/no-such-image:0: "
                             "no such local image (build it: bash scripts/agent-image.sh)\n")  # fmt: skip
    assert leftovers(box) == []
