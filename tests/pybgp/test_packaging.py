"""`pip install pybgp` stays light: the library and its commands, with only trio and attrs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.packaging import (
    clean_venv,
    declared,
    distribution_of,
    imports,
    installed,
    pulled_in,
    wheel_metadata,
    wheels,
)


def test_every_import_is_declared() -> None:
    required, extras = declared("pybgp")
    assert required == {"trio", "attrs"}
    for module, (eager, where) in imports("pybgp").items():
        distribution = distribution_of(module)
        assert distribution != "kube-router", f"{where} imports kuberouter"
        # An optional dependency (pyroute2 for --fib) is imported only where it is used.
        allowed = required if eager else required | extras
        assert distribution in allowed, f"{where} imports {module}, from {distribution}"


@pytest.mark.slow
def test_the_wheel_pulls_in_only_trio_and_attrs(tmp_path: Path) -> None:
    wheel = wheels()["pybgp"]
    requires = wheel_metadata(wheel)["Requires-Dist"]
    assert sorted(r for r in requires if "extra ==" not in r) == ["attrs>=23.1", "trio>=0.24"]
    bin_dir = clean_venv(tmp_path / "venv", wheel)
    graph = installed(bin_dir)
    assert graph["pybgp"] == {"trio", "attrs"}
    assert set(graph) == pulled_in(graph, {"pybgp"})  # nothing else came along
    assert not set(graph) & {"kube-router", "kubernetes", "pyroute2", "prometheus-client"}
    help_text = subprocess.run(
        [bin_dir / "pybgp", "--help"], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout
    assert "decode" in help_text and "encode" in help_text
    daemon = subprocess.run(
        [bin_dir / "pybgpd", "--help"], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout
    assert "--fib" in daemon
    probe = "import pybgp.api, pybgp.daemon, pybgp.wire.message"
    subprocess.run([bin_dir / "python", "-c", probe], check=True, cwd=tmp_path)
