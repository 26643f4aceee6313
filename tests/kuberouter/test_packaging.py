"""kube-router is its own distribution, built from kuberouter/, depending on pybgp: its wheel
alone (with pybgp's) brings every module its commands import."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.kuberouter.cluster.conftest import leftovers, new_box, torn_down
from tests.packaging import (
    ROOT,
    clean_venv,
    declared,
    distribution_of,
    imports,
    installed,
    pulled_in,
    wheel_metadata,
    wheels,
)

# Imports every module of the installed package: a missing dependency fails here.
IMPORT_ALL = """
import importlib, pkgutil, kuberouter
names = [m.name for m in pkgutil.walk_packages(kuberouter.__path__, "kuberouter.")
         if not m.name.endswith(".__main__")]  # that one runs the command
for name in names:
    importlib.import_module(name)
print(len(names), kuberouter.__file__)
"""


def test_every_import_is_declared() -> None:
    required, _ = declared("kube-router")
    for module, (_, where) in imports("kube-router").items():
        distribution = distribution_of(module)
        assert distribution in required, f"{where} imports {module}, from {distribution}"


def test_every_subpackage_is_in_the_distribution() -> None:
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


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtualenv holding the two wheels and what they pull in; its bin/."""
    built = wheels()
    return clean_venv(tmp_path_factory.mktemp("kube-router") / "venv", *built.values())


def run(bin_dir: Path, *argv: str) -> str:
    done = subprocess.run(
        [bin_dir / argv[0], *argv[1:]], check=False, capture_output=True, text=True,
        cwd=bin_dir, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_the_wheel_brings_every_module_its_commands_import(installed_venv: Path) -> None:
    requires = wheel_metadata(wheels()["kube-router"])["Requires-Dist"]
    assert {r.split(";")[0] for r in requires} == {
        r.split(";")[0] for r in tomllib.loads(
            (ROOT / "kuberouter" / "pyproject.toml").read_text())["project"]["dependencies"]
    }  # fmt: skip
    graph = installed(installed_venv)
    assert graph["kube-router"] == declared("kube-router")[0]
    assert set(graph) == pulled_in(graph, {"kube-router"})
    count, where = run(installed_venv, "python", "-c", IMPORT_ALL).split()
    assert int(count) > 50 and "site-packages" in where  # the wheel's, not this tree's
    assert "0.1.0" in run(installed_venv, "kube-router", "--version")
    assert "--protocol" in run(installed_venv, "kube-router-ctl", "policy", "simulate", "--help")
    assert "--pods-per-node" in run(installed_venv, "kube-router-ctl", "cluster", "up", "--help")


@pytest.mark.slow
@pytest.mark.privileged
def test_cluster_up_runs_from_the_installed_wheel(installed_venv: Path, tmp_path: Path) -> None:
    box = new_box(tmp_path)
    where = ["--name", box.name, "--state-dir", str(box.state_dir)]
    with torn_down(box):
        up = subprocess.run(
            [installed_venv / "kube-router-ctl", "cluster", "up", *where,
             "--nodes", "1", "--pods-per-node", "1"],
            capture_output=True, text=True, cwd=tmp_path, timeout=180, check=False,
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"cluster {box.name} up" in up.stdout
        agent_log = next((box.state_dir / "logs").glob("agent*.log")).read_text()
        assert "caches synced" in agent_log
        status = subprocess.run(
            [installed_venv / "kube-router-ctl", "cluster", "status", *where],
            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stdout + status.stderr
    assert leftovers(box) == []
