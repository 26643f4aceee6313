"""Fixtures for the interop tests: the FRR image (built once per session when missing), the
standard pybgpd-and-peer setup (`standard`, for the peer the module's `kind` fixture names),
and `make_pair` for tests that need a setup of their own. A failing test's report carries
both daemons' logs."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pybgp.interop.daemons import FRR_IMAGE, PODMAN, REPO, MakePair, Pair, bgp_pair
from tests.support import require, require_root, require_tools

TOOLS = {
    "frr": ("podman", "vtysh"),
    "frr-direct": ("vtysh",),
    "gobgp": ("gobgpd", "gobgp"),
    "bird": ("bird", "birdc"),
}


@pytest.fixture(scope="session")
def frr_image() -> str:
    """localhost/pybgp-frr:bookworm, built by scripts/frr-image.sh when missing (~1 min)."""
    require_root()
    require_tools("podman")
    built = subprocess.run(
        ["bash", str(REPO / "scripts" / "frr-image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, f"scripts/frr-image.sh failed:\n{built.stdout}{built.stderr}"
    exists = subprocess.run([*PODMAN, "image", "exists", FRR_IMAGE], check=False)
    assert exists.returncode == 0, f"{FRR_IMAGE} missing after scripts/frr-image.sh"
    return FRR_IMAGE


def require_peer(kind: str, request: pytest.FixtureRequest) -> None:
    require_root()
    require_tools("ip", "ss", *TOOLS[kind])
    if kind == "frr":
        request.getfixturevalue("frr_image")
    if kind == "frr-direct":
        require(Path("/usr/lib/frr/bgpd").exists(), "/usr/lib/frr/bgpd (Debian frr)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test's report gets the logs of the daemons it used."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        used = getattr(item, "funcargs", {}).values()
        pairs = [p for p in used if isinstance(p, Pair)]
        pairs += [p for maker in used if isinstance(maker, PairMaker) for p in maker.pairs]
        if pairs:
            report.sections.append(("daemon logs", "\n".join(p.diagnostics() for p in pairs)))


@pytest.fixture(scope="module")
def standard(kind: str, request: pytest.FixtureRequest) -> Iterator[Pair]:
    """pybgpd and the peer `kind` names in the standard setup, shared by a module's tests for
    that peer. The module defines `kind` (module-scoped; parametrized, each peer's setup is
    stopped before the next one's starts)."""
    require_peer(kind, request)
    with bgp_pair(kind) as pair:
        yield pair


class PairMaker:
    """`make_pair(kind, **options)`: a setup of the test's own (see daemons.bgp_pair)."""

    def __init__(self, request: pytest.FixtureRequest, stack: contextlib.ExitStack) -> None:
        self.request, self.stack = request, stack
        self.pairs: list[Pair] = []

    def __call__(self, kind: str, **options: Any) -> Pair:
        require_peer(kind, self.request)
        pair = self.stack.enter_context(bgp_pair(kind, **options))
        self.pairs.append(pair)
        return pair


@pytest.fixture
def make_pair(request: pytest.FixtureRequest) -> Iterator[MakePair]:
    """Setups made during the test are stopped and removed after it."""
    with contextlib.ExitStack() as stack:
        yield PairMaker(request, stack)
