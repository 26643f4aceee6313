"""Ingest speed and memory of BGP daemons (issue 3 §7), pybgpd against FRR, BIRD, GoBGP, ExaBGP.

A fast sender (bench/sender.py, its own network namespace) connects over a veth to the daemon
(in a second namespace) and writes a precomputed stream of UPDATEs (bench/gen.py: IPv4 /24s,
10 per UPDATE, distinct AS paths starting with the sender's AS) as fast as TCP allows. The time
reported is from the sender's first UPDATE until the first poll of the daemon's own counters
that shows every prefix accepted; nothing is interpolated. Counters are polled sparingly
(every CLI call costs the daemon CPU): first after --poll-first seconds, then at doubling
intervals capped at --poll-max. Each result also gives the previous (incomplete) poll, so the
true time lies between the two. Peak RSS is the daemon's VmHWM, read before it is stopped.

    python -m bench.bench_ingest [--prefixes 1000000] [--daemons pybgpd,frr,bird,gobgp,exabgp]
                                 [--peers 1|20] [--relay pybgpd,frr|none] [--runs N]
                                 [--poll-max 1.0] [--quiet-wait 180] [--profile DIR]

Other people's tests may share the machine: before each daemon the benchmark waits (at most
--quiet-wait seconds) for an idle machine, reports the daemon's own CPU time and how busy the
rest of the machine was meanwhile, and with --runs N keeps the fastest of N runs (all shown).
--profile DIR also records pybgpd with py-spy (--gil, raw stacks) and prints its top functions;
those runs are slowed by the sampling, so time them separately.

--peers 20: twenty senders, each the same --peer-prefixes (50,000) prefixes with its own AS,
1,000,000 paths in all; the time runs until the daemon holds every path from every peer.
Every daemon advertises its best paths to the other nineteen peers as eBGP speakers do by
default (BIRD: `export all`); the senders read and discard them.
--relay: the time to SEND 1,000,000 prefixes to FRR: the sender feeds the relay (pybgpd or FRR
bgpd) and the relay advertises them to a second FRR bgpd in a third namespace; the clock runs
from the sender's first UPDATE until that FRR reports all prefixes received from the relay.

Needs root, ip netns, Debian's frr, bird2 and gobgpd, and ExaBGP from PyPI in its own
virtualenv (--exabgp, default /tmp/exabgp-venv/bin/exabgp).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
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


# -- the lab: namespaces, veths, addresses ---------------------------------------------------


@attrs.frozen
class Peer:
    address: str
    asn: int


@attrs.frozen
class Lab:
    rx: str  # the daemon under test
    tx: str  # the sender(s)
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


# -- the daemons -----------------------------------------------------------------------------


class Daemon:
    """One daemon under test: its config, its command line, and how to read its counters."""

    name = ""
    note = ""

    def __init__(self, workdir: Path, ns: str, exabgp: str) -> None:
        self.dir, self.ns, self.exabgp = workdir, ns, exabgp

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        """Prefixes accepted from `peers`, summed, as the daemon itself reports them."""
        raise NotImplementedError

    def established(self, peer: Peer) -> bool:
        raise NotImplementedError


class PyBGPd(Daemon):
    name = "pybgpd"
    note = "counters read over the control socket (the request `pybgp -j neighbor` sends)"

    @property
    def socket(self) -> str:
        return str(self.dir / "pybgpd.sock")

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        lines = [
            "[global]",
            f"asn = {DAEMON_ASN}",
            f'router_id = "{DAEMON_ADDR}"',
            f'listen = ["{DAEMON_ADDR}"]',
        ]
        for peer in peers:
            lines += _pybgpd_neighbor(peer, passive=True)
        if sink is not None:
            lines += _pybgpd_neighbor(sink, passive=False)
        lines += ["[policy.attach]", 'default_export = "accept"']  # relay everything
        (self.dir / "pybgpd.toml").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        return [
            str(VENV_BIN / "pybgpd"),
            "-c",
            str(self.dir / "pybgpd.toml"),
            "--socket",
            self.socket,
        ]

    def _neighbors(self) -> dict[str, dict[str, Any]]:
        from pybgp.control import request

        return {n["address"]: n for n in request(self.socket, "neighbors", timeout=10.0)}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        table = self._neighbors()
        return sum(table[p.address]["families"]["ipv4-unicast"]["accepted"] for p in peers)

    def established(self, peer: Peer) -> bool:
        with contextlib.suppress(Exception):
            return str(self._neighbors()[peer.address]["state"]).lower() == "established"
        return False


def _pybgpd_neighbor(peer: Peer, passive: bool) -> list[str]:
    return [
        "[[neighbors]]",
        f'address = "{peer.address}"',
        f"peer_asn = {peer.asn}",
        f"passive = {str(passive).lower()}",
        'families = ["ipv4-unicast"]',
    ]


class FRR(Daemon):
    name = "frr"
    note = "FRR 8.4 bgpd run directly (no zebra, no watchfrr, -Z: no FIB)"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        self.write_config(DAEMON_ADDR, DAEMON_ASN, peers, sink)

    def write_config(
        self, router_id: str, asn: int, peers: tuple[Peer, ...], active: Peer | None
    ) -> None:
        lines = [
            "frr defaults traditional",
            "hostname bench",
            "log stdout warnings",
            f"router bgp {asn}",
            f" bgp router-id {router_id}",
            " no bgp ebgp-requires-policy",
            " no bgp network import-check",
        ]
        lines += [f" neighbor {p.address} remote-as {p.asn}" for p in peers]
        lines += [f" neighbor {p.address} passive" for p in peers]
        if active is not None:
            lines.append(f" neighbor {active.address} remote-as {active.asn}")
        lines.append(" address-family ipv4 unicast")
        lines += [f"  neighbor {p.address} activate" for p in peers]
        if active is not None:
            lines.append(f"  neighbor {active.address} activate")
        lines += [" exit-address-family", ""]
        (self.dir / "bgpd.conf").write_text("\n".join(lines))

    def listen_addr(self) -> str:
        return DAEMON_ADDR

    def argv(self) -> list[str]:
        return [
            "/usr/lib/frr/bgpd",
            *("-f", str(self.dir / "bgpd.conf"), "-i", str(self.dir / "bgpd.pid")),
            *("-Z", "-S", "-u", "root", "-g", "root", "--vty_socket", str(self.dir)),
            *("-l", self.listen_addr()),
        ]

    def summary(self) -> dict[str, Any]:
        out = cli(
            self.ns,
            "vtysh",
            *("--vty_socket", str(self.dir), "-d", "bgpd"),
            *("-c", "show bgp ipv4 unicast summary json"),
        )
        try:
            return dict(json.loads(out).get("peers", {}))
        except json.JSONDecodeError:
            return {}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        table = self.summary()
        return sum(int(table.get(p.address, {}).get("pfxRcd", 0)) for p in peers)

    def established(self, peer: Peer) -> bool:
        return bool(self.summary().get(peer.address, {}).get("state") == "Established")


class FRRSink(FRR):
    """The FRR bgpd that receives from the relay (--relay runs), in its own namespace."""

    name = "frr-sink"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        self.write_config(FRR_SINK_ADDR, FRR_SINK_ASN, peers, None)

    def listen_addr(self) -> str:
        return FRR_SINK_ADDR


class FRRRelay(FRR):
    """FRR bgpd as the relay: the sender passive, the sink FRR connected actively."""


class Bird(Daemon):
    name = "bird"
    note = "BIRD 2.0 (no kernel protocol: nothing installed)"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        lines = [f"router id {DAEMON_ADDR};", "protocol device {}"]
        for index, peer in enumerate(peers):
            lines += [
                f"protocol bgp p{index} {{",
                f"  local {DAEMON_ADDR} as {DAEMON_ASN};",
                f"  neighbor {peer.address} as {peer.asn};",
                "  passive on;",
                "  error wait time 1, 5;",
                "  ipv4 { import all; export all; };",
                "}",
            ]
        (self.dir / "bird.conf").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        ctl = str(self.dir / "bird.ctl")
        return ["bird", "-f", "-c", str(self.dir / "bird.conf"), "-s", ctl]

    def _protocols(self) -> dict[str, str]:
        """BGP protocol name -> its `show protocols all` block."""
        out = cli(self.ns, "birdc", "-s", str(self.dir / "bird.ctl"), "show", "protocols", "all")
        blocks = re.split(r"\n(?=\S)", out)
        return {b.split()[0]: b for b in blocks if re.match(r"^p\d+\s+BGP", b)}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        blocks = self._protocols()
        total = 0
        for index, _peer in enumerate(peers):
            found = re.search(r"Routes:\s+(\d+) imported", blocks.get(f"p{index}", ""))
            total += int(found.group(1)) if found else 0
        return total

    def established(self, peer: Peer) -> bool:
        return "Established" in self._protocols().get("p0", "")


class GoBGP(Daemon):
    name = "gobgp"
    note = "GoBGP 3.10 gobgpd (no zebra)"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        lines = [
            "[global.config]",
            f"  as = {DAEMON_ASN}",
            f'  router-id = "{DAEMON_ADDR}"',
            f'  local-address-list = ["{DAEMON_ADDR}"]',
        ]
        for peer in peers:
            lines += [
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{peer.address}"',
                f"    peer-as = {peer.asn}",
                "  [neighbors.transport.config]",
                "    passive-mode = true",
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                '      afi-safi-name = "ipv4-unicast"',
            ]
        (self.dir / "gobgp.toml").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        config = str(self.dir / "gobgp.toml")
        return ["gobgpd", "-f", config, "--api-hosts", "127.0.0.1:50051", "-l", "warn"]

    def _neighbors(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(cli(self.ns, "gobgp", "neighbor", "-j"))
        except json.JSONDecodeError:
            return {}
        return {n["state"]["neighbor_address"]: n for n in data}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        table, total = self._neighbors(), 0
        for peer in peers:
            for family in table.get(peer.address, {}).get("afi_safis", []):
                total += int(family.get("state", {}).get("accepted", 0))
        return total

    def established(self, peer: Peer) -> bool:
        state = self._neighbors().get(peer.address, {}).get("state", {})
        return state.get("session_state") in (6, "established", "ESTABLISHED")


class ExaBGP(Daemon):
    name = "exabgp"
    note = "ExaBGP from PyPI; count from a `process` reading its JSON stream (received updates)"

    @property
    def count_file(self) -> Path:
        return self.dir / "exabgp.count"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        counter = " ".join(
            [
                "/usr/bin/env",
                f"PYTHONPATH={REPO}",
                sys.executable,
                "-m",
                "bench.bench_ingest",
                "--exabgp-counter",
                str(self.count_file),
            ]
        )
        lines = ["process counter {", f"  run {counter};", "  encoder json;", "}"]
        for peer in peers:
            lines += [
                f"neighbor {peer.address} {{",
                f"  router-id {DAEMON_ADDR};",
                f"  local-address {DAEMON_ADDR};",
                f"  local-as {DAEMON_ASN};",
                f"  peer-as {peer.asn};",
                "  passive true;",
                "  family { ipv4 unicast; }",
                "  capability { asn4 enable; }",
                "  api { processes [ counter ]; receive { parsed; update; } }",
                "}",
            ]
        (self.dir / "exabgp.conf").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        return [self.exabgp, str(self.dir / "exabgp.conf")]

    def env(self) -> dict[str, str]:
        return os.environ | {
            "exabgp_tcp_bind": DAEMON_ADDR,
            "exabgp_tcp_port": "179",
            "exabgp_daemon_user": "root",
            "exabgp_daemon_drop": "false",
            "exabgp_api_compact": "false",
            "exabgp_log_level": "WARNING",
            "exabgp_cli_enable": "false",
        }

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        try:
            return int(self.count_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def established(self, peer: Peer) -> bool:
        return False


DAEMONS: dict[str, type[Daemon]] = {
    "pybgpd": PyBGPd,
    "frr": FRR,
    "bird": Bird,
    "gobgp": GoBGP,
    "exabgp": ExaBGP,
}
RELAYS: dict[str, type[Daemon]] = {"pybgpd": PyBGPd, "frr": FRRRelay}


def exabgp_counter(out: Path) -> None:
    """Run by ExaBGP as its `process`: count the prefixes announced in its JSON stream; a
    thread writes the running count to `out` every 0.1 s (so the counter stays cheap)."""
    count = [0]
    done = threading.Event()

    def flush() -> None:
        written = -1
        while not done.wait(0.1):
            if count[0] != written:
                written = count[0]
                _write_atomic(out, written)

    threading.Thread(target=flush, daemon=True).start()
    for line in sys.stdin:
        count[0] += line.split('"withdraw"')[0].count('"nlri"')
    done.set()
    _write_atomic(out, count[0])


def _write_atomic(path: Path, count: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(count))
    os.replace(tmp, path)


# -- processes -------------------------------------------------------------------------------


def start(daemon: Daemon, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        netns_cmd(daemon.ns, *daemon.argv()),
        cwd=daemon.dir,
        env=daemon.env(),
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


class Sender:
    """bench/sender.py in the sender namespace; its JSON events arrive on a queue."""

    def __init__(self, ns: str, peer: str, sessions: list[str], log: IO[bytes]) -> None:
        args = [sys.executable, "-m", "bench.sender", "--peer", peer]
        for session in sessions:
            args += ["--session", session]
        self.proc = subprocess.Popen(
            netns_cmd(ns, *args),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                self.events.put(json.loads(line))
        self.events.put({"event": "exit", "t": now()})

    def next_event(self, deadline: float) -> dict[str, Any] | None:
        try:
            return self.events.get(timeout=max(0.0, deadline - now()))
        except queue.Empty:
            return None

    def first_updates(self, count: int, deadline: float) -> tuple[float | None, str]:
        """The earliest first-UPDATE stamp once all `count` sessions started; else an error."""
        stamps: list[float] = []
        while len(stamps) < count:
            event = self.next_event(deadline)
            if event is None:
                return None, "timeout waiting for the sessions"
            if event["event"] == "first_update":
                stamps.append(event["t"])
            elif event["event"] in ("error", "closed", "exit"):
                return None, f"sender: {event}"
        return min(stamps), ""

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
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            stop(self.proc, grace=2)


# -- one measurement -------------------------------------------------------------------------


@attrs.define
class Result:
    daemon: str
    scenario: str
    peers: int
    expected: int  # paths the daemon must hold (prefixes x peers)
    seconds: float | None = None  # first poll that saw everything, minus the first UPDATE
    previous_poll: float | None = None  # start of the poll before it: previous < true <= seconds
    polls: list[tuple[float, float, int]] = attrs.Factory(list)  # (start, end, count) each
    last_count: int = 0
    peak_rss_mib: float | None = None
    status: str = "ok"
    note: str = ""
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    idle_wait: float = 0.0  # seconds spent waiting for a quiet machine before starting
    busy_before: float = 0.0  # cores busy (all processes) just before the daemon started
    busy_during: float | None = None  # cores busy (all processes) while it ingested
    daemon_cpu: float | None = None  # CPU seconds the daemon used while it ingested
    all_seconds: list[float | None] = attrs.Factory(list)  # every run's time (--runs)

    @property
    def others_busy(self) -> float | None:
        """Cores busy with anything but the daemon while it ingested (the sender included)."""
        if self.busy_during is None or not self.daemon_cpu or not self.seconds:
            return None
        return max(0.0, self.busy_during - self.daemon_cpu / self.seconds)

    @property
    def poll_lag(self) -> float | None:
        return max((end - start for start, end, _ in self.polls), default=None)

    @property
    def rate(self) -> float | None:
        return self.expected / self.seconds if self.seconds else None


@attrs.frozen
class Polling:
    first: float
    cap: float
    deadline: float  # seconds after the first UPDATE


@attrs.frozen
class Poll:
    start: float  # seconds after the first UPDATE
    end: float
    count: int


def poll_until(
    count: Callable[[], int], expected: int, t0: float, polling: Polling, sender: Sender
) -> tuple[list[Poll], str]:
    """Poll `count` at t0 + first, then at doubling intervals up to `cap`, until it reaches
    `expected`; a slow answer (a busy daemon) still leaves half an interval before the next."""
    interval, polls = polling.first, list[Poll]()
    next_at = t0 + interval
    while True:
        time.sleep(max(0.0, next_at - now()))
        started, last = now() - t0, -1
        with contextlib.suppress(Exception):
            last = count()
        polls.append(Poll(started, now() - t0, last))
        if last >= expected:
            return polls, "ok"
        trouble = sender.trouble()
        if trouble or polls[-1].end > polling.deadline:
            return polls, trouble or f"timeout after {polling.deadline:.0f} s"
        interval = min(interval * 2, polling.cap)
        next_at = max(next_at + interval, now() + interval / 2)


def record_polls(result: Result, polls: list[Poll]) -> None:
    """The first poll that saw every path ended at `seconds`; the one before it started at
    `previous_poll`, and its answer was still short: the true time lies between the two."""
    result.polls = [(round(p.start, 3), round(p.end, 3), p.count) for p in polls]
    result.last_count = polls[-1].count
    if result.status == "ok":
        result.seconds = polls[-1].end
    if result.status == "ok" and len(polls) > 1:
        result.previous_poll = polls[-2].start
    elif result.status == "ok":
        result.previous_poll = 0.0


def wait_established(daemon: Daemon, peer: Peer, timeout: float) -> bool:
    deadline = now() + timeout
    while now() < deadline:
        if daemon.established(peer):
            return True
        time.sleep(0.5)
    return False


@attrs.frozen
class Plan:
    scenario: str
    peers: tuple[Peer, ...]
    prefixes: int  # per peer
    streams: dict[str, Path]  # peer address -> stream file
    polling: Polling
    workdir: Path
    exabgp: str
    profile: Path | None
    quiet_wait: float


def new_result(name: str, plan: Plan, expected: int) -> Result:
    waited, busy = wait_quiet(plan.quiet_wait)
    return Result(
        name,
        plan.scenario,
        len(plan.peers),
        expected,
        load_before=os.getloadavg(),
        idle_wait=round(waited, 1),
        busy_before=round(busy, 2),
    )


def measure(name: str, plan: Plan) -> Result:
    """Start daemon `name` in a fresh lab, feed it, time it, stop it."""
    expected = plan.prefixes * len(plan.peers)
    result = new_result(name, plan, expected)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=plan.workdir))
    with lab(plan.peers) as net:
        daemon = DAEMONS[name](workdir, net.rx, plan.exabgp)
        result.note = daemon.note
        daemon.configure(plan.peers, None)
        with (workdir / "daemon.log").open("wb") as log:
            proc = start(daemon, log)
            try:
                run_sender(daemon, proc, net, plan, result, plan.peers, log)
            finally:
                stop(proc)
    return result


def run_sender(
    watched: Daemon,
    proc: subprocess.Popen[bytes],
    net: Lab,
    plan: Plan,
    result: Result,
    counted: tuple[Peer, ...],
    log: IO[bytes],
) -> None:
    """Feed the daemon from the sender, poll `watched` until it holds every path from the
    `counted` peers, record the daemon's peak RSS, stop the sender."""
    sessions = [f"{p.address}:{p.asn}:{plan.streams[p.address]}" for p in net.peers]
    profiler = start_profiler(proc.pid, plan, result.daemon) if plan.profile else None
    sender = Sender(net.tx, DAEMON_ADDR, sessions, log)
    try:
        t0, error = sender.first_updates(len(net.peers), now() + 60)
        if t0 is None:
            result.status = error
            return
        jiffies, cpu = cpu_jiffies(), cpu_seconds(proc.pid)
        polls, result.status = poll_until(
            lambda: watched.accepted(counted), result.expected, t0, plan.polling, sender
        )
        record_polls(result, polls)
        result.busy_during = busy_cores(jiffies, cpu_jiffies())
        cpu_end = cpu_seconds(proc.pid)
        if cpu is not None and cpu_end is not None:
            result.daemon_cpu = cpu_end - cpu
        hwm = proc_status(proc.pid, "VmHWM")
        result.peak_rss_mib = hwm / 1024 if hwm is not None else None
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        sender.close()


def measure_relay(name: str, plan: Plan) -> Result:
    """Sender -> relay (`name`) -> FRR: the time until FRR holds every prefix from the relay."""
    result = new_result(name, plan, plan.prefixes)
    relay_peer, sink_peer = Peer(RELAY_ADDR, DAEMON_ASN), Peer(FRR_SINK_ADDR, FRR_SINK_ASN)
    with lab(plan.peers, with_sink=True) as net:
        assert net.sink is not None
        sink = FRRSink(Path(tempfile.mkdtemp(prefix="sink-", dir=plan.workdir)), net.sink, "")
        relay = RELAYS[name](
            Path(tempfile.mkdtemp(prefix=f"relay-{name}-", dir=plan.workdir)), net.rx, ""
        )
        result.note = f"{relay.note}; the sink is FRR bgpd run directly"
        sink.configure((relay_peer,), None)
        relay.configure(plan.peers, sink_peer)
        with (
            (sink.dir / "daemon.log").open("wb") as sink_log,
            (relay.dir / "daemon.log").open("wb") as log,
        ):
            sink_proc, proc = start(sink, sink_log), start(relay, log)
            try:
                if not wait_established(sink, relay_peer, 60):
                    result.status = "relay-FRR session did not come up in 60 s"
                    return result
                watched = _RelayWatch(sink, relay_peer)
                run_sender(watched, proc, net, plan, result, (relay_peer,), log)
            finally:
                stop(proc)
                stop(sink_proc)
    return result


class _RelayWatch(Daemon):
    """Counts what the sink FRR received from the relay."""

    def __init__(self, sink: FRR, relay: Peer) -> None:
        self.sink, self.relay = sink, relay

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        return self.sink.accepted((self.relay,))


# -- profiling (pybgpd only: a separate, untimed run) -----------------------------------------


def start_profiler(pid: int, plan: Plan, name: str) -> subprocess.Popen[bytes] | None:
    if name != "pybgpd" or plan.profile is None:
        return None
    plan.profile.mkdir(parents=True, exist_ok=True)
    stem = plan.profile / f"pybgpd-{plan.scenario.replace(' ', '-')}-{len(plan.peers)}"
    time.sleep(1.5)  # let pybgpd finish starting, so py-spy finds the interpreter
    return subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--gil",
            "--format",
            "raw",
            "-o",
            f"{stem}.txt",
            "--pid",
            str(pid),
            "--rate",
            "200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_top(path: Path, count: int = 15) -> str:
    """The functions with most samples in a py-spy raw (collapsed stacks) file: own samples
    (the frame on top) and total samples (anywhere on the stack), line numbers dropped."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, weight = line.rpartition(" ")
        if not stack or not weight.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        samples += int(weight)
        own[frames[-1]] = own.get(frames[-1], 0) + int(weight)
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + int(weight)
    lines = [f"{path.name}: {samples} samples holding the GIL", "  own%  total%  function"]
    for frame, hits in sorted(own.items(), key=lambda kv: -kv[1])[:count]:
        lines.append(f"{100 * hits / samples:6.1f} {100 * total[frame] / samples:7.1f}  {frame}")
    return "\n".join(lines)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(30)
    except subprocess.TimeoutExpired:
        profiler.kill()


# -- output ----------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = [
    "daemon",
    "scenario",
    "paths",
    "seconds",
    "prev poll",
    "poll lag",
    "paths/s",
    "peak RSS MiB",
    "daemon CPU s",
    "others busy",
    "runs",
    "status",
]


def table(results: list[Result], polling: Polling) -> str:
    rows = [COLUMNS]
    for r in results:
        rows.append(
            [
                r.daemon,
                r.scenario,
                f"{r.expected:,}",
                fmt(r.seconds, ".2f"),
                fmt(r.previous_poll, ".2f"),
                fmt(r.poll_lag, ".2f"),
                fmt(r.rate, ",.0f"),
                fmt(r.peak_rss_mib, ".0f"),
                fmt(r.daemon_cpu, ".2f"),
                fmt(r.others_busy, ".2f"),
                "/".join(fmt(x, ".2f") for x in r.all_seconds) or fmt(r.seconds, ".2f"),
                r.status if r.status == "ok" else f"{r.status} (last count {r.last_count:,})",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        f"polls: first {polling.first:g} s after the first UPDATE, intervals doubling to "
        f"{polling.cap:g} s; 'seconds': end of the first poll that saw every path; 'prev poll': "
        "start of the poll before it (its answer was short): the true time lies between; "
        "'poll lag': the slowest answer to one poll; 'daemon CPU s': its CPU time over the "
        "window; 'others busy': cores (of 2) busy with anything else meanwhile, the sender "
        "included; 'runs': every run's seconds, the fastest kept"
    )
    return "\n".join(lines)


def ratios(results: list[Result]) -> dict[str, float]:
    """pybgpd's rate over FRR's, per scenario."""
    out = {}
    for scenario in dict.fromkeys(r.scenario for r in results):
        rates = {r.daemon: r.rate for r in results if r.scenario == scenario}
        mine, frr = rates.get("pybgpd"), rates.get("frr")
        if mine and frr:
            out[scenario] = mine / frr
    return out


def write_json(results: list[Result], args: argparse.Namespace, polling: Polling) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    path = OUT_DIR / f"ingest-{stamp}.json"
    payload = {
        "date": stamp,
        "command": " ".join(["python -m bench.bench_ingest", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        "polling": attrs.asdict(polling),
        "results": [
            attrs.asdict(r) | {"rate": r.rate, "others_busy": r.others_busy} for r in results
        ],
        "pybgpd_over_frr_rate": ratios(results),
        "profiled": bool(args.profile),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# -- main ------------------------------------------------------------------------------------


def build_streams(peers: tuple[Peer, ...], prefixes: int, workdir: Path) -> dict[str, Path]:
    from bench.sender import build_stream

    streams = {}
    for peer in peers:
        path = workdir / f"stream-{peer.address}.bin"
        path.write_bytes(build_stream(prefixes, peer.asn, peer.address))
        streams[peer.address] = path
    return streams


def best_of(runs: int, name: str, job: Callable[[str], Result], polling: Polling) -> Result:
    """Run `job(name)` `runs` times (each in a fresh lab, printing its row); keep the fastest,
    with every run's time in `all_seconds` (other people's tests share this machine)."""
    tries = []
    for _ in range(runs):
        tries.append(job(name))
        print(table(tries[-1:], polling).splitlines()[2], flush=True)
    best = min(tries, key=lambda r: (r.seconds is None, r.seconds or 0.0))
    best.all_seconds = [r.seconds for r in tries]
    return best


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prefixes", type=int, default=1_000_000, help="with one sender")
    parser.add_argument("--peers", type=int, choices=[1, 20], default=1)
    parser.add_argument("--peer-prefixes", type=int, default=50_000, help="each of 20 senders")
    parser.add_argument("--daemons", default="", help="default: all five (four with --peers 20)")
    parser.add_argument(
        "--relay",
        default="pybgpd,frr",
        help="relays for the send-to-FRR run (--peers 1 only), or none",
    )
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per daemon")
    parser.add_argument("--poll-first", type=float, default=0.05)
    parser.add_argument("--poll-max", type=float, default=1.0)
    parser.add_argument("--exabgp", default="/tmp/exabgp-venv/bin/exabgp")
    parser.add_argument("--profile", type=Path, help="py-spy pybgpd into DIR (untimed run)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=180.0,
        help="before each daemon, wait up to this long for the machine to be idle",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per daemon; the fastest is kept")
    parser.add_argument("--keep", action="store_true", help="keep configs and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["--exabgp-counter"]:
        exabgp_counter(Path(raw[1]))
        return 0
    args = parse_args(argv)
    default = "pybgpd,frr,bird,gobgp,exabgp" if args.peers == 1 else "pybgpd,frr,bird,gobgp"
    names = [n for n in (args.daemons or default).split(",") if n]
    relays = [] if args.peers != 1 or args.relay == "none" else args.relay.split(",")
    unknown = [n for n in names if n not in DAEMONS] + [n for n in relays if n not in RELAYS]
    if unknown:
        raise SystemExit(f"unknown daemon(s): {', '.join(unknown)}")
    peers = sender_peers(args.peers)
    prefixes = args.prefixes if args.peers == 1 else args.peer_prefixes
    polling = Polling(args.poll_first, args.poll_max, args.deadline)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ingest-", dir=OUT_DIR))
    scenario = "1 sender" if args.peers == 1 else f"{args.peers} senders"
    plan = Plan(
        scenario,
        peers,
        prefixes,
        build_streams(peers, prefixes, workdir),
        polling,
        workdir,
        args.exabgp,
        args.profile,
        args.quiet_wait,
    )
    relay_plan = attrs.evolve(plan, scenario="relay to FRR")
    jobs = [(name, lambda n: measure(n, plan)) for name in names]
    jobs += [(name, lambda n: measure_relay(n, relay_plan)) for name in relays]
    results = []
    for name, job in jobs:
        results.append(best_of(args.runs, name, job, polling))
    print()
    print(table(results, polling))
    for scenario_name, ratio in ratios(results).items():
        print(f"pybgpd / FRR rate, {scenario_name}: {ratio:.2f}")
    for note in dict.fromkeys(r.note for r in results if r.note):
        print(f"note: {note}")
    print(f"JSON: {write_json(results, args, polling)}")
    for path in sorted(args.profile.glob("pybgpd-*.txt")) if args.profile else []:
        print(profile_top(path))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
