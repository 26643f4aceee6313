"""The protocol core stays sans-IO: wire/, session/, rib/ and policy/ import neither trio,
socket nor time (architecture rule 1)."""

from __future__ import annotations

import ast
from pathlib import Path

PYBGP = Path(__file__).resolve().parents[2] / "pybgp"
CORE = ["wire", "session", "rib", "policy"]
FORBIDDEN = {"trio", "socket", "time", "asyncio", "select", "selectors", "threading"}


def core_files() -> list[Path]:
    files: list[Path] = []
    for name in CORE:
        path = PYBGP / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return files


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_core_is_sans_io() -> None:
    files = core_files()
    assert files, "no core modules found"
    offenders = {str(f.relative_to(PYBGP)): imported_modules(f) & FORBIDDEN for f in files}
    assert {f: mods for f, mods in offenders.items() if mods} == {}
