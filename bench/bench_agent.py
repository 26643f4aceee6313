"""The whole agent at scale, under churn (issue 13 §2).

The real agent (`python -m kuberouter`: watch layer, store, firewall, and every other
controller its flags switch on) runs against the project's test API server
(bench/agent_server.py) holding bench.cluster's cluster: 50,000 pods with realistic
bodies on 1,000 nodes, 10,000 namespaces, 20,000 policies, 10,000 Services with their
EndpointSlices. Both run in a throwaway network namespace (the firewall programs its
kernel there), each in its own process: the agent's memory is its own.

Reported:
- from the agent's start, the time to its caches synced and to its first full firewall
  sync (its log lines, stamped as they arrive);
- steady memory (VmRSS) once synced, and what the store keeps per 1,000 pods (measured
  apart, in this process, with tracemalloc: each pod's JSON parsed and stored as the
  watch layer does);
- under `--churn-rate` pod changes per second for `--churn-seconds` (creates, deletes,
  label changes, readiness flips, with the EndpointSlice updates they cause): each
  change's latency from its watch event reaching the agent to the kernel holding its
  effect (the agent's kube_router_controller_policy_change_to_programmed_seconds
  histogram: median and p99 by interpolation within its buckets), the agent's RSS over
  time, and the relists the watch needed (none is the target).

    python -m bench.bench_agent [--short] [--churn-rate 100] [--churn-seconds 600]
                                [--profile FILE] [-- AGENT FLAGS...]

Everything after `--` goes to the agent, after the bench's own --kubeconfig,
--hostname-override, --metrics-addr and --metrics-port: with no flags it runs with the
agent's defaults (every controller on, as upstream), so the routing and service-proxy
controllers join in as they arrive (the pod network's CNI file goes to a scratch
directory, never the host's /etc; where the kernel has no IPVS the service proxy runs in
its nftables mode, unless the flags choose one). The report counts the proxy's and the
routing controller's syncs, and gives the machine's load average. `--short`: 5,000 pods,
100 nodes, 1,000 namespaces and Services, 30 s of churn: a quick check. `--profile FILE`:
the agent runs under py-spy (raw stacks into FILE; it slows the agent down: not for
figures). Needs root and `ip netns`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator, Sequence
from typing import IO

from bench.agent_server import Cluster
from bench.bench_netpol import memory, ms, table
from bench.cluster import NODE, node_ip
from kuberouter.controllers.proxy import ipvs_available
from kuberouter.k8s.client import RESOURCES_BY_KIND, convert
from kuberouter.k8s.store import Store
from kuberouter.podnet.desired import CNI_CONF_ENV

METRICS_PORT = 9161
LATENCY = "kube_router_controller_policy_change_to_programmed_seconds"
SYNC_TIME = "kube_router_controller_iptables_sync_time"
PROXY_SYNCS = "kube_router_controller_ipvs_services_sync_time_count"
PROXY_SERVICES = "kube_router_controller_ipvs_services"
ROUTES_SYNCS = "kube_router_controller_routes_sync_time_count"
STARTUP_TIMEOUT = 300.0


# -- the agent's side ------------------------------------------------------------------


class Agent:
    """The agent process; its stderr lines are kept with the time each arrived."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,))
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self.lines.append((time.monotonic(), line.rstrip()))

    def wait_for(self, pattern: str, timeout: float) -> float:
        """Seconds from the start to the first log line matching `pattern`."""
        found = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.lines):
                if found.search(line):
                    return when - self.started
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        tail = "\n".join(line for _, line in self.lines[-20:])
        raise RuntimeError(f"the agent never logged {pattern!r}; its last lines:\n{tail}")

    def cpu_seconds(self) -> float:
        """CPU time of the agent and of the tools it ran (and waited for)."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # py-spy, when profiling, then writes its file
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)


def scrape() -> dict[str, float]:
    """The agent's /metrics as {"name{labels}": value}."""
    url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def histogram(
    name: str, before: dict[str, float], after: dict[str, float]
) -> list[tuple[float, float]]:
    """(upper bound in seconds, count at or below it) of a histogram over the churn."""
    buckets = []
    for key, value in after.items():
        bound = re.fullmatch(name + r'_bucket\{le="([^"]+)"\}', key)
        if bound:
            buckets.append((float(bound.group(1)), value - before.get(key, 0.0)))
    return sorted(buckets)


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The q-quantile, linear within the bucket that holds it (as Prometheus does)."""
    total = buckets[-1][1] if buckets else 0.0
    low, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= q * total:
            if bound == float("inf"):
                return low
            share = (q * total - below) / (count - below) if count > below else 1.0
            return low + (bound - low) * share
        low, below = bound, count
    return low


def counter_sum(metrics: dict[str, float], name: str) -> float:
    return sum(value for key, value in metrics.items() if key.startswith(name + "{"))


# -- the store's memory ----------------------------------------------------------------


def store_bytes_per_1000_pods(cluster: Cluster) -> tuple[float, float]:
    """(bytes per 1,000 pods, MiB for every kind) the agent's store keeps, each object's
    JSON parsed and converted as the watch layer does."""
    docs = cluster.documents()
    store = Store()
    gc.collect()
    tracemalloc.start()
    pods_before = tracemalloc.get_traced_memory()[0]
    pods = 0
    for doc in docs:
        if doc["kind"] == "Pod":
            raw = json.loads(json.dumps(doc))
            store.apply("Pod", f"{doc['metadata']['namespace']}/{doc['metadata']['name']}",
                        convert(RESOURCES_BY_KIND["Pod"], raw))  # fmt: skip
            pods += 1
    pods_after = tracemalloc.get_traced_memory()[0]
    for doc in docs:
        if doc["kind"] != "Pod":
            raw = json.loads(json.dumps(doc))
            meta = doc["metadata"]
            key = f"{meta['namespace']}/{meta['name']}" if "namespace" in meta else meta["name"]
            store.apply(doc["kind"], key, convert(RESOURCES_BY_KIND[doc["kind"]], raw))
    everything = tracemalloc.get_traced_memory()[0] - pods_before
    tracemalloc.stop()
    return (pods_after - pods_before) / pods * 1000, everything / 2**20


# -- one run ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    own, agent_flags = list(argv), []
    if "--" in own:
        at = own.index("--")
        own, agent_flags = own[:at], own[at + 1 :]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--namespaces", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--churn-rate", type=float, default=100.0, help="pod changes per second")
    parser.add_argument("--churn-seconds", type=float, default=600.0)
    parser.add_argument("--short", action="store_true", help="a small cluster, 30 s of churn")
    parser.add_argument("--profile", help="run the agent under py-spy, raw stacks into FILE")
    parser.add_argument("--in-netns", help=argparse.SUPPRESS)
    args = parser.parse_args(own)
    if args.short:
        args.pods, args.nodes, args.namespaces, args.services = 5_000, 100, 1_000, 1_000
        args.churn_seconds = min(args.churn_seconds, 30.0)
    return args, agent_flags


@contextlib.contextmanager
def server(args: argparse.Namespace, kubeconfig: str) -> Iterator[subprocess.Popen[str]]:
    argv = [sys.executable, "-m", "bench.agent_server", f"--kubeconfig={kubeconfig}"]
    argv += [f"--{name}={getattr(args, name)}" for name in ("pods", "nodes", "namespaces")]
    argv.append(f"--services={args.services}")
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError("the API server process did not start")
        print(f"API server: the cluster loaded in {ready[1]} s")
        yield process
    finally:
        process.kill()
        process.wait()


def run(args: argparse.Namespace, agent_flags: list[str]) -> int:
    cluster = Cluster(args.pods, args.nodes, args.namespaces, args.services)
    per_1000, store_mib = store_bytes_per_1000_pods(cluster)
    del cluster
    gc.collect()
    print(
        f"cluster: {args.pods} pods on {args.nodes} nodes, {args.namespaces} namespaces, "
        f"{2 * args.namespaces} policies, {args.services} Services with EndpointSlices"
    )
    print(
        f"store: {per_1000 / 1024:.0f} KiB per 1,000 pods; {store_mib:.0f} MiB for the whole "
        f"cluster (tracemalloc, in this process: {memory().get('VmHWM')} peak here)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        kubeconfig = os.path.join(scratch, "kubeconfig")
        with server(args, kubeconfig) as api:
            argv = [sys.executable, "-m", "kuberouter", f"--kubeconfig={kubeconfig}"]
            if args.profile:
                spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
                argv = [spy, "record", "-o", args.profile, "-f", "raw", "-r", "200", "--", *argv]
            argv += [f"--hostname-override={NODE}", "--metrics-addr=127.0.0.1"]
            argv += [f"--metrics-port={METRICS_PORT}", *proxy_mode(agent_flags), *agent_flags]
            # The pod-network controller writes its CNI file here, not in the host's /etc.
            cni = {CNI_CONF_ENV: os.path.join(scratch, "10-kuberouter.conflist")}
            agent = Agent(argv, {**os.environ, **cni})
            try:
                return measure(args, agent, api)
            finally:
                agent.stop()


def proxy_mode(agent_flags: Sequence[str]) -> list[str]:
    """The service proxy's nftables mode where this kernel has no IPVS (the agent would
    leave its proxy off), unless the flags choose a mode."""
    chosen = ("--service-proxy-mode", "--run-service-proxy=false")
    if any(flag.startswith(chosen) for flag in agent_flags) or ipvs_available():
        return []
    print("no IPVS in this kernel: the agent's service proxy runs in its nftables mode")
    return ["--service-proxy-mode=nftables"]


def measure(args: argparse.Namespace, agent: Agent, api: subprocess.Popen[str]) -> int:
    synced = agent.wait_for(r"caches synced", STARTUP_TIMEOUT)
    first = agent.wait_for(r"firewall initial sync", STARTUP_TIMEOUT)
    started_cpu = agent.cpu_seconds()
    settle = 3.0 if args.short else 15.0
    time.sleep(settle)
    steady = agent.rss_mib()
    print(
        f"start to caches synced: {synced:.2f} s; to the first full firewall sync: {first:.2f} s"
        f" (the agent's CPU time by then, tools included: {started_cpu:.2f} s)"
    )
    print(f"steady RSS ({settle:.0f} s after): {steady:.0f} MiB")
    before, cpu_before = scrape(), agent.cpu_seconds()
    assert api.stdin is not None and api.stdout is not None
    api.stdin.write(f"churn {args.churn_rate} {args.churn_seconds}\n")
    api.stdin.flush()
    samples = sample_rss(agent, api, every=2.0 if args.short else 10.0)
    done = api.stdout.readline().split()
    time.sleep(1.0)  # the last changes' syncs
    after, cpu = scrape(), agent.cpu_seconds() - cpu_before
    report(args, samples, done, before, after)
    took = float(done[2]) + 1.0
    print(f"agent CPU time under churn, tools included: {cpu:.1f} s ({cpu / took:.0%} of a core)")
    return 0


def sample_rss(agent: Agent, api: subprocess.Popen[str], every: float) -> list[tuple[float, float]]:
    """(seconds into the churn, RSS MiB) until the churn ends."""
    start, samples = time.monotonic(), []
    assert api.stdout is not None
    while True:
        samples.append((time.monotonic() - start, agent.rss_mib()))
        readable = select_readable(api.stdout, every)
        if readable:
            return samples


def select_readable(stream: IO[str], timeout: float) -> bool:
    return bool(select.select([stream], [], [], timeout)[0])


def report(
    args: argparse.Namespace,
    samples: list[tuple[float, float]],
    done: list[str],
    before: dict[str, float],
    after: dict[str, float],
) -> None:
    changes, took, lag = int(done[1]), float(done[2]), float(done[3])
    buckets = histogram(LATENCY, before, after)
    syncs = histogram(SYNC_TIME, before, after)
    count = buckets[-1][1] if buckets else 0
    print(
        f"\nchurn: {changes} pod changes in {took:.0f} s ({changes / took:.0f}/s; the driver "
        f"was at most {lag * 1000:.0f} ms behind schedule)"
    )
    rows = [
        ["changes the firewall programmed", f"{count:.0f}"],
        ["change to programmed, median", ms(quantile(buckets, 0.5))],
        ["change to programmed, p99", ms(quantile(buckets, 0.99))],
        ["... at most 100 ms", f"{_share(buckets, 0.1):.2%}"],
        ["firewall syncs (compile and apply)", f"{syncs[-1][1] if syncs else 0:.0f}"],
        ["sync time, median", ms(quantile(syncs, 0.5))],
        ["sync time, p99", ms(quantile(syncs, 0.99))],
    ]
    for name in ("kube_router_watch_relists_total", "kube_router_watch_restarts_total"):
        rows.append([name, f"{counter_sum(after, name) - counter_sum(before, name):.0f}"])
    # The other controllers in the same agent (absent: switched off by a flag).
    for what, name in (("service proxy", PROXY_SYNCS), ("routing", ROUTES_SYNCS)):
        if name in after:
            rows.append([f"{what} syncs", f"{after[name] - before.get(name, 0.0):.0f}"])
    if PROXY_SERVICES in after:
        rows.append(["services the proxy programmed", f"{after[PROXY_SERVICES]:.0f}"])
    rows.append(["machine load average (1 min) at the end", f"{os.getloadavg()[0]:.1f}"])
    print(table(["under churn", "value"], rows))
    first_minute = [rss for when, rss in samples if when >= 60] or [samples[-1][1]]
    print(
        f"\nRSS under churn: {samples[0][1]:.0f} MiB at its start, {first_minute[0]:.0f} MiB "
        f"after a minute, {max(rss for _, rss in samples):.0f} MiB at most, "
        f"{samples[-1][1]:.0f} MiB at the end"
    )
    print("RSS over time (s: MiB): " + ", ".join(f"{t:.0f}: {r:.0f}" for t, r in samples))


def _share(buckets: list[tuple[float, float]], bound: float) -> float:
    total = buckets[-1][1] if buckets else 0.0
    within = next((count for limit, count in buckets if limit >= bound), total)
    return within / total if total else 1.0


# -- the network namespace -------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args, agent_flags = parse_args(sys.argv[1:] if argv is None else argv)
    if args.in_netns:
        return run(args, agent_flags)
    name = f"bag{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        # The namespace is node-0: its Node's InternalIP is an address of its own.
        address = f"{node_ip(int(NODE.rpartition('-')[2]))}/32"
        subprocess.run(["ip", "-n", name, "addr", "add", address, "dev", "lo"], check=True)
        inner = [sys.executable, "-m", "bench.bench_agent", f"--in-netns={name}"]
        own = sys.argv[1:] if argv is None else list(argv)
        if "--" in own:
            own = own[: own.index("--")]
        command = ["ip", "netns", "exec", name, *inner, *own, "--", *agent_flags]
        return subprocess.run(command, check=False).returncode
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


if __name__ == "__main__":
    sys.exit(main())
