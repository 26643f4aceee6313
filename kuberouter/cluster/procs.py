"""The box's long-running processes: started detached inside a namespace, stopped by pid.

Each process gets its own session (so a Ctrl-C at `up` does not reach it and it outlives
`up`), a log file and a pid file in the state directory, and an entry in the state file.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from kuberouter.cluster.state import Process, State

STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL


def slug(role: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", role)


def start(
    state: State,
    role: str,
    netns: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    enter: bool = True,
) -> Process:
    """Start `argv` inside `netns`, detached, logging to <state>/logs/<role>.log; `env` is
    added to this process's environment. With `enter` False the command joins `netns`
    itself (podman run --network ns:...)."""
    state.log_dir.mkdir(exist_ok=True)
    state.pid_dir.mkdir(exist_ok=True)
    log = state.log_dir / f"{slug(role)}.log"
    # ip execs the command: same pid
    command = ["ip", "netns", "exec", netns, *argv] if enter else list(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    with open(log, "ab") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=state.path,
        )  # fmt: skip
    (state.pid_dir / f"{slug(role)}.pid").write_text(f"{child.pid}\n")
    process = Process(role=role, pid=child.pid, netns=netns, log=str(log), argv=list(argv))
    state.record_process(process)
    return process


def alive(pid: int) -> bool:
    """Running (a zombie counts as gone; one that is our own child is reaped here)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def pid_files(state_dir: Path) -> list[int]:
    pids = []
    for path in sorted((state_dir / "pids").glob("*.pid")) if state_dir.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            pids.append(int(path.read_text().split()[0]))
    return pids


def stop(pids: Iterable[int], grace: float = STOP_GRACE) -> list[int]:
    """SIGTERM, then SIGKILL what is still there after `grace`; returns the pids signalled."""
    targets = sorted({pid for pid in pids if pid > 1 and pid != os.getpid() and alive(pid)})
    _signal(targets, signal.SIGTERM)
    if _wait_gone(targets, grace):
        return targets
    _signal(targets, signal.SIGKILL)
    _wait_gone(targets, 2.0)
    return targets


def _signal(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
