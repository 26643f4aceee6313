"""A box cluster driven through `kube-router-ctl cluster` as a user runs it, always torn down.

`leftovers` is the judge of "nothing left behind": namespaces and host links with the
box's prefix, any process whose command line names the box's state directory or its
nodes, and the state directory itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kuberouter.cluster.tor import BGPD
from tests.netns import unique_name
from tests.support import require, require_root, require_tools

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Box:
    name: str
    state_dir: Path
    scratch: Path

    @property
    def prefix(self) -> str:
        return f"{self.name}-"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def argv(self, command: str, *args: str) -> list[str]:
        where = ["--name", self.name, "--state-dir", str(self.state_dir)]
        return [sys.executable, "-m", "kuberouter.ctl", "cluster", command, *where, *args]

    def ctl(
        self, command: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, *args),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )

    def exec_in(
        self, netns: str, *argv: str, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *argv],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """kubectl with the box's kubeconfig, inside the fabric namespace (where the API is)."""
        config = [f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.scratch / 'kube'}"]
        return self.exec_in(f"{self.name}-fabric", "kubectl", *config, *args)


def new_box(scratch: Path, prefix: str = "kt") -> Box:
    """A box to build under `scratch`, named `prefix` + pid + counter; a missing part (root,
    tools, FRR) skips the test, or fails it in CI."""
    require_root()
    require_tools("ip", "sysctl", "vtysh", "kubectl", "ping", "python3")
    require(BGPD.exists(), f"FRR bgpd at {BGPD}")
    return Box(unique_name(prefix)[:10], scratch / "state", scratch)


@contextlib.contextmanager
def torn_down(box: Box) -> Iterator[Box]:
    """`box` for the `with` body; afterwards, also after a failure, `down` must succeed and
    leave nothing behind (a second error then shows beside the first)."""
    try:
        yield box
    finally:
        done = box.ctl("down")
        left = leftovers(box)
        if done.returncode != 0 or left:
            raise AssertionError(f"`down` of {box.name} left {left}:\n{done.stdout}{done.stderr}")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    require_root()
    require_tools("ip", "sysctl", "vtysh", "kubectl", "ping", "python3")
    require(BGPD.exists(), f"FRR bgpd at {BGPD}")
    # "kt" + pid + counter: unique per test run and test, and a valid box name (<= 10).
    made = Box(unique_name("kt")[:10], tmp_path / "state", tmp_path)
    try:
        yield made
    finally:
        made.ctl("down")


def leftovers(box: Box) -> list[str]:
    """Everything of `box` still on the machine (empty when `down` did its job)."""
    found = []
    netns_dir = Path("/run/netns")
    if netns_dir.is_dir():
        found += [f"netns {n.name}" for n in netns_dir.iterdir() if n.name.startswith(box.prefix)]
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    for line in links.splitlines():
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        if name.startswith(box.prefix):
            found.append(f"link {name}")
    found += [f"process {pid}: {cmd}" for pid, cmd in _processes() if _ours(box, cmd)]
    if box.state_dir.exists():
        found.append(f"state dir {box.state_dir}: {sorted(os.listdir(box.state_dir))}")
    return found


def _ours(box: Box, cmdline: str) -> bool:
    return str(box.state_dir) in cmdline or f"--hostname-override={box.prefix}" in cmdline


def _processes() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if raw and state != "Z":
            yield int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace")
