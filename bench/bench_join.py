"""A node joining the cluster in a box (issue 9 §5): how soon after its agent starts is its
pod CIDR in every other node's kernel?

`kube-router-ctl cluster up --nodes 10 --no-static-routes` builds the box (real agents, an
iBGP full mesh of the nodes plus the FRR top-of-rack). Then, per run: the last node's agent
is stopped (SIGTERM, no graceful restart: its route leaves every kernel, which is waited
for), `ip monitor route` watches each other node's kernel, and the agent is started again
as the box starts it. Its Node object exists already, as a kubelet registers the node
before the DaemonSet's pod starts. Reported per run, in seconds after the agent process
was started: when its first BGP session was Established (its control socket, polled every
20 ms), when the first and the last of the other nodes' kernels had the route; and the CPU
time the agent had used by then (on a busy machine the wall-clock times stretch, this does
not: it is what an idle machine could do at best).

    python -m bench.bench_join [--nodes 10] [--runs 5] [--keep] [--quick]

The box is named "bjoin" (state in a temporary directory) and taken down at the end unless
--keep. The project's bytecode is compiled first (`python -m compileall`), as an installed
agent's is. Needs root.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs

from bench.ingest_lab import REPO, VENV_BIN, cpu_seconds, now
from bench.swarm_lab import write_json
from kuberouter.cluster import agents, server
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import Node, Topology
from pybgp.control import request

NAME = "bjoin"
KERNEL_PROTO = "17"


class RouteWatch:
    """`ip monitor route` in one node's namespace: when `prefix` was added (first time)."""

    def __init__(self, node: Node, prefix: str) -> None:
        self.node, self.prefix = node, prefix
        self.added_at: float | None = None
        self.proc = subprocess.Popen(
            ["ip", "-n", node.netns, "monitor", "route"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(self.prefix) and self.added_at is None:
                self.added_at = now()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@attrs.define
class Run:
    established: float | None = None  # first session of the new agent Established
    agent_cpu: float | None = None  # its CPU seconds by then (a floor for an idle machine)
    first_kernel: float | None = None
    last_kernel: float | None = None
    per_node: dict[str, float] = attrs.Factory(dict)


def kernel_has(node: Node, prefix: str) -> bool:
    out = subprocess.run(
        ["ip", "-n", node.netns, "route", "show", prefix, "proto", KERNEL_PROTO],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return bool(out.strip())


def wait(condition: object, what: str, timeout: float = 120.0, step: float = 0.2) -> None:
    deadline = now() + timeout
    while not condition():  # type: ignore[operator]
        if now() > deadline:
            raise TimeoutError(what)
        time.sleep(step)


def established(socket: Path) -> bool:
    with contextlib.suppress(Exception):
        table = request(str(socket), "neighbors", timeout=1.0)
        return any(n["state"] == "Established" for n in table)
    return False


def one_run(topology: Topology, state: State, joining: Node) -> Run:
    others = [n for n in topology.nodes if n is not joining]
    prefix = joining.pod_cidr
    agents.stop(state, joining)
    wait(lambda: not any(kernel_has(n, prefix) for n in others), f"{prefix} withdrawn")
    time.sleep(2.0)  # the other agents' sessions to it are down and waiting
    watches = [RouteWatch(n, prefix) for n in others]
    time.sleep(0.5)  # the monitors are listening
    run = Run()
    socket = agents.control_socket(state.path, joining)
    try:
        t0 = now()
        pid = agents.start(topology, state, joining, server.kubeconfig_path(state)).pid
        while now() - t0 < 60 and any(w.added_at is None for w in watches):
            if run.established is None and established(socket):
                run.established = now() - t0
            time.sleep(0.02)
        run.agent_cpu = cpu_seconds(pid)
    finally:
        for watch in watches:
            watch.close()
    run.per_node = {w.node.name: w.added_at - t0 for w in watches if w.added_at is not None}
    if len(run.per_node) == len(watches):
        run.first_kernel, run.last_kernel = min(run.per_node.values()), max(run.per_node.values())
    return run


@contextlib.contextmanager
def box(nodes: int, keep: bool) -> Iterator[tuple[Topology, State]]:
    state_dir = Path(tempfile.mkdtemp(prefix="bjoin-", dir="/tmp"))
    # The agents' bytecode compiled, as an installed agent's is (a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 compiles every module of the project at each start).
    compile_all = [sys.executable, "-m", "compileall", "-q", "kuberouter", "pybgp"]
    subprocess.run(compile_all, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    ctl = [str(VENV_BIN / "kube-router-ctl"), "cluster"]
    where = ["--name", NAME, "--state-dir", str(state_dir)]
    try:
        subprocess.run(
            [*ctl, "up", *where, "--nodes", str(nodes), "--no-static-routes",
             "--pods-per-node", "1", "--timeout", "300"],
            check=True,
        )  # fmt: skip
        state = State.load(state_dir)
        assert state is not None
        yield Topology.of(state), state
    finally:
        if not keep:
            subprocess.run([*ctl, "down", *where], check=False)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the box up at the end")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 3 nodes, 1 run")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.runs = min(args.nodes, 3), 1
    runs = []
    with box(args.nodes, args.keep) as (topology, state):
        joining = topology.nodes[-1]
        for index in range(args.runs):
            run = one_run(topology, state, joining)
            runs.append(run)
            print(
                f"run {index + 1}: established {fmt(run.established)} s, route in the first "
                f"kernel {fmt(run.first_kernel)} s, in all {len(run.per_node)} "
                f"{fmt(run.last_kernel)} s after the agent started (its CPU by then "
                f"{fmt(run.agent_cpu)} s)",
                flush=True,
            )
    done = [r.last_kernel for r in runs if r.last_kernel is not None]
    if done:
        print(f"every kernel: median {statistics.median(done):.2f} s, best {min(done):.2f} s")
    write_json("join", argv, "runs", runs)
    return 0 if len(done) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
