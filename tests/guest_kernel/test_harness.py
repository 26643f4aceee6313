"""The guest harness itself (tests/guest.py): outcomes come back from the guest, or why not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import guest, netns
from tests.support import require

REPO = Path(__file__).resolve().parents[2]
HOOKS = "from tests.guest import pytest_collection_modifyitems, pytest_configure, pytest_terminal_summary\n"
INNER_TESTS = """
import os, pathlib, pytest

@pytest.mark.guest
def test_runs_in_the_guest_kernel():
    assert os.environ["PYBGP_IN_GUEST"] == "1"
    assert pathlib.Path("/proc/net/ip_vs").exists()  # ip_vs is loaded

@pytest.mark.guest
def test_fails_in_the_guest():
    assert "ipvs" == "iptables", "inner failure text"

@pytest.mark.guest
def test_skips_in_the_guest():
    pytest.skip("inner skip reason")

def test_runs_on_the_host():
    assert "PYBGP_IN_GUEST" not in os.environ
"""


@pytest.fixture
def session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytest project of its own that uses the guest hooks, with INNER_TESTS in it."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeini("[pytest]\nmarkers =\n    guest: in the guest\n")
    pytester.makeconftest(HOOKS)
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


def test_reports_of_each_phase_make_one_outcome() -> None:
    def report(nodeid: str, when: str, outcome: str, text: str = "") -> str:
        return json.dumps({"nodeid": nodeid, "when": when, "outcome": outcome, "text": text})

    outcomes = guest.merge_reports(
        [
            report("t::ok", "setup", "passed"),
            report("t::ok", "call", "passed"),
            report("t::bad", "call", "failed", "assert 1 == 2"),
            report("t::bad", "teardown", "failed", "cleanup broke"),
            report("t::skip", "setup", "skipped", "no ipvsadm"),
        ]
    )
    assert outcomes == {
        "t::ok": guest.Outcome("passed"),
        "t::bad": guest.Outcome("failed", "[call] assert 1 == 2\n[teardown] cleanup broke"),
        "t::skip": guest.Outcome("skipped", "no ipvsadm"),
    }


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_guest_kernel_fails_in_ci_and_skips_elsewhere(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv(guest.KERNEL_ENV, "/nonexistent/vmlinuz")
    result = session.runpytest_subprocess("-rs")
    if ci:
        result.assert_outcomes(passed=1, failed=3)
        result.stdout.fnmatch_lines(["*required component missing in CI*/nonexistent/vmlinuz*"])
    else:
        result.assert_outcomes(passed=1, skipped=3)
        result.stdout.fnmatch_lines(["*component missing*/nonexistent/vmlinuz*"])


@pytest.mark.privileged
@pytest.mark.slow
def test_outcomes_and_failure_text_come_back_from_one_guest(session: pytest.Pytester) -> None:
    missing = guest.missing_part()
    require(missing is None, f"guest kernel tests need {missing}")
    result = session.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*failed inside the guest kernel:*",
            "*AssertionError: inner failure text*",
            "guest kernel: 3 tests in one boot, * s boot to halt",
            "SKIPPED*test_inner.py:*: in the guest: inner skip reason",
        ]
    )


@pytest.mark.privileged
def test_a_guest_past_its_time_is_stopped_and_its_tests_fail(
    session: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = guest.missing_part()
    require(missing is None, f"guest kernel tests need {missing}")
    monkeypatch.setenv(guest.TIMEOUT_ENV, "3")
    result = session.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*guest stopped after 3 s; PYBGP_GUEST_TIMEOUT sets the limit*"])
    leftovers = netns.run("pgrep", "-f", str(session.path), check=False)
    assert leftovers.stdout == "", "QEMU outlived its time limit"
