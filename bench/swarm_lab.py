"""The lab of the scale benchmarks: the daemon under test in one network namespace, the
swarm of simulated speakers (bench/swarm.py) in another, joined by one veth that holds every
speaker's address; and the swarm process, driven over its standard input and output."""

from __future__ import annotations

import contextlib
import json
import queue
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from bench.bench_ingest import OUT_DIR
from bench.ingest_lab import REPO, netns_cmd, now, stop

DAEMON_ADDR = "10.0.0.1"


@attrs.frozen
class SimPeer:
    address: str
    asn: int
    prefixes: tuple[str, ...]


def sim_address(index: int) -> str:
    """Speaker `index`'s address: 10.0.1.1, 10.0.1.2, ... 10.0.1.250, 10.0.2.1, ..."""
    return f"10.0.{1 + index // 250}.{1 + index % 250}"


def pod_cidr(index: int) -> str:
    """Speaker `index`'s pod CIDR: 10.128.0.0/24, 10.128.1.0/24, ..."""
    return f"10.{128 + index // 256}.{index % 256}.0/24"


def sim_peers(count: int, asn: int) -> tuple[SimPeer, ...]:
    return tuple(SimPeer(sim_address(i), asn, (pod_cidr(i),)) for i in range(count))


@attrs.frozen
class Lab:
    daemon_ns: str
    swarm_ns: str


@contextlib.contextmanager
def lab(peers: tuple[SimPeer, ...]) -> Iterator[Lab]:
    """Two namespaces; the daemon at DAEMON_ADDR/16, every simulated peer's address on the
    swarm's end of the veth. The daemon's side knows the peers' link address from the start:
    permanent neighbour entries, which the kernel leaves out of its neighbour-table limit
    (gc_thresh3, 1,024 entries by default, shared by every namespace: a thousand learnt
    entries would make other namespaces' ARP fail)."""
    from tests.netns import netns, veth_pair

    with contextlib.ExitStack() as stack:
        daemon_ns, swarm_ns = stack.enter_context(netns("bsd")), stack.enter_context(netns("bss"))
        first = f"{peers[0].address}/16"
        ours, dev = stack.enter_context(veth_pair(daemon_ns, f"{DAEMON_ADDR}/16", swarm_ns, first))
        batch = "".join(f"addr add {p.address}/16 dev {dev}\n" for p in peers[1:])
        subprocess.run(["ip", "-n", swarm_ns, "-batch", "-"], input=batch, text=True, check=True)
        mac = ["ip", "netns", "exec", swarm_ns, "cat", f"/sys/class/net/{dev}/address"]
        link = subprocess.run(mac, capture_output=True, text=True, check=True).stdout.strip()
        batch = "".join(f"neigh replace {p.address} lladdr {link} dev {ours} nud permanent\n"
                        for p in peers)  # fmt: skip
        subprocess.run(["ip", "-n", daemon_ns, "-batch", "-"], input=batch, text=True, check=True)
        yield Lab(daemon_ns, swarm_ns)


def write_json(bench: str, argv: list[str] | None, key: str, items: Sequence[Any]) -> None:
    """bench/out/<bench>-<date>.json: the command run and its results (attrs classes)."""
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"{bench}-{stamp}.json"
    args = sys.argv[1:] if argv is None else argv
    command = " ".join([f"python -m bench.bench_{bench}", *args])
    payload = {"date": stamp, "command": command, key: [attrs.asdict(i) for i in items]}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"JSON: {out}")


def raise_file_limit() -> None:
    """Room for every session's socket (a daemon with 1,000 sessions needs more than the
    usual 1,024 files): the soft limit up to the hard one, for us and the processes we
    start."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_daemon(ns: str, argv: list[str], cwd: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        netns_cmd(ns, *argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class SwarmProcess:
    """bench/swarm.py in the swarm namespace; its JSON events arrive on a queue."""

    def __init__(self, ns: str, config: dict[str, Any], workdir: Path, log: IO[bytes]) -> None:
        path = workdir / f"swarm-{id(self)}.json"
        path.write_text(json.dumps(config))
        self.proc = subprocess.Popen(
            netns_cmd(ns, sys.executable, "-m", "bench.swarm", str(path)),
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

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, name: str, deadline: float) -> dict[str, Any]:
        """The next `name` event; raises on a closed session, the swarm's exit or timeout."""
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - now()))
            except queue.Empty:
                raise TimeoutError(f"no {name!r} from the swarm in time") from None
            if event["event"] == name:
                return event
            if event["event"] in ("closed", "exit"):
                raise RuntimeError(f"swarm: {event}")

    def status(self, deadline: float) -> dict[str, Any]:
        self.command("status")
        return self.wait_for("status", deadline)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.command("quit")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            stop(self.proc, grace=2)


class SwarmGroup:
    """The speakers of a dialling swarm split over `count` processes (on two cores one
    process's parsing of a million UPDATEs would be the clock, not the daemon); their
    events joined: each event once every process sent it, with the earliest or latest
    stamp as the event means, CPU seconds summed."""

    def __init__(
        self, ns: str, config: dict[str, Any], workdir: Path, log: IO[bytes], count: int
    ) -> None:
        speakers = config["speakers"]
        parts = [speakers[i::count] for i in range(count) if speakers[i::count]]
        self.parts: list[SwarmProcess] = []
        for part in parts:
            mine = {s["address"] for s in part}
            elsewhere = [p for s in speakers if s["address"] not in mine for p in s["prefixes"]]
            own = {**config, "speakers": part, "elsewhere": elsewhere}
            self.parts.append(SwarmProcess(ns, own, workdir, log))

    def command(self, line: str) -> None:
        for part in self.parts:
            part.command(line)

    def wait_for(self, name: str, deadline: float) -> dict[str, Any]:
        events = [part.wait_for(name, deadline) for part in self.parts]
        joined = dict(events[-1])
        for key, pick in JOIN.items():
            values = [e[key] for e in events if e.get(key) is not None]
            if values:
                joined[key] = pick(values)
        return joined

    def status(self, deadline: float) -> dict[str, Any]:
        self.command("status")
        return self.wait_for("status", deadline)

    def close(self) -> None:
        for part in self.parts:
            part.close()


# How SwarmGroup joins a field of its processes' events.
JOIN: dict[str, Any] = {
    "t": max,
    "t_first": min,
    "t_last": max,
    "first_read": min,
    "cpu": sum,
    "count": sum,
    "established": sum,
    "converged": sum,
    "held": sum,
    "ok": all,
}
