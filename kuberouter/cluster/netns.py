"""Network namespaces and links: thin wrappers over `ip`, plus running Python code inside one.

`call_in` runs a function on a fresh thread that first joins the namespace (setns acts on
the calling thread only); sockets it opens stay in that namespace. That is how `up` and
`status` talk to the API server and the agents, which are reachable only from inside the
box, without touching the host's network and without a subprocess per request.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class CommandError(RuntimeError):
    """A command failed; the message holds the command and its stderr."""


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30) -> str:
    """Run a command, return its stdout; on failure raise CommandError with its stderr."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=timeout)
    if check and done.returncode != 0:
        raise CommandError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def exec_in(netns: str, argv: Sequence[str], *, check: bool = True, timeout: float = 30) -> str:
    return run(["ip", "netns", "exec", netns, *argv], check=check, timeout=timeout)


def batch(netns: str | None, commands: Iterable[str]) -> None:
    """Several `ip` commands in one process (`ip -batch`), inside `netns` when given."""
    where = ["-n", netns] if netns else []
    done = subprocess.run(
        ["ip", *where, "-batch", "-"],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CommandError(f"ip {' '.join(where)} -batch: {done.stderr.strip()}")


def add(name: str) -> None:
    run(["ip", "netns", "add", name])
    batch(name, ["link set lo up"])


def delete(name: str) -> None:
    run(["ip", "netns", "delete", name], check=False)


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def listed(prefix: str) -> list[str]:
    """Namespaces whose name starts with `prefix`."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def pids_in(name: str) -> list[int]:
    """Processes whose network namespace is `name` (what `ip netns pids` reports)."""
    if not exists(name):
        return []
    return [int(word) for word in run(["ip", "netns", "pids", name], check=False).split()]


def root_links(prefix: str) -> list[str]:
    """Links in the host's own namespace whose name starts with `prefix` (never made here)."""
    names = []
    for line in run(["ip", "-o", "link", "show"], check=False).splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            names.append(parts[1].strip().split("@", 1)[0])
    return [n for n in names if n.startswith(prefix)]


def call_in(netns: str, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on a fresh thread inside `netns`; its result or its exception."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            _enter(netns)
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name=f"in-netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _enter(netns: str) -> None:
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), str(NETNS_DIR / netns))
    finally:
        os.close(fd)
