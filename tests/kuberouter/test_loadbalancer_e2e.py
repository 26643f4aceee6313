"""Two real kube-router agents with --run-loadbalancer against one test API server, driven with
kubectl: one allocates at a time, the other takes over when the first is killed (after the
lease expires) or stops (at once: it gives the lease up), and no address is handed out twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kuberouter.testing import serve
from kuberouter.testing.apiserver import ApiServer
from tests.kuberouter.conftest import Kubectl
from tests.kuberouter.test_agent import free_port, get
from tests.support import require_tools

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "fixtures" / "k8s" / "basic-cluster.yaml"
RANGES = "--loadbalancer-ip-range=10.255.0.0/29,fd00:255::/125"
LEASE = ("get", "lease", "kube-router-lballoc", "-n", "kube-system")


class Agent:
    def __init__(self, kubeconfig: Path, node: str, logs: Path) -> None:
        self.node, self.health, self.metrics = node, free_port(), free_port()
        self.log = logs / f"agent-{node}-{time.monotonic_ns()}.log"
        args = [
            sys.executable, "-m", "kuberouter", f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node}", "--run-router=false", "--run-service-proxy=false",
            "--run-firewall=false", "--run-loadbalancer", RANGES, "--enable-ipv6",
            "--loadbalancer-sync-period=3s", "--health-addr=127.0.0.1",
            f"--health-port={self.health}", "--metrics-addr=127.0.0.1",
            f"--metrics-port={self.metrics}",
        ]  # fmt: skip
        env = os.environ | {"POD_NAMESPACE": "kube-system"}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(args, cwd=ROOT, stderr=log, env=env)

    def metric(self, name: str) -> str:
        status, text = get(f"http://127.0.0.1:{self.metrics}/metrics")
        assert status == 200
        return next((line.split()[-1] for line in text.splitlines() if line.startswith(name)), "")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=15)

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def srv() -> Iterator[ApiServer]:
    with serve(token="e2e-token", seed=[SEED], service_cidr="10.96.0.0/16,fd00:96::/112") as s:
        yield s


def wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_two_agents_one_allocator_with_takeovers(
    srv: ApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    require_tools("kubectl")
    kubectl = Kubectl(kubeconfig, tmp_path / "cache")
    agents = {node: Agent(kubeconfig, node, tmp_path) for node in ("node-a", "node-b")}

    def holder() -> str:
        result = kubectl(*LEASE, "-o", "jsonpath={.spec.holderIdentity}", check=False)
        return result.stdout if result.returncode == 0 else ""

    def ingress(name: str) -> list[str]:
        out = kubectl("get", "svc", name, "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
        return out.stdout.split()

    try:
        wait(lambda: holder() in agents, 20, "a leader")
        leader = agents[holder()]
        follower = next(a for a in agents.values() if a is not leader)
        kubectl("create", "service", "loadbalancer", "web", "--tcp=80:8080")
        manifest = tmp_path / "dual.yaml"
        manifest.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "dual"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "kube-router",
                     "ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 443}]},
        }))  # fmt: skip
        kubectl("apply", "-f", str(manifest))
        wait(lambda: ingress("web") and len(ingress("dual")) == 2, 15, "addresses")
        assert ingress("web") == ["10.255.0.0"]
        assert ingress("dual") == ["10.255.0.1", "fd00:255::"]
        assert "10.255.0.0" in kubectl("get", "svc", "web").stdout  # EXTERNAL-IP
        assert leader.metric("kube_router_loadbalancer_leader") == "1.0"
        assert follower.metric("kube_router_loadbalancer_leader") == "0.0"

        leader.stop(signal.SIGKILL)  # no goodbye: the lease has to expire (15 s)
        wait(lambda: holder() == follower.node, 30, "the follower to take over")
        kubectl("create", "service", "loadbalancer", "after-kill", "--tcp=80")
        wait(lambda: ingress("after-kill"), 15, "an address from the new leader")

        restarted = agents[leader.node] = Agent(kubeconfig, leader.node, tmp_path)
        assert follower.stop() == 0  # gives the lease up on the way out
        wait(lambda: holder() == restarted.node, 10, "the restarted agent to take over")
        kubectl("create", "service", "loadbalancer", "after-stop", "--tcp=80")
        wait(lambda: ingress("after-stop"), 15, "an address after the restart")

        names = ("web", "dual", "after-kill", "after-stop")
        handed = [ip for name in names for ip in ingress(name)]
        assert len(handed) == len(set(handed)) == 5, handed

        kubectl("patch", "svc", "web", "-p", '{"spec":{"type":"ClusterIP"}}')
        wait(lambda: ingress("web") == [], 15, "the address of web to be released")
        status, body = get(f"http://127.0.0.1:{restarted.health}/healthz")
        assert status == 200 and '"loadbalancer"' in body
        assert "released 10.255.0.0 from default/web" in restarted.output()
    finally:
        for agent in agents.values():
            agent.process.kill()
            agent.process.wait(timeout=10)
    for agent in agents.values():
        assert "Traceback" not in agent.output(), agent.output()
        assert "e2e-token" not in agent.output()
