"""Developer sessions: `nox -s lint typecheck tests bench`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "pybgp", "kuberouter", "tests", "bench", "fixtures")
    session.run("ruff", "format", "--check", "pybgp")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]", "-e", "./kuberouter")
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("python", "-m", "bench.bench_decode", *session.posargs)
