"""`pip install pybgp` stays light: the library and its commands, with only trio and attrs."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_library_installs_alone(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(ROOT)], check=True, capture_output=True
    )
    help_text = subprocess.run(
        [env_dir / "bin" / "pybgp", "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "decode" in help_text and "encode" in help_text
    probe = (
        "import importlib.util, pybgp, pybgp.wire.message;"
        "print(*[m for m in ('kubernetes', 'pyroute2', 'kuberouter')"
        " if importlib.util.find_spec(m)])"
    )
    found = subprocess.run(
        [python, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.split()
    assert found == []
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout.lower()
    names = {line.split("==")[0] for line in installed.split()}
    assert {"pybgp", "trio", "attrs"} <= names
    assert not names & {"kubernetes", "pyroute2", "prometheus-client", "pyyaml"}
    assert sys.version_info >= (3, 11)
