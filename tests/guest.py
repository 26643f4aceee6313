"""Tests that need kernel parts the host lacks (IPVS, ipip, fou, dummy) run in a QEMU guest.

Mark such a test `@pytest.mark.guest`. The host's pytest collects it as usual and stands a
`GuestItem` in its place. The first of them to run boots one guest for the whole session
(virtme-ng with Debian's kernel; TCG, because a guest kernel hangs under KVM on this
machine kind, so each boot costs tens of seconds) that loads the modules below and runs
`pytest <every guest node id>` with this worktree's own virtualenv; each GuestItem then
passes, fails (with the inner failure text) or skips as its test did inside.

Inside the guest (PYBGP_IN_GUEST=1) the tests are ordinary tests. The guest sees the host's
file system read-only, except the scratch directory that carries the script in and the
results out; /run is the guest's own tmpfs, so `ip netns add` never touches the host's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import attrs
import pytest

from tests.support import require

IN_GUEST = os.environ.get("PYBGP_IN_GUEST") == "1"
RESULTS_ENV = "PYBGP_GUEST_RESULTS"  # inside: where each test report is appended
KERNEL_ENV = "PYBGP_GUEST_KERNEL"  # outside: a kernel image instead of the newest /boot one
TIMEOUT_ENV = "PYBGP_GUEST_TIMEOUT"  # outside: seconds for boot + every guest test
FORWARDED_ENV = ("CI", "PYTHONPATH")  # what the guest's pytest inherits from ours

IPVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "sh", "dh", "mh", "nq", "sed")
MODULES = (
    "ip_vs",
    *(f"ip_vs_{name}" for name in IPVS_SCHEDULERS),  # one missing fails with ENOENT
    "ipip",
    "fou",
    "dummy",
    "veth",
    "nf_conntrack",
)
_CACHED_TAG = "pybgp-cached"
_CACHED_SHARE = (  # the host's / once more, read-only, for the guest to mount with a cache
    f"-fsdev local,id=cached,path=/,security_model=none,readonly=on,multidevs=remap "
    f"-device virtio-9p-pci,fsdev=cached,mount_tag={_CACHED_TAG}"
)
_LOG_TAIL = 4000  # characters of the guest's console shown when it reported nothing


@attrs.frozen
class Outcome:
    status: str  # "passed" | "failed" | "skipped"
    text: str = ""


class GuestFailure(Exception):
    """The test failed inside the guest; the message is the inner failure text."""


# --- outside: one guest boot for the session's guest tests -------------------------------


def find_kernel() -> Path | None:
    """PYBGP_GUEST_KERNEL, or the newest /boot/vmlinuz-* whose modules are installed."""
    if configured := os.environ.get(KERNEL_ENV):
        return Path(configured)
    images = [
        image
        for image in Path("/boot").glob("vmlinuz-*")
        if Path("/lib/modules", image.name.removeprefix("vmlinuz-"), "modules.dep").exists()
    ]
    return max(images, key=lambda p: [int(n) for n in re.findall(r"\d+", p.name)], default=None)


def _vng() -> str | None:
    beside_python = Path(sys.executable).parent / "vng"  # the virtualenv's own
    return str(beside_python) if beside_python.exists() else shutil.which("vng")


def missing_part() -> str | None:
    """What this machine lacks to boot a guest, or None."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 (Debian package qemu-system-x86)"
    if _vng() is None:
        return "vng (PyPI package virtme-ng, installed by scripts/setup.sh)"
    kernel = find_kernel()
    if kernel is None:
        return "a guest kernel in /boot (Debian package linux-image-amd64)"
    if not kernel.exists():
        return f"the guest kernel {kernel} (from {KERNEL_ENV})"
    if not os.access(kernel, os.R_OK):
        return f"read access to the guest kernel {kernel} (run as root)"
    return None


def _cached_dirs(rootdir: Path) -> list[str]:
    """Directories whose files the guest reads through the cached share (no nesting)."""
    dirs = sorted({"/usr", str(rootdir), sys.prefix})
    return [d for d in dirs if not any(d.startswith(f"{o}/") for o in dirs)]


def guest_script(nodeids: Iterable[str], rootdir: Path, results: Path) -> str:
    """The shell script the guest runs as root: its own /run, modules, then pytest."""
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    env |= {"PYBGP_IN_GUEST": "1", RESULTS_ENV: str(results), "PYTHONDONTWRITEBYTECODE": "1"}
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    pytest_cmd += [f"--rootdir={rootdir}", *nodeids]
    cached = " ".join(shlex.quote(d) for d in _cached_dirs(rootdir))
    return "\n".join(
        [
            "set -e",
            "export PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            '[ "$(stat -f -c %T /run)" = tmpfs ] || mount -t tmpfs guest-run /run',
            # The root share is uncached, and each file look-up costs milliseconds under
            # TCG: Python imports run ~2x faster from a second, read-only cached share.
            f"mkdir /run/{_CACHED_TAG}",
            f"mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=524288 "
            f"{_CACHED_TAG} /run/{_CACHED_TAG}",
            f"for dir in {cached}; do mount --bind /run/{_CACHED_TAG}$dir $dir; done",
            f"for module in {' '.join(MODULES)}; do modprobe $module; done",
            *(f"export {name}={shlex.quote(value)}" for name, value in env.items()),
            f"cd {shlex.quote(str(rootdir))}",
            "exec " + shlex.join(pytest_cmd),
            "",
        ]
    )


def merge_reports(lines: Iterable[str]) -> dict[str, Outcome]:
    """Each test's setup/call/teardown reports (JSON lines) as one outcome."""
    reports: dict[str, list[dict[str, str]]] = {}
    for line in lines:
        report = json.loads(line)
        reports.setdefault(report["nodeid"], []).append(report)
    outcomes = {}
    for nodeid, phases in reports.items():
        failed = [f"[{p['when']}] {p['text']}" for p in phases if p["outcome"] == "failed"]
        skipped = [p["text"] for p in phases if p["outcome"] == "skipped"]
        if failed:
            outcomes[nodeid] = Outcome("failed", "\n".join(failed))
        elif skipped:
            outcomes[nodeid] = Outcome("skipped", skipped[0])
        else:
            outcomes[nodeid] = Outcome("passed")
    return outcomes


class GuestRun:
    """The session's guest tests, run in one boot when the first of them is due."""

    def __init__(self, nodeids: list[str], rootdir: Path) -> None:
        self.nodeids = nodeids
        self.rootdir = rootdir
        self.seconds: float | None = None
        self._outcomes: dict[str, Outcome] | None = None
        self._log = ""

    def outcome(self, nodeid: str) -> Outcome:
        if self._outcomes is None:
            self._outcomes = self._boot()
        if nodeid in self._outcomes:
            return self._outcomes[nodeid]
        return Outcome(
            "failed",
            f"the guest reported nothing for {nodeid}; its console:\n" + self._log[-_LOG_TAIL:],
        )

    def _boot(self) -> dict[str, Outcome]:
        kernel, vng = find_kernel(), _vng()
        assert kernel is not None and vng is not None  # missing_part() was checked
        with tempfile.TemporaryDirectory(prefix="pybgp-guest-") as scratch:
            results, script = Path(scratch, "results.jsonl"), Path(scratch, "run.sh")
            script.write_text(guest_script(self.nodeids, self.rootdir, results))
            cmd = [vng, "--disable-kvm", "--run", str(kernel), "--user", "root"]
            cmd += ["--rwdir", scratch, "--cwd", str(self.rootdir), f"--qemu-opts={_CACHED_SHARE}"]
            cmd += ["--", f"sh {script}"]
            started = time.monotonic()
            self._log = _run_guest(cmd, float(os.environ.get(TIMEOUT_ENV, "1200")))
            self.seconds = time.monotonic() - started
            lines = results.read_text().splitlines() if results.exists() else []
        return merge_reports(lines)


def _run_guest(cmd: list[str], timeout: float) -> str:
    """Run vng (which runs QEMU) to the end; its console output, or why it was stopped."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # vng, its shell and QEMU
        stopped = f"\n(guest stopped after {timeout:.0f} s; {TIMEOUT_ENV} sets the limit)"
        return proc.communicate()[0] + stopped
    finally:
        if proc.poll() is None:  # interrupted (^C): QEMU, in its own session, goes too
            os.killpg(proc.pid, signal.SIGKILL)


class GuestItem(pytest.Item):
    """Stands in on the host for a guest-marked test and reports how it did in the guest."""

    def __init__(self, *, original: pytest.Item, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.original = original
        self.own_markers = list(original.own_markers)
        self.keywords.update(original.keywords)

    def runtest(self) -> None:
        missing = missing_part()
        require(missing is None, f"guest kernel tests need {missing}")
        outcome = self.config.stash[_RUN].outcome(self.nodeid)
        if outcome.status == "skipped":
            reason = outcome.text.removeprefix("Skipped: ")
            raise pytest.skip.Exception(f"in the guest: {reason}", _use_item_location=True)
        if outcome.status == "failed":
            raise GuestFailure(outcome.text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, GuestFailure):
            return f"failed inside the guest kernel:\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int | None, str]:
        return self.original.reportinfo()


_RUN = pytest.StashKey[GuestRun]()


# --- inside: each report appended to the results file the host reads ---------------------


class Recorder:
    """Appends every setup/call/teardown report to the results file as one JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and isinstance(report.longrepr, tuple):
            text = report.longrepr[2]  # the skip reason
        else:
            text = "\n".join([report.longreprtext, *(f"--- {t}\n{c}" for t, c in report.sections)])
        entry = {
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "text": text,
        }
        with self.path.open("a") as results:
            results.write(json.dumps(entry) + "\n")


# --- the hooks (imported by tests/conftest.py) --------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if IN_GUEST and RESULTS_ENV in os.environ:
        config.pluginmanager.register(Recorder(Path(os.environ[RESULTS_ENV])), "guest-recorder")


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: boot only for what will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    marked = [item for item in items if item.get_closest_marker("guest")]
    config.stash[_RUN] = GuestRun([item.nodeid for item in marked], config.rootpath)
    standins = {
        id(item): GuestItem.from_parent(item.parent, name=item.name, original=item)  # type: ignore[arg-type]
        for item in marked
    }
    items[:] = [standins.get(id(item), item) for item in items]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    run = config.stash.get(_RUN, None)
    if run is not None and run.seconds is not None:
        terminalreporter.write_line(
            f"guest kernel: {len(run.nodeids)} tests in one boot, {run.seconds:.1f} s boot to halt"
        )
