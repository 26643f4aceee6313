"""The two distributions as a user gets them: what their code imports, their wheels built with
`python -m build`, and clean virtualenvs to install them into."""

from __future__ import annotations

import ast
import configparser
import functools
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import tomllib
import venv
import zipfile
from pathlib import Path

from tests.support import require

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"pybgp": ROOT, "kube-router": ROOT / "kuberouter"}  # distribution -> its folder
PACKAGES = {"pybgp": "pybgp", "kube-router": "kuberouter"}  # distribution -> import name
TOOLING = {"pip", "setuptools", "wheel"}  # what a fresh virtualenv may hold besides


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0])


def declared(distribution: str) -> tuple[set[str], set[str]]:
    """(install requirements, requirements of extras) by name, from the source's own files."""
    if distribution == "pybgp":
        config = configparser.ConfigParser()
        config.read(ROOT / "setup.cfg")
        required = config["options"]["install_requires"].split("\n")
        extras = [line for _, text in config["options.extras_require"].items()
                  for line in text.split("\n") if not line.startswith("%")]  # fmt: skip
    else:
        project = tomllib.loads((SOURCES[distribution] / "pyproject.toml").read_text())["project"]
        required = project["dependencies"]
        extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    return ({requirement_name(r) for r in required if r.strip()},
            {requirement_name(r) for r in extras if r.strip()})  # fmt: skip


def imports(distribution: str) -> dict[str, tuple[bool, str]]:
    """Every top-level module the package's code imports, outside the standard library:
    name -> (imported at module level, a file that imports it)."""
    package = ROOT / PACKAGES[distribution]
    found: dict[str, tuple[bool, str]] = {}
    for path in sorted(package.rglob("*.py")):
        if "build" in path.relative_to(package).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            outside = set(sys.stdlib_module_names) | {PACKAGES[distribution]}
            for name in {n.split(".")[0] for n in names} - outside:
                eager = id(node) in top_level or found.get(name, (False, ""))[0]
                found[name] = (eager, str(path.relative_to(ROOT)))
    return found


def distribution_of(module: str) -> str:
    """The installed distribution that provides a top-level module."""
    own = {package: name for name, package in PACKAGES.items()}
    if module in own:
        return own[module]
    providers = importlib.metadata.packages_distributions().get(module, [])
    assert providers, f"no installed distribution provides {module!r}"
    return canonical(providers[0])


@functools.cache
def wheels() -> dict[str, Path]:
    """Each distribution's wheel, built once per run by `python -m build` as a release is:
    the sdist first, then the wheel from it, in an isolated build environment."""
    require(importlib.util.find_spec("build") is not None, "the `build` package ('.[dev]')")
    out = Path(tempfile.mkdtemp(prefix="pybgp-wheels-"))
    for source in SOURCES.values():
        subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                       check=True, capture_output=True, timeout=600)  # fmt: skip
    built = {canonical(path.name.split("-")[0]): path for path in out.glob("*.whl")}
    assert built.keys() == SOURCES.keys(), sorted(out.iterdir())
    return built


def wheel_metadata(wheel: Path) -> dict[str, list[str]]:
    """The wheel's METADATA as field -> values (Requires-Dist, Provides-Extra, ...)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    fields: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    return fields


def clean_venv(where: Path, *wheel_files: Path) -> Path:
    """A new virtualenv with only these wheels installed (their requirements from the
    machine's package index); returns its bin/ folder."""
    venv.create(where, with_pip=True)
    bin_dir = where / "bin"
    subprocess.run([bin_dir / "python", "-m", "pip", "install", "-q", *map(str, wheel_files)],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    return bin_dir


def installed(bin_dir: Path) -> dict[str, set[str]]:
    """Each distribution in the virtualenv (but pip's own tooling) -> the names it requires
    (extras' requirements left out), read from the installed metadata."""
    probe = (
        "import importlib.metadata as m, json\n"
        "print(json.dumps({d.metadata['Name']: [r for r in (d.requires or [])"
        " if 'extra ==' not in r] for d in m.distributions()}))"
    )
    done = subprocess.run([bin_dir / "python", "-c", probe], check=True, capture_output=True,
                          text=True, cwd=bin_dir)  # fmt: skip
    found = json.loads(done.stdout)
    return {canonical(name): {requirement_name(r) for r in requires}
            for name, requires in found.items() if canonical(name) not in TOOLING}  # fmt: skip


def pulled_in(graph: dict[str, set[str]], roots: set[str]) -> set[str]:
    """Everything installed that `roots` require, transitively (the roots included); a
    requirement whose environment marker excludes it here is not installed, so not followed."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen and name in graph:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen
