"""What the offline commands share: reading YAML input files, and the error for input
they cannot use (main() prints it as one line and exits 2)."""

from __future__ import annotations

import sys
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]  # stubs are not installed


class InputError(Exception):
    """Input we cannot work with; main() prints it as one line and exits 2."""


def read_yaml(path: str) -> list[Any]:
    """Every document of a YAML file ('-': stdin)."""
    try:
        if path == "-":
            return list(yaml.safe_load_all(sys.stdin))
        with open(path, encoding="utf-8") as stream:
            return list(yaml.safe_load_all(stream))
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InputError(f"{path}: invalid YAML{where}: {problem}") from None


def read_documents(paths: list[str]) -> list[Any]:
    documents: list[Any] = []
    for path in paths:
        documents += read_yaml(path)
    return documents
