"""The kube-router agent process against the project's test API server: caches sync,
/healthz and /metrics answer, SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from kuberouter.testing import serve

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "fixtures" / "k8s" / "basic-cluster.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(url: str, deadline: float) -> tuple[int, str]:
    while True:
        try:
            return get(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_agent_serves_health_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    with serve(token="t0ken", seed=[SEED]) as srv:
        kubeconfig = tmp_path / "kubeconfig"
        srv.write_kubeconfig(kubeconfig)
        health, metrics = free_port(), free_port()
        args = [
            sys.executable,
            "-m",
            "kuberouter",
            f"--kubeconfig={kubeconfig}",
            "--health-addr=127.0.0.1",
            f"--health-port={health}",
            "--metrics-addr=127.0.0.1",
            f"--metrics-port={metrics}",
        ]
        agent = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            status, body = wait_for(f"http://127.0.0.1:{health}/healthz", deadline)
            assert status == 200 and '"healthy": true' in body
            status, text = wait_for(f"http://127.0.0.1:{metrics}/metrics", deadline)
            assert status == 200
            assert "kube_router_build_info{" in text
            assert 'kube_router_store_objects{kind="Pod"} 3.0' in text
            assert 'kube_router_watch_events_total{kind="Pod"}' in text
            assert "t0ken" not in text
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=10) == 0
        finally:
            agent.kill()
            stderr = agent.communicate()[1]
        assert "t0ken" not in stderr
        assert "Traceback" not in stderr, stderr
