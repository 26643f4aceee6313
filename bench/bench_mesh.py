"""A node in a full mesh of 500 peers (issue 9 §5): memory and idle CPU once converged.

The node under test is in one network namespace; 500 simulated iBGP peers (bench/swarm.py,
one process, each on its own address) in another. The node dials every peer (as nodes of
a full mesh do), each peer announces its pod CIDR and expects the node's. Once every peer
holds the node's route and the node holds all 500 (with --node agent: and its kernel has
all 500 routes), the node is left alone for --idle seconds (KEEPALIVEs every 30 s each
way: hold time 90 s, as kube-router's default) and its CPU time over that window and its
RSS are reported.

    python -m bench.bench_mesh [--peers 500] [--node pybgpd|agent] [--idle 60] [--runs N] [--quick]

--node pybgpd: the daemon, with the 500 neighbours in its configuration and its own route
in [[routes]]. --node agent: the real kube-router agent (routing controller only:
--run-firewall=false --run-service-proxy=false), against the project's test API server (in
the node's namespace, plain HTTP on 127.0.0.1) seeded with 501 Node objects; it finds its
peers in the Nodes, runs its embedded Speaker and installs the 500 pod CIDRs in the kernel.
Needs root and ip netns.
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

from bench.bench_ingest import OUT_DIR
from bench.ingest_lab import VENV_BIN, cli, cpu_seconds, now, proc_status, stop
from bench.swarm_lab import (
    DAEMON_ADDR,
    SimPeer,
    SwarmProcess,
    lab,
    raise_file_limit,
    sim_peers,
    start_daemon,
    write_json,
)

ASN = 64512
NODE_POD_CIDR = "10.127.0.0/24"
API_PORT = 16443
KERNEL_PROTO = "17"  # the protocol number the agent's routes carry


class Node:
    """The node under test: how it starts, and what it holds."""

    name = ""

    def __init__(self, workdir: Path, ns: str) -> None:
        self.dir, self.ns = workdir, ns
        self.socket = str(workdir / "bgp.sock")
        self.helpers: list[Any] = []  # processes it needs (the API server)

    def start(self, peers: tuple[SimPeer, ...], log: Any) -> Any:
        raise NotImplementedError

    def paths(self) -> int:
        """Paths the node accepted from its peers (its control socket)."""
        from pybgp.control import request

        try:
            table = request(self.socket, "neighbors", timeout=10.0)
        except Exception:
            return 0
        return sum(n["families"].get("ipv4-unicast", {}).get("accepted", 0) for n in table)

    def converged(self, peers: int) -> bool:
        return self.paths() >= peers

    def stop(self) -> None:
        for proc in self.helpers:
            stop(proc)


class PyBGPd(Node):
    name = "pybgpd"

    def start(self, peers: tuple[SimPeer, ...], log: Any) -> Any:
        lines = ["[global]", f"asn = {ASN}", f'router_id = "{DAEMON_ADDR}"']
        lines.append(f'listen = ["{DAEMON_ADDR}"]')
        for peer in peers:
            lines += ["[[neighbors]]", f'address = "{peer.address}"', f"peer_asn = {peer.asn}"]
            lines.append('families = ["ipv4-unicast"]')
        lines += ["[[routes]]", f'prefix = "{NODE_POD_CIDR}"']
        lines += ["[policy.attach]", 'default_export = "accept"']
        config = self.dir / "pybgpd.toml"
        config.write_text("\n".join(lines) + "\n")
        argv = [str(VENV_BIN / "pybgpd"), "-c", str(config), "--socket", self.socket]
        return start_daemon(self.ns, argv, self.dir, log)


class Agent(Node):
    name = "agent"

    def start(self, peers: tuple[SimPeer, ...], log: Any) -> Any:
        seed = self.dir / "nodes.json"
        nodes = [node_object("node0", DAEMON_ADDR, NODE_POD_CIDR)]
        nodes += [node_object(f"peer{i}", p.address, p.prefixes[0]) for i, p in enumerate(peers)]
        seed.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
        server = [
            sys.executable, "-m", "kuberouter.testing.apiserver", "--no-tls",
            "--bind", "127.0.0.1", "--port", str(API_PORT), "--seed", str(seed),
        ]  # fmt: skip
        self.helpers.append(start_daemon(self.ns, server, self.dir, log))
        wait_for_api(self.ns)
        agent = [
            sys.executable, "-m", "kuberouter",
            f"--master=http://127.0.0.1:{API_PORT}", "--hostname-override=node0",
            f"--cluster-asn={ASN}", f"--bgp-control-socket={self.socket}",
            "--run-firewall=false", "--run-service-proxy=false", "--enable-cni=false",
            "--health-port=0",
        ]  # fmt: skip
        return start_daemon(self.ns, agent, self.dir, log)

    def converged(self, peers: int) -> bool:
        routes = cli(self.ns, "ip", "route", "show", "proto", KERNEL_PROTO)
        return self.paths() >= peers and len(routes.splitlines()) >= peers


def node_object(name: str, address: str, pod_cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {"addresses": [{"type": "InternalIP", "address": address}]},
    }


def wait_for_api(ns: str, timeout: float = 30.0) -> None:
    deadline = now() + timeout
    url = f"http://127.0.0.1:{API_PORT}/version"
    while now() < deadline:
        if cli(ns, "curl", "-sf", url).strip():
            return
        time.sleep(0.2)
    raise TimeoutError("the test API server did not answer")


NODES: dict[str, type[Node]] = {"pybgpd": PyBGPd, "agent": Agent}


@attrs.define
class Result:
    node: str
    peers: int
    status: str = "ok"
    converge_seconds: float | None = None  # node started -> every route everywhere
    idle_seconds: float = 0.0
    idle_cpu_percent: float | None = None  # of one core, over the idle window
    rss_mib: float | None = None  # at the end of the idle window
    peak_rss_mib: float | None = None
    all_idle_cpu: list[float | None] = attrs.Factory(list)


def measure(name: str, peers: tuple[SimPeer, ...], idle: float, workdir: Path) -> Result:
    result = Result(name, len(peers), idle_seconds=idle)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    config = {
        "peer": DAEMON_ADDR,
        "mode": "listen",
        "expect": [NODE_POD_CIDR],
        "speakers": [{"address": p.address, "asn": p.asn, "prefixes": p.prefixes} for p in peers],
    }
    with lab(peers) as net, (workdir / "node.log").open("wb") as log:
        node = NODES[name](workdir, net.daemon_ns)
        swarm = SwarmProcess(net.swarm_ns, config, workdir, log)
        started = now()
        proc = node.start(peers, log)
        try:
            swarm.wait_for("established", now() + 300)
            swarm.command("announce")
            swarm.wait_for("converged", now() + 300)
            wait_converged(node, len(peers), now() + 300)
            result.converge_seconds = now() - started
            time.sleep(5.0)  # let the last routes' work settle
            before = cpu_seconds(proc.pid)
            time.sleep(idle)
            after = cpu_seconds(proc.pid)
            if before is not None and after is not None:
                result.idle_cpu_percent = 100 * (after - before) / idle
            rss, hwm = proc_status(proc.pid, "VmRSS"), proc_status(proc.pid, "VmHWM")
            result.rss_mib = rss / 1024 if rss is not None else None
            result.peak_rss_mib = hwm / 1024 if hwm is not None else None
            swarm.status(now() + 30)  # every session still up (a closed one raises)
        except (TimeoutError, RuntimeError) as exc:
            result.status = str(exc)
        finally:
            swarm.close()
            stop(proc)
            node.stop()
    return result


def wait_converged(node: Node, peers: int, deadline: float) -> None:
    while now() < deadline:
        if node.converged(peers):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{node.name}: not every route in after {deadline:.0f}")


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row(r: Result) -> str:
    runs = "/".join(fmt(x, ".2f") for x in r.all_idle_cpu) or fmt(r.idle_cpu_percent, ".2f")
    return (
        f"{r.node:7} {r.peers:5}  converged in {fmt(r.converge_seconds, '.1f')} s  "
        f"idle CPU {fmt(r.idle_cpu_percent, '.2f')} % of a core over {r.idle_seconds:.0f} s "
        f"(runs {runs})  RSS {fmt(r.rss_mib, '.0f')} MiB  peak {fmt(r.peak_rss_mib, '.0f')} MiB"
        f"  {r.status}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=500)
    parser.add_argument("--node", default="pybgpd,agent", help="pybgpd, agent or both")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measured")
    parser.add_argument("--runs", type=int, default=1, help="runs per node; the lowest CPU kept")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 50 peers, 10 s idle")
    args = parser.parse_args(argv)
    if args.quick:
        args.peers, args.idle = min(args.peers, 50), min(args.idle, 10.0)
    raise_file_limit()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="mesh-", dir=OUT_DIR))
    peers = sim_peers(args.peers, ASN)
    results = []
    for name in args.node.split(","):
        tries = [measure(name, peers, args.idle, workdir) for _ in range(args.runs)]
        for attempt in tries:
            print(row(attempt), flush=True)
        best = min(tries, key=lambda r: (r.idle_cpu_percent is None, r.idle_cpu_percent or 0))
        best.all_idle_cpu = [r.idle_cpu_percent for r in tries]
        results.append(best)
    print()
    for result in results:
        print(row(result))
    write_json("mesh", argv, "results", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
