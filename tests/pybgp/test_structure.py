"""The package stays readable: no import circles between pybgp's modules (every import
counts: at the top, inside a function, or for type checking only), no module over 600 lines
and no class over 300 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PYBGP = Path(__file__).resolve().parents[2] / "pybgp"
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PYBGP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PYBGP.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The pybgp modules `name` imports: `from pybgp.policy import config` names the module
    pybgp.policy.config, `from pybgp.rib import AdjRibIn` the package pybgp.rib."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            found |= submodules if len(submodules) == len(node.names) else {base, *submodules}
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of modules (Tarjan), each as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            group.append(node)
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def classes(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ClassDef):
            yield node.name, (node.end_lineno or node.lineno) - node.lineno + 1


def test_no_import_circles() -> None:
    assert cycles(import_graph()) == []


def test_no_module_over_600_lines() -> None:
    lines = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in lines.items() if n > MAX_MODULE_LINES} == {}


def test_no_class_over_300_lines() -> None:
    long = {
        f"{name}.{cls}": n
        for name, path in modules().items()
        for cls, n in classes(path)
        if n > MAX_CLASS_LINES
    }
    assert long == {}


def test_the_checks_see_a_circle_and_the_graph_is_real() -> None:
    """The checks can fail: a planted circle is found, and known imports are in the graph."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "pybgp.session.fsm" in graph["pybgp.session.connection"]
    assert "pybgp.rib" in graph["pybgp.speaker.pipeline"]  # a package, by name
