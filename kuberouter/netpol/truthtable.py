"""Reachability matrices as text, in the style of the Kubernetes e2e truth tables.

    -    x/a  x/b
    x/a  .    X
    x/b  .    .

Rows are sources, columns destinations; `.` allowed, `X` blocked; the first row is the
header. Lines starting with `#` are comments (fixtures use them for provenance).
"""

from __future__ import annotations

from collections.abc import Mapping

Matrix = Mapping[str, Mapping[str, bool]]


def format_table(matrix: Matrix) -> str:
    sources = list(matrix)
    targets = list(next(iter(matrix.values()), {}))
    width = max([len(name) for name in (*sources, *targets)] + [1]) + 2
    lines = ["".join(cell.ljust(width) for cell in ["-", *targets]).rstrip()]
    for src in sources:
        marks = ["." if matrix[src][dst] else "X" for dst in targets]
        lines.append("".join(cell.ljust(width) for cell in [src, *marks]).rstrip())
    return "\n".join(lines) + "\n"


def parse_table(text: str) -> dict[str, dict[str, bool]]:
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not rows or rows[0][0] != "-":
        raise ValueError("a truth table starts with a header row beginning with '-'")
    targets = rows[0][1:]
    matrix: dict[str, dict[str, bool]] = {}
    for row in rows[1:]:
        if len(row) != len(targets) + 1 or any(mark not in ".X" for mark in row[1:]):
            raise ValueError(f"bad truth table row: {' '.join(row)}")
        matrix[row[0]] = {dst: mark == "." for dst, mark in zip(targets, row[1:], strict=True)}
    return matrix


def differences(expected: Matrix, actual: Matrix) -> list[str]:
    """Human-readable cells where two matrices disagree (missing cells count)."""
    found = []
    for src, row in expected.items():
        for dst, want in row.items():
            got = actual.get(src, {}).get(dst)
            if got != want:
                found.append(f"{src} -> {dst}: expected {_word(want)}, got {_word(got)}")
    return found


def _word(value: bool | None) -> str:
    return "missing" if value is None else ("allowed" if value else "blocked")
