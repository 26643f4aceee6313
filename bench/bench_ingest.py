"""Ingest speed and memory of BGP daemons (issue 3 §7, issue 12 §2), pybgpd against FRR, BIRD,
GoBGP and ExaBGP.

The case: twenty senders (or one), each a separate process (bench/sender.py) with one session
and its own AS and address, in a network namespace joined by a veth to the daemon's. Each
sends the same 50,000 /24s (one sender: 1,000,000) in UPDATEs of 10, each UPDATE with its own
3-AS path starting with the sender's AS (bench/gen.py), as fast as TCP allows; every sender
starts writing at once, when all sessions are Established. The time runs from the first
UPDATE until the first read of the daemon's own counters (pybgpd: its control socket) that
shows every path accepted; nothing is interpolated. Peak RSS is the daemon's VmHWM.

    python -m bench.bench_ingest [--peers 1|20] [--daemons pybgpd,frr] [--runs 3]
                                 [--prefixes 1000000] [--relay pybgpd,frr|none]
                                 [--poll-max 0.5] [--quiet-wait 180] [--profile DIR]

Honest ratios: with --runs N every daemon runs N times, in rounds, the order reversed each
round (pybgpd, frr; frr, pybgpd; ...), so neither always goes first or always follows the
other; the fastest run of each is kept, every run is shown, and the pybgpd / FRR rate ratio is
also given over the rounds where pybgpd went first and over those where FRR did. The anchor's
own time is printed against what it takes on an idle machine of this kind (`USUAL`): an
unusually slow anchor flatters pybgpd, and the output says so.

Counters are polled sparingly (every read costs the daemon CPU) but so as to end close after
the last path: first after --poll-first seconds, then when the rate seen so far says the rest
will be in (at least --poll-gap, at most --poll-max later). Each result also gives the start
of the poll before (still short), so the true time lies between the two. Before each run the
benchmark waits (at most --quiet-wait seconds) for an idle machine and reports the daemon's own
CPU time and how busy the rest of the machine was meanwhile: figures from a busy machine are
marked as such. --profile DIR records pybgpd with py-spy (--gil, raw stacks) and prints its
top functions; those runs are slowed by the sampling, so time them separately.

Every daemon advertises its best paths to the other senders as eBGP speakers do by default
(BIRD: `export all`); the senders read and discard them.
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
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import attrs

from bench.ingest_daemons import DAEMONS, FRR, RELAYS, Daemon, FRRSink
from bench.ingest_lab import (
    DAEMON_ADDR,
    DAEMON_ASN,
    FRR_SINK_ADDR,
    FRR_SINK_ASN,
    RELAY_ADDR,
    REPO,
    VENV_BIN,
    Lab,
    Peer,
    Senders,
    busy_cores,
    cpu_jiffies,
    cpu_seconds,
    lab,
    now,
    proc_status,
    sender_peers,
    stop,
    wait_quiet,
)

OUT_DIR = REPO / "bench" / "out"
# What the anchor takes for the standard case (1,000,000 paths) on an idle machine of the
# project's standard kind (2 cores), in seconds, low to high: runs of this benchmark and of an
# independent harness (issue 12 §2).
USUAL: dict[tuple[str, str], tuple[float, float]] = {
    ("frr", "1 sender"): (4.77, 5.22),
    ("frr", "20 senders"): (1.47, 1.78),
    ("frr", "relay to FRR"): (7.30, 8.08),
}
SLOW_ANCHOR = 1.15  # best time above 1.15 x the usual high: say the ratio flatters pybgpd


@attrs.define
class Result:
    daemon: str
    scenario: str
    peers: int
    expected: int  # paths the daemon must hold (prefixes x peers)
    round: int = 0  # 1, 2, ...: which round of --runs
    position: int = 0  # 0: the first daemon of its round
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
        """Cores busy with anything but the daemon while it ingested (the senders included)."""
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
    gap: float  # the least time between two polls
    cap: float  # the most
    deadline: float  # seconds after the first UPDATE


@attrs.frozen
class Poll:
    start: float  # seconds after the first UPDATE
    end: float
    count: int


def poll_until(
    count: Callable[[], int], expected: int, t0: float, polling: Polling, senders: Senders
) -> tuple[list[Poll], str]:
    """Poll `count` at t0 + first, then when the average rate so far says the last path will
    be in (between `gap` and `cap` later; doubling intervals before any progress), until it
    reaches `expected`."""
    interval, polls = polling.first, list[Poll]()
    next_at = t0 + interval
    while True:
        time.sleep(max(0.0, next_at - now()))
        started, last = now() - t0, -1
        with contextlib.suppress(Exception):
            last = count()
        ended = now() - t0
        polls.append(Poll(started, ended, last))
        if last >= expected:
            return polls, "ok"
        trouble = senders.trouble()
        if trouble or ended > polling.deadline:
            return polls, trouble or f"timeout after {polling.deadline:.0f} s"
        interval = min(interval * 2, polling.cap)
        wait = (expected - last) * ended / last if last > 0 else interval
        next_at = now() + min(max(wait, polling.gap), polling.cap)


def record_polls(result: Result, polls: list[Poll]) -> None:
    """The first poll that saw every path ended at `seconds`; the one before it started at
    `previous_poll`, and its answer was still short: the true time lies between the two."""
    result.polls = [(round(p.start, 3), round(p.end, 3), p.count) for p in polls]
    result.last_count = polls[-1].count
    if result.status == "ok":
        result.seconds = polls[-1].end
        result.previous_poll = polls[-2].start if len(polls) > 1 else 0.0


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
            proc = daemon.start(log)
            try:
                run_senders(daemon, proc, net, plan, result, plan.peers, log)
            finally:
                stop(proc)
    return result


def run_senders(
    watched: Daemon,
    proc: subprocess.Popen[bytes],
    net: Lab,
    plan: Plan,
    result: Result,
    counted: tuple[Peer, ...],
    log: IO[bytes],
) -> None:
    """Feed the daemon from the senders, poll `watched` until it holds every path from the
    `counted` peers, record the daemon's peak RSS, stop the senders."""
    sessions = [f"{p.address}:{p.asn}:{plan.streams[p.address]}" for p in net.peers]
    profiler = start_profiler(proc.pid, plan, result.daemon) if plan.profile else None
    senders = Senders(net.tx, DAEMON_ADDR, sessions, log)
    try:
        t0, error = senders.start(now() + 60)
        if t0 is None:
            result.status = error
            return
        jiffies, cpu = cpu_jiffies(), cpu_seconds(proc.pid)
        polls, result.status = poll_until(
            lambda: watched.accepted(counted), result.expected, t0, plan.polling, senders
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
        senders.close()


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
            sink_proc, proc = sink.start(sink_log), relay.start(log)
            try:
                if not wait_established(sink, relay_peer, 60):
                    result.status = "relay-FRR session did not come up in 60 s"
                    return result
                watched = _RelayWatch(sink, relay_peer)
                run_senders(watched, proc, net, plan, result, (relay_peer,), log)
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
            *("record", "--gil", "--format", "raw", "-o", f"{stem}.txt"),
            *("--pid", str(pid), "--rate", "200"),
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


# -- rounds and ratios -----------------------------------------------------------------------


def rounds(
    runs: int, names: list[str], job: Callable[[str], Result], polling: Polling
) -> list[Result]:
    """Every daemon `runs` times in rounds, the order reversed each round; each run printed
    as it ends."""
    results: list[Result] = []
    for number in range(1, runs + 1):
        order = names if number % 2 else names[::-1]
        for position, name in enumerate(order):
            result = job(name)
            result.round, result.position = number, position
            results.append(result)
            print(table([result], polling).splitlines()[2], flush=True)
    return results


def fastest(results: list[Result]) -> list[Result]:
    """The fastest run per (daemon, scenario), with every run's time in `all_seconds`."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.daemon, result.scenario), []).append(result)
    best = []
    for tries in groups.values():
        found = min(tries, key=lambda r: (r.seconds is None, r.seconds or 0.0))
        best.append(attrs.evolve(found, all_seconds=[r.seconds for r in tries]))
    return best


def _ratio(results: list[Result]) -> float | None:
    rates: dict[str, float] = {}
    for r in results:
        if r.rate is not None and r.rate > rates.get(r.daemon, 0.0):
            rates[r.daemon] = r.rate
    mine, frr = rates.get("pybgpd"), rates.get("frr")
    return mine / frr if mine and frr else None


def ratios(results: list[Result]) -> dict[str, dict[str, float | None]]:
    """Per scenario, pybgpd's best rate over FRR's: over every round ("all"), over the rounds
    where pybgpd ran before FRR ("pybgpd first") and over those where FRR ran first."""
    out: dict[str, dict[str, float | None]] = {}
    for scenario in dict.fromkeys(r.scenario for r in results):
        runs = [r for r in results if r.scenario == scenario]
        first: dict[str, list[Result]] = {"pybgpd first": [], "frr first": []}
        for number in dict.fromkeys(r.round for r in runs):
            pair = {r.daemon: r for r in runs if r.round == number}
            if "pybgpd" in pair and "frr" in pair:
                ahead = pair["pybgpd"].position < pair["frr"].position
                first["pybgpd first" if ahead else "frr first"] += pair.values()
        if _ratio(runs) is not None:
            out[scenario] = {"all": _ratio(runs)} | {k: _ratio(v) for k, v in first.items()}
    return out


def anchor_notes(best: list[Result]) -> list[str]:
    """The anchor's best time against its usual time on an idle machine."""
    notes = []
    for r in best:
        usual = USUAL.get((r.daemon, r.scenario))
        if usual is None or r.seconds is None or r.expected != 1_000_000:
            continue
        low, high = usual
        line = f"{r.daemon}, {r.scenario}: best {r.seconds:.2f} s; usual {low:.2f}-{high:.2f} s"
        if r.seconds > SLOW_ANCHOR * high:
            ratio = r.seconds / high
            line += f" -> {ratio:.2f} x its usual: a slow anchor; the ratio flatters pybgpd"
        notes.append(line)
    return notes


# -- output ----------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = [
    "daemon",
    "scenario",
    "round",
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
                f"{r.round}.{r.position + 1}",
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
        f"'round': round.place in it; polls: first {polling.first:g} s after the first UPDATE, "
        f"then when the rate so far says all will be in ({polling.gap:g}-{polling.cap:g} s on); "
        "'seconds': end of the first poll that saw every path; 'prev poll': start of the poll "
        "before it (its answer was short): the true time lies between; 'poll lag': the slowest "
        "answer to one poll; 'daemon CPU s': its CPU time over the window; 'others busy': cores "
        "(of 2) busy with anything else meanwhile, the senders included; 'runs': every run's "
        "seconds in round order, the fastest kept"
    )
    return "\n".join(lines)


def write_json(
    runs: list[Result], best: list[Result], args: argparse.Namespace, polling: Polling
) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    path = OUT_DIR / f"ingest-{stamp}.json"

    def rows(results: list[Result]) -> list[dict[str, object]]:
        return [attrs.asdict(r) | {"rate": r.rate, "others_busy": r.others_busy} for r in results]

    payload = {
        "date": stamp,
        "command": " ".join(["python -m bench.bench_ingest", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        "polling": attrs.asdict(polling),
        "results": rows(best),
        "runs": rows(runs),
        "pybgpd_over_frr_rate": ratios(runs),
        "anchor": anchor_notes(best),
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
    parser.add_argument("--poll-gap", type=float, default=0.05)
    parser.add_argument("--poll-max", type=float, default=0.5)
    parser.add_argument("--exabgp", default="/tmp/exabgp-venv/bin/exabgp")
    parser.add_argument("--profile", type=Path, help="py-spy pybgpd into DIR (untimed run)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=180.0,
        help="before each run, wait up to this long for the machine to be idle",
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds; the fastest run is kept")
    parser.add_argument("--keep", action="store_true", help="keep configs and logs")
    return parser.parse_args(argv)


def report(runs: list[Result], args: argparse.Namespace, polling: Polling) -> None:
    best = fastest(runs)
    print()
    print(table(best, polling))
    for scenario, found in ratios(runs).items():
        parts = [f"{k} {v:.2f}" for k, v in found.items() if k != "all" and v is not None]
        print(f"pybgpd / FRR rate, {scenario}: {found['all']:.2f} ({'; '.join(parts)})")
    for line in anchor_notes(best):
        print(f"anchor: {line}")
    for note in dict.fromkeys(r.note for r in best if r.note):
        print(f"note: {note}")
    print(f"JSON: {write_json(runs, best, args, polling)}")
    for path in sorted(args.profile.glob("pybgpd-*.txt")) if args.profile else []:
        print(profile_top(path))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    default = "pybgpd,frr,bird,gobgp,exabgp" if args.peers == 1 else "pybgpd,frr,bird,gobgp"
    names = [n for n in (args.daemons or default).split(",") if n]
    relays = [] if args.peers != 1 or args.relay == "none" else args.relay.split(",")
    unknown = [n for n in names if n not in DAEMONS] + [n for n in relays if n not in RELAYS]
    if unknown:
        raise SystemExit(f"unknown daemon(s): {', '.join(unknown)}")
    peers = sender_peers(args.peers)
    prefixes = args.prefixes if args.peers == 1 else args.peer_prefixes
    polling = Polling(args.poll_first, args.poll_gap, args.poll_max, args.deadline)
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
    runs = rounds(args.runs, names, lambda n: measure(n, plan), polling)
    if relays:
        runs += rounds(args.runs, relays, lambda n: measure_relay(n, relay_plan), polling)
    report(runs, args, polling)
    if not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
