"""The README's library example runs and two speakers exchange a route."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_two_speakers_example() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "two_speakers.py")],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "B learned 10.1.0.0/24 via 127.0.0.1, AS path 65000" in result.stdout
    assert "('127.0.0.1', 'Established')" in result.stdout
