"""A route reflector with 1,000 clients (issue 9 §5): pybgpd, FRR and GoBGP in the same role
on the same input.

The swarm (bench/swarm.py: 1,000 simulated iBGP speakers in --swarms processes, each speaker
on its own address) connects to the daemon under test, which has every client configured as
a route-reflector client (RFC 4456). Once all 1,000 sessions are Established (the swarm's
view and the daemon's) and the machine is quiet, every client announces its pod CIDR (one
/24 each, next hop its own address) at once. The clock runs from the first of those UPDATEs
until every client holds all 999 other prefixes, as the swarm counts them from the UPDATEs
it receives (then checked prefix by prefix: "verified"). Reported: that time, the daemon's
CPU seconds over it, its peak RSS (VmHWM) and RSS after convergence, and the swarm's own CPU
seconds (it shares the machine's two cores).

    python -m bench.bench_reflector [--clients 1000] [--daemons pybgpd,frr,gobgp] [--runs N]
                                    [--deadline 120] [--profile DIR] [--quiet-wait 120]
                                    [--swarms 2] [--quick]

FRR 8.4 bgpd runs directly with `coalesce-time 0` and `advertisement-interval 0` (its
defaults wait seconds before sending); GoBGP 3.10 without zebra. --profile DIR records
pybgpd with py-spy over the timed window (a separate, slowed run; top functions printed).
Needs root, ip netns, Debian's frr and gobgpd.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from bench.bench_ingest import OUT_DIR, profile_top, stop_profiler
from bench.ingest_lab import VENV_BIN, cli, cpu_seconds, now, proc_status, stop, wait_quiet
from bench.swarm_lab import (
    DAEMON_ADDR,
    SimPeer,
    SwarmGroup,
    lab,
    raise_file_limit,
    sim_peers,
    start_daemon,
    write_json,
)

ASN = 64512  # the cluster's: every client is iBGP


class Reflector:
    """One daemon as the route reflector: its config, command line and session count."""

    name = ""

    def __init__(self, workdir: Path, ns: str) -> None:
        self.dir, self.ns = workdir, ns

    def configure(self, clients: tuple[SimPeer, ...]) -> None:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def established(self) -> int:
        raise NotImplementedError


class PyBGPd(Reflector):
    name = "pybgpd"

    def configure(self, clients: tuple[SimPeer, ...]) -> None:
        lines = ["[global]", f"asn = {ASN}", f'router_id = "{DAEMON_ADDR}"']
        lines.append(f'listen = ["{DAEMON_ADDR}"]')
        for client in clients:
            lines += [
                "[[neighbors]]",
                f'address = "{client.address}"',
                f"peer_asn = {client.asn}",
                "passive = true",
                "route_reflector_client = true",
                'families = ["ipv4-unicast"]',
            ]
        lines += ["[policy.attach]", 'default_export = "accept"']
        (self.dir / "pybgpd.toml").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        config, sock = str(self.dir / "pybgpd.toml"), str(self.dir / "pybgpd.sock")
        return [str(VENV_BIN / "pybgpd"), "-c", config, "--socket", sock]

    def established(self) -> int:
        from pybgp.control import request

        try:
            table = request(str(self.dir / "pybgpd.sock"), "neighbors", timeout=10.0)
        except Exception:
            return 0
        return sum(1 for n in table if str(n["state"]).lower() == "established")


class FRR(Reflector):
    name = "frr"

    def configure(self, clients: tuple[SimPeer, ...]) -> None:
        lines = [
            "frr defaults traditional",
            "hostname reflector",
            "log stdout warnings",
            f"router bgp {ASN}",
            f" bgp router-id {DAEMON_ADDR}",
            " no bgp network import-check",
            " coalesce-time 0",
            " neighbor CLIENTS peer-group",
            f" neighbor CLIENTS remote-as {ASN}",
            " neighbor CLIENTS passive",
            " neighbor CLIENTS advertisement-interval 0",
        ]
        lines += [f" neighbor {c.address} peer-group CLIENTS" for c in clients]
        lines += [
            " address-family ipv4 unicast",
            "  neighbor CLIENTS activate",
            "  neighbor CLIENTS route-reflector-client",
            " exit-address-family",
            "",
        ]
        (self.dir / "bgpd.conf").write_text("\n".join(lines))

    def argv(self) -> list[str]:
        return [
            "/usr/lib/frr/bgpd",
            *("-f", str(self.dir / "bgpd.conf"), "-i", str(self.dir / "bgpd.pid")),
            *("-Z", "-S", "-u", "root", "-g", "root", "--vty_socket", str(self.dir)),
            *("-l", DAEMON_ADDR),
        ]

    def established(self) -> int:
        vty = ("vtysh", "--vty_socket", str(self.dir), "-d", "bgpd")
        out = cli(self.ns, *vty, "-c", "show bgp ipv4 unicast summary json")
        try:
            peers = json.loads(out).get("peers", {})
        except json.JSONDecodeError:
            return 0
        return sum(1 for p in peers.values() if p.get("state") == "Established")


class GoBGP(Reflector):
    name = "gobgp"

    def configure(self, clients: tuple[SimPeer, ...]) -> None:
        lines = [
            "[global.config]",
            f"  as = {ASN}",
            f'  router-id = "{DAEMON_ADDR}"',
            f'  local-address-list = ["{DAEMON_ADDR}"]',
        ]
        for client in clients:
            lines += [
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{client.address}"',
                f"    peer-as = {client.asn}",
                "  [neighbors.transport.config]",
                "    passive-mode = true",
                "  [neighbors.route-reflector.config]",
                "    route-reflector-client = true",
                f'    route-reflector-cluster-id = "{DAEMON_ADDR}"',
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                '      afi-safi-name = "ipv4-unicast"',
            ]
        (self.dir / "gobgp.toml").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        config = str(self.dir / "gobgp.toml")
        return ["gobgpd", "-f", config, "--api-hosts", "127.0.0.1:50051", "-l", "warn"]

    def established(self) -> int:
        try:
            data = json.loads(cli(self.ns, "gobgp", "neighbor", "-j", timeout=60))
        except json.JSONDecodeError:
            return 0
        up = ("established", "ESTABLISHED", 6)
        return sum(1 for n in data if n.get("state", {}).get("session_state") in up)


REFLECTORS: dict[str, type[Reflector]] = {"pybgpd": PyBGPd, "frr": FRR, "gobgp": GoBGP}


@attrs.define
class Result:
    daemon: str
    clients: int
    status: str = "ok"
    seconds: float | None = None  # first client UPDATE -> every client holds every other's
    first_reply: float | None = None  # first client UPDATE -> the first bytes back
    daemon_cpu: float | None = None  # over that window
    peak_rss_mib: float | None = None
    rss_mib: float | None = None  # after convergence
    swarm_cpu: float | None = None  # over that window
    setup_seconds: float | None = None  # starting the daemon -> every session Established
    verified: bool = False
    idle_wait: float = 0.0
    busy_before: float = 0.0
    all_seconds: list[float | None] = attrs.Factory(list)


@attrs.frozen
class Plan:
    clients: tuple[SimPeer, ...]
    deadline: float
    quiet_wait: float
    workdir: Path
    profile: Path | None
    swarms: int


def measure(name: str, plan: Plan) -> Result:
    result = Result(name, len(plan.clients))
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=plan.workdir))
    with lab(plan.clients) as net, (workdir / "daemon.log").open("wb") as log:
        daemon = REFLECTORS[name](workdir, net.daemon_ns)
        daemon.configure(plan.clients)
        started = now()
        proc = start_daemon(net.daemon_ns, daemon.argv(), workdir, log)
        config = swarm_config(plan.clients)
        swarm = SwarmGroup(net.swarm_ns, config, workdir, log, plan.swarms)
        try:
            run(daemon, proc, swarm, plan, result, started)
        except (TimeoutError, RuntimeError) as exc:
            result.status = str(exc)
        finally:
            swarm.close()
            stop(proc)
    return result


def swarm_config(clients: tuple[SimPeer, ...]) -> dict[str, Any]:
    speakers = [{"address": c.address, "asn": c.asn, "prefixes": c.prefixes} for c in clients]
    return {"peer": DAEMON_ADDR, "mode": "dial", "expect": "others", "speakers": speakers}


def run(
    daemon: Reflector,
    proc: Any,
    swarm: SwarmGroup,
    plan: Plan,
    result: Result,
    started: float,
) -> None:
    swarm.wait_for("established", now() + plan.deadline)
    wait_established(daemon, len(plan.clients), now() + plan.deadline)
    result.setup_seconds = now() - started
    result.idle_wait, result.busy_before = wait_quiet(plan.quiet_wait)
    profiler = start_profiler(proc.pid, plan) if daemon.name == "pybgpd" else None
    cpu_before, swarm_before = cpu_seconds(proc.pid), swarm.status(now() + 30)["cpu"]
    swarm.command("announce")
    try:
        announced = swarm.wait_for("announced", now() + 30)
        converged = swarm.wait_for("converged", now() + plan.deadline)
    finally:
        if profiler is not None:
            stop_profiler(profiler)
    cpu_after = cpu_seconds(proc.pid)
    result.seconds = converged["t"] - announced["t_first"]
    if converged.get("first_read") is not None:
        result.first_reply = converged["first_read"] - announced["t_first"]
    result.swarm_cpu = converged["cpu"] - swarm_before
    if cpu_before is not None and cpu_after is not None:
        result.daemon_cpu = cpu_after - cpu_before
    result.verified = bool(swarm.wait_for("verified", now() + 30)["ok"])
    hwm, rss = proc_status(proc.pid, "VmHWM"), proc_status(proc.pid, "VmRSS")
    result.peak_rss_mib = hwm / 1024 if hwm is not None else None
    result.rss_mib = rss / 1024 if rss is not None else None


def wait_established(daemon: Reflector, count: int, deadline: float) -> None:
    """Until the daemon itself counts `count` Established sessions (polled every second)."""
    while now() < deadline:
        if daemon.established() >= count:
            return
        time.sleep(1.0)
    raise TimeoutError(f"{daemon.name}: not every session Established in time")


def start_profiler(pid: int, plan: Plan) -> Any:
    import subprocess

    if plan.profile is None:
        return None
    plan.profile.mkdir(parents=True, exist_ok=True)
    out = plan.profile / f"pybgpd-reflector-{len(plan.clients)}.txt"
    argv = [str(VENV_BIN / "py-spy"), "record", "--gil", "--format", "raw", "-o", str(out)]
    proc = subprocess.Popen(
        [*argv, "--pid", str(pid), "--rate", "250"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return proc


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[Result]) -> str:
    rows = [
        ["daemon", "clients", "seconds", "first reply s", "daemon CPU s", "peak RSS MiB", "RSS MiB",
         "swarm CPU s", "setup s", "verified", "runs", "status"],
    ]  # fmt: skip
    for r in results:
        rows.append(
            [
                r.daemon,
                str(r.clients),
                fmt(r.seconds, ".2f"),
                fmt(r.first_reply, ".2f"),
                fmt(r.daemon_cpu, ".2f"),
                fmt(r.peak_rss_mib, ".0f"),
                fmt(r.rss_mib, ".0f"),
                fmt(r.swarm_cpu, ".2f"),
                fmt(r.setup_seconds, ".1f"),
                "yes" if r.verified else "no",
                "/".join(fmt(x, ".2f") for x in r.all_seconds) or fmt(r.seconds, ".2f"),
                r.status,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--daemons", default="pybgpd,frr,gobgp")
    parser.add_argument("--runs", type=int, default=1, help="runs per daemon; the fastest kept")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per phase")
    parser.add_argument("--quiet-wait", type=float, default=120.0)
    parser.add_argument("--profile", type=Path, help="py-spy pybgpd into DIR (slowed run)")
    parser.add_argument("--swarms", type=int, default=2, help="processes the clients run in")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: 100 clients, short waits"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.deadline, args.quiet_wait = min(args.clients, 100), 60.0, 5.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_file_limit()
    names = [n for n in args.daemons.split(",") if n]
    unknown = [n for n in names if n not in REFLECTORS]
    if unknown:
        raise SystemExit(f"unknown daemon(s): {', '.join(unknown)}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="reflector-", dir=OUT_DIR))
    clients = sim_peers(args.clients, ASN)
    plan = Plan(clients, args.deadline, args.quiet_wait, workdir, args.profile, args.swarms)
    results = []
    for name in names:
        tries = []
        for _ in range(args.runs):
            tries.append(measure(name, plan))
            print(table(tries[-1:]).splitlines()[2], flush=True)
        best = min(tries, key=lambda r: (r.seconds is None, r.seconds or 0.0))
        best.all_seconds = [r.seconds for r in tries]
        results.append(best)
    print()
    print(table(results))
    write_json("reflector", argv, "results", results)
    for path in sorted(args.profile.glob("pybgpd-reflector-*.txt")) if args.profile else []:
        print(profile_top(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
