"""The ingest benchmark's lab (bench/bench_ingest.py): network namespaces joined by veths, the
sender processes, and what is read about processes and the machine from /proc.

The daemon under test runs in one namespace (`rx`), the senders in another (`tx`), each sender
a separate process with one session and its own AS and address, as separate BGP speakers
would be; with --relay a third namespace holds the FRR that receives from the relay.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DAEMON_ADDR = "10.0.0.1"
RELAY_ADDR, FRR_SINK_ADDR = "10.0.1.1", "10.0.1.2"
# Outside every AS number in the streams (first AS, 64512..65511, 100000 + n): else AS-loop
# detection would drop the UPDATEs whose path happens to hold the daemon's AS.
DAEMON_ASN, FRR_SINK_ASN = 64000, 64001
SINGLE_ASN = 65001


def now() -> float:
    """CLOCK_MONOTONIC, the clock bench/sender.py stamps its events with."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@attrs.frozen
class Peer:
    address: str
    asn: int


@attrs.frozen
class Lab:
    rx: str  # the daemon under test
    tx: str  # the senders
    sink: str | None  # FRR receiving from the relay (--relay runs only)
    peers: tuple[Peer, ...]


def sender_peers(count: int) -> tuple[Peer, ...]:
    if count == 1:
        return (Peer("10.0.0.2", SINGLE_ASN),)
    return tuple(Peer(f"10.0.0.{2 + i}", 65101 + i) for i in range(count))


@contextlib.contextmanager
def lab(peers: tuple[Peer, ...], with_sink: bool = False) -> Iterator[Lab]:
    from tests.netns import netns, run, veth_pair

    with contextlib.ExitStack() as stack:
        rx, tx = stack.enter_context(netns("bir")), stack.enter_context(netns("bit"))
        first = f"{peers[0].address}/24"
        _, tx_dev = stack.enter_context(veth_pair(rx, f"{DAEMON_ADDR}/24", tx, first))
        for peer in peers[1:]:
            run("ip", "-n", tx, "addr", "add", f"{peer.address}/24", "dev", tx_dev)
        sink = None
        if with_sink:
            sink = stack.enter_context(netns("bis"))
            stack.enter_context(veth_pair(rx, f"{RELAY_ADDR}/24", sink, f"{FRR_SINK_ADDR}/24"))
        yield Lab(rx=rx, tx=tx, sink=sink, peers=peers)


def netns_cmd(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def cli(ns: str, *argv: str, timeout: float = 20.0) -> str:
    cmd = netns_cmd(ns, *argv)
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    return done.stdout


# -- processes -------------------------------------------------------------------------------


def spawn(
    ns: str, argv: list[str], cwd: Path, env: dict[str, str] | None, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """A process in namespace `ns`, in its own process group (so `stop` ends its children)."""
    return subprocess.Popen(
        netns_cmd(ns, *argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the process group we started, SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left behind (e.g. ExaBGP's process)


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total else 0.0


def wait_quiet(limit: float, threshold: float = 0.3) -> tuple[float, float]:
    """Wait (at most `limit` seconds) until the machine is quiet: fewer than `threshold`
    cores busy over one second (other people's tests share this machine). Returns
    (seconds waited, cores busy in the last second)."""
    start = now()
    while True:
        before = cpu_jiffies()
        time.sleep(1.0)
        busy = busy_cores(before, cpu_jiffies())
        if busy < threshold or now() - start >= limit:
            return now() - start, busy


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, key: str) -> int | None:
    """A /proc/PID/status value in KiB (VmHWM, VmRSS), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# -- the senders -----------------------------------------------------------------------------


class Senders:
    """One bench/sender.py process per session in the sender namespace; their JSON events
    arrive on one queue. Each connects and waits: `start` makes them all write at once."""

    def __init__(self, ns: str, peer: str, sessions: list[str], log: IO[bytes]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.procs: list[subprocess.Popen[bytes]] = []
        for session in sessions:
            args = [sys.executable, "-m", "bench.sender", "--peer", peer, "--session", session]
            proc = subprocess.Popen(
                netns_cmd(ns, *args),
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
            self.procs.append(proc)
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.events.put(json.loads(line))
        self.events.put({"event": "exit", "t": now(), "pid": proc.pid})

    def _next_event(self, deadline: float) -> dict[str, Any] | None:
        try:
            return self.events.get(timeout=max(0.0, deadline - now()))
        except queue.Empty:
            return None

    def _gather(self, kind: str, deadline: float) -> tuple[list[float], str]:
        """The stamps of one `kind` event from every sender; else an error."""
        stamps: list[float] = []
        while len(stamps) < len(self.procs):
            event = self._next_event(deadline)
            if event is None:
                return stamps, f"timeout waiting for the senders' {kind}"
            if event["event"] == kind:
                stamps.append(event["t"])
            elif event["event"] in ("error", "closed", "exit"):
                return stamps, f"sender: {event}"
        return stamps, ""

    def start(self, deadline: float) -> tuple[float | None, str]:
        """Once every session is Established, all senders write: the earliest first-UPDATE
        stamp (the clock's zero), or None and an error."""
        _, error = self._gather("established", deadline)
        if error:
            return None, error
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        stamps, error = self._gather("first_update", deadline)
        return (min(stamps), "") if not error else (None, error)

    def trouble(self) -> str:
        """A session that closed or failed since the last look, if any."""
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return ""
            if event["event"] in ("error", "closed", "exit"):
                return f"sender: {event}"

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                stop(proc, grace=2)
