"""Clients of the test API server shared by the tests here: each test module serves its own
`srv` fixture (its seed and options), and these connect to it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from kubernetes import client, config

from kuberouter.testing.apiserver import ApiServer
from tests.support import require_tools


@pytest.fixture
def kubeconfig(srv: ApiServer, tmp_path: Path) -> Path:
    return srv.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def ca_file(srv: ApiServer, tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_bytes(srv.ca_pem or b"")
    return path


@pytest.fixture
def http(srv: ApiServer, ca_file: Path) -> Iterator[requests.Session]:
    """Raw HTTP, to check status codes and Status bodies exactly."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
    session.verify = str(ca_file)
    session.headers["Authorization"] = f"Bearer {srv.token}"
    yield session
    session.close()


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = ["kubectl", f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}"]
        result = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=20, check=False
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    require_tools("kubectl")
    return Kubectl(kubeconfig, tmp_path / "kube-cache")
