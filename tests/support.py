"""Shared test helpers: a missing real component fails in CI, is skipped (with why) elsewhere."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Fail in CI, skip (with the reason printed) elsewhere, when a real component is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required component missing in CI: {what}")
    pytest.skip(f"component missing: {what}")


def require_tools(*names: str) -> None:
    for name in names:
        require(shutil.which(name) is not None, f"command {name!r} not on PATH")


def require_root() -> None:
    require(os.geteuid() == 0, "root privileges")
