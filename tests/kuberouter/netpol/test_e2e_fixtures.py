"""The e2e netpol truth tables (fixtures/netpol): compiled and reference evaluation must
both give exactly the expected table, diagonal included."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from kuberouter.netpol import reference
from kuberouter.netpol.loader import Loaded, load_objects
from kuberouter.netpol.simulate import Simulator
from kuberouter.netpol.truthtable import differences, format_table, parse_table

ROOT = Path(__file__).parents[3] / "fixtures" / "netpol"
TABLES = sorted(ROOT.glob("*/expected-*.txt"))


def _case_id(path: Path) -> str:
    return f"{path.parent.name}:{path.stem.removeprefix('expected-')}"


@functools.cache
def _documents(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


@functools.cache
def _scenario(directory: Path) -> tuple[Loaded, Simulator]:
    loaded = load_objects(
        _documents(ROOT / "cluster.yaml") + _documents(directory / "policies.yaml")
    )
    return loaded, Simulator(loaded.cluster)


def _port(path: Path) -> tuple[int, str]:
    port, protocol = path.stem.removeprefix("expected-").split("-")
    return int(port), protocol


def test_there_are_enough_scenarios() -> None:
    scenarios = {path.parent for path in TABLES}
    assert len(scenarios) >= 15
    assert len(TABLES) >= len(scenarios)


@pytest.mark.parametrize("table", TABLES, ids=_case_id)
def test_compiled_rules_give_the_expected_table(table: Path) -> None:
    loaded, sim = _scenario(table.parent)
    assert loaded.problems == ()
    expected = parse_table(table.read_text())
    actual = sim.matrix(*_port(table))
    assert differences(expected, actual) == []
    # the CLI's table form is the fixture's form
    assert format_table(actual) == "".join(
        line for line in table.read_text().splitlines(keepends=True) if not line.startswith("#")
    )


@pytest.mark.parametrize("table", TABLES, ids=_case_id)
def test_reference_gives_the_expected_table(table: Path) -> None:
    loaded, _ = _scenario(table.parent)
    port, protocol = _port(table)
    pods = loaded.cluster.pods_by_key
    expected = parse_table(table.read_text())
    actual = {
        src: {
            dst: reference.allowed(loaded.cluster, pods[src], pods[dst], port, protocol)
            for dst in row
        }
        for src, row in expected.items()
    }
    assert differences(expected, actual) == []
