"""kube-router is its own distribution, built from kuberouter/, depending on pybgp."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_agent_distribution_installs_with_its_commands(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [env_dir / "bin" / "python", "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(ROOT)], check=True, capture_output=True)  # pybgp, from here
    # Built from a copy: setuptools leaves a build/ folder in the tree it builds.
    source = tmp_path / "kuberouter"
    shutil.copytree(
        ROOT / "kuberouter",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    subprocess.run([*pip, str(source)], check=True, capture_output=True)
    version = subprocess.run(
        [env_dir / "bin" / "kube-router", "--version"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert "0.1.0" in version
    ctl = subprocess.run(
        [env_dir / "bin" / "kube-router-ctl", "policy", "simulate", "--help"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert "--protocol" in ctl
    probe = "import kubernetes, pyroute2, prometheus_client, yaml, pybgp.wire.message"
    subprocess.run([env_dir / "bin" / "python", "-c", probe], check=True, cwd=tmp_path)


def test_every_subpackage_is_in_the_distribution() -> None:
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "kuberouter" / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    found = {
        ".".join(("kuberouter", *init.parent.relative_to(ROOT / "kuberouter").parts))
        for init in (ROOT / "kuberouter").rglob("__init__.py")
        if "build" not in init.parts
    }
    assert found == listed
