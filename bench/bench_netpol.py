"""Network-policy firewall at scale (issues 6 §5 and 13 §1), with the kernel tools as anchors.

A generated cluster: 5,000 pods on 100 nodes (50 on this node, "node-0"), 1,000
namespaces of 5 pods, 2,000 policies (two per namespace: backends accept their
namespace's frontends on 8080; every pod accepts two apps of its team's namespaces on
the named port "http" and may only talk to its team's production namespaces on 53/UDP
and to 10.0.0.0/8 minus the pod range). Every pod declares "http" (8080), half "metrics".
`--large`: ten times that (50,000 pods on 1,000 nodes, 10,000 namespaces, 20,000
policies), still 50 pods on this node.

Reported, per back end (iptables-legacy, iptables-nft, nftables), each in a throwaway
network namespace:
- full sync: compile this node's state from the objects (the incremental compiler, as
  the agent builds it) and apply it to an empty kernel (`reconcile(learn=False)`, as the
  agent does); then, off that path as in the agent, reading the chains back for later
  repairs (`learn`);
- single changes, from the change reaching the compiler to `apply` returning (the rules
  are in the kernel then): a local pod added, a remote pod's label changed (it joins
  peer sets), a local pod's label changed, a policy changed; each run `--runs` times
  (change, then undo, both timed separately), the median and the worst reported;
- chains, rules and set entries; rules per local pod; agent memory (VmRSS, VmHWM).
The cluster's objects, and again after each full sync the compiler's, are moved out of
the garbage collector's sight (`gc.freeze()`), as the agent does once its caches are
synced and after its first sync.
The anchors, in the same run: `iptables-legacy-restore` and `iptables-nft-restore` of
50,000 rules, `ipset restore` of 200,000 entries.

    python -m bench.bench_netpol [--runs 9] [--large | --pods 5000 --nodes 100
                                 --namespaces 1000] [--backends iptables-legacy,...]
                                 [--no-anchors] [--profile FILE]

--profile FILE: py-spy records one extra full compile + single-change loop (untimed) as
a speedscope file. Needs root, ip netns, iptables (both variants), ipset and nft.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from bench.cluster import NODE, layout, namespace_doc, pod_doc, policy_docs
from kuberouter.dataplane import IptablesBackend, NftablesBackend, Runner
from kuberouter.dataplane.firewall import PlannedBackend
from kuberouter.model import Namespace, NetworkPolicy, Pod
from kuberouter.netpol.cluster import Cluster
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.incremental import IncrementalCompiler
from kuberouter.netpol.ruleset import DesiredState

BACKENDS = ("iptables-legacy", "iptables-nft", "nftables")


@attrs.frozen(kw_only=True)
class World:
    namespaces: tuple[Namespace, ...]
    pods: tuple[Pod, ...]
    policies: tuple[NetworkPolicy, ...]

    def cluster(self) -> Cluster:
        return Cluster.build(self.namespaces, self.pods, self.policies)


def generate(pods: int, nodes: int, namespaces: int, seed: int = 1) -> World:
    """bench.cluster's cluster as model views; two policies per namespace."""
    docs = [namespace_doc(number) for number in range(namespaces)]
    spaces = tuple(Namespace.from_k8s(doc) for doc in docs)
    found = tuple(
        Pod.from_k8s(
            pod_doc(
                place.name,
                spaces[place.namespace].name,
                place.node,
                place.slot,
                place.app,
                metrics=place.metrics,
            )
        )
        for place in layout(pods, nodes, namespaces, seed)
    )
    policies = tuple(
        NetworkPolicy.from_k8s(doc)
        for namespace in spaces
        for doc in policy_docs(namespace.name, namespace.labels["team"])
    )
    return World(namespaces=spaces, pods=found, policies=policies)


def compiler_for(world: World) -> IncrementalCompiler:
    """What the agent builds from its store at start and on every periodic reconcile."""
    compiler = IncrementalCompiler(NODE)
    compiler.set_node_ips(["192.168.0.1"])
    for namespace in world.namespaces:
        compiler.set_namespace(namespace.name, namespace)
    for pod in world.pods:
        compiler.set_pod(pod.key, pod)
    for policy in world.policies:
        compiler.set_policy(policy.key, policy)
    return compiler


# -- single changes: (change, undo), each a function of the compiler --------------------

Change = Callable[[IncrementalCompiler], None]


def changes(world: World) -> dict[str, tuple[Change, Change]]:
    local = [pod for pod in world.pods if pod.node_name == NODE]
    backend = next(pod for pod in local if pod.labels["role"] == "backend")
    teams = {namespace.name: namespace.labels["team"] for namespace in world.namespaces}
    remote = next(  # joins the peers of backend's allow-team policy
        pod
        for pod in world.pods
        if pod.node_name != NODE
        and pod.labels["app"] == "app-3"
        and teams[pod.namespace] == teams[backend.namespace]
    )
    new = attrs.evolve(backend, name="pod-new", ips=("10.100.0.250",))
    policy = next(p for p in world.policies if p.namespace == backend.namespace)
    wider = NetworkPolicy.from_k8s(
        {
            "kind": "NetworkPolicy",
            "metadata": {"namespace": policy.namespace, "name": policy.name},
            "spec": {
                "podSelector": {"matchLabels": {"role": "backend"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                        "ports": [{"port": 8080}, {"port": 8443}],
                    }
                ],
            },
        }
    )

    def relabel(pod: Pod, app: str) -> Change:
        changed = attrs.evolve(pod, labels=type(pod.labels)({**pod.labels, "app": app}))
        return lambda compiler: compiler.set_pod(pod.key, changed)

    def put(pod: Pod | None, key: str) -> Change:
        return lambda compiler: compiler.set_pod(key, pod)

    def set_policy(value: NetworkPolicy) -> Change:
        return lambda compiler: compiler.set_policy(value.key, value)

    return {
        "local pod added": (put(new, new.key), put(None, new.key)),
        "remote pod label changed": (relabel(remote, "app-0"), relabel(remote, "app-3")),
        "local pod label changed": (
            relabel(backend, "app-1"),
            relabel(backend, backend.labels["app"]),
        ),
        "policy changed": (set_policy(wider), set_policy(policy)),
    }


# -- the kernel side --------------------------------------------------------------------

_names = (f"bnp{os.getpid() % 100000}{n}"[:15] for n in itertools.count())


@contextlib.contextmanager
def netns() -> Iterator[str]:
    name = next(_names)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def make_backend(kind: str, runner: Runner) -> PlannedBackend:
    if kind == "nftables":
        return NftablesBackend(runner)
    return IptablesBackend(runner, variant="legacy" if kind == "iptables-legacy" else "nft")


@attrs.frozen
class Spent:
    """Wall-clock seconds, and CPU seconds of this process and the tools it ran: on a
    busy machine the CPU figure is the steadier guide to what an idle one would show."""

    wall: float
    cpu: float

    @classmethod
    def now(cls) -> Spent:
        tools = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(time.perf_counter(), time.process_time() + tools.ru_utime + tools.ru_stime)

    def __sub__(self, start: Spent) -> Spent:
        return Spent(self.wall - start.wall, self.cpu - start.cpu)

    def __add__(self, other: Spent) -> Spent:
        return Spent(self.wall + other.wall, self.cpu + other.cpu)


@attrs.frozen(kw_only=True)
class BackendResult:
    kind: str
    compile: Spent
    apply: Spent
    learn: Spent  # reading the chains back, after the sync
    changes: dict[str, list[Spent]]  # name -> every change and undo


def run_backend(kind: str, world: World, runs: int) -> BackendResult:
    with netns() as name:
        backend = make_backend(kind, Runner(name))
        start = Spent.now()
        compiler = compiler_for(world)
        desired = compiler.state()
        compiled = Spent.now()
        backend.reconcile(desired, learn=False)
        applied = Spent.now()
        backend.learn(desired)
        learned = Spent.now()
        gc.collect()
        gc.freeze()  # as the agent after its initial sync
        timings: dict[str, list[Spent]] = {}
        for what, (change, undo) in changes(world).items():
            for _ in range(runs):
                for step in (change, undo):
                    spent, desired = timed_change(compiler, backend, desired, step)
                    timings.setdefault(what, []).append(spent)
        assert not backend.reconcile(desired).changed, "incremental applies left drift"
        gc.unfreeze()
        return BackendResult(
            kind=kind,
            compile=compiled - start,
            apply=applied - compiled,
            learn=learned - applied,
            changes=timings,
        )


def timed_change(
    compiler: IncrementalCompiler, backend: PlannedBackend, previous: DesiredState, step: Change
) -> tuple[Spent, DesiredState]:
    start = Spent.now()
    step(compiler)
    desired = compiler.state()
    stats = backend.apply(desired, previous)
    spent = Spent.now() - start
    assert not stats.repaired and stats.changed, stats
    return spent, desired


def anchors() -> dict[str, Spent]:
    """The kernel tools alone, each in a fresh namespace."""
    rules = ["*filter"]
    for chain in range(500):
        rules.append(f":ANCHOR-{chain} - [0:0]")
    for number in range(50_000):
        address = f"10.{number // 65536}.{number // 256 % 256}.{number % 256}"
        rules.append(f"-A ANCHOR-{number % 500} -s {address}/32 -p tcp --dport 80 -j ACCEPT")
    iptables_text = "\n".join([*rules, "COMMIT"]) + "\n"
    lines = []
    for number in range(20):
        lines.append(f"create anchor-{number} hash:ip family inet")
        lines += [f"add anchor-{number} 10.{number}.{i // 256}.{i % 256}" for i in range(10_000)]
    ipset_text = "\n".join(lines) + "\n"
    found = {}
    for tool, text in (
        ("iptables-legacy-restore", iptables_text),
        ("iptables-nft-restore", iptables_text),
        ("ipset", ipset_text),
    ):
        with netns() as name:
            argv = ["ipset", "restore"] if tool == "ipset" else [tool]
            start = Spent.now()
            Runner(name).run(*argv, input=text)
            found[tool] = Spent.now() - start
    return found


# -- reporting --------------------------------------------------------------------------


def counts(desired: DesiredState) -> dict[str, int]:
    rulesets = desired.rulesets.values()
    return {
        "chains": sum(len(r.chains) for r in rulesets),
        "rules": sum(len(c.rules) for r in rulesets for c in r.chains.values()),
        "sets": sum(len(r.sets) for r in rulesets),
        "set entries": sum(
            len(s.entries) + len(s.nomatch) for r in rulesets for s in r.sets.values()
        ),
    }


def memory() -> dict[str, str]:
    found = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = value.strip()
    return found


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def with_cpu(spent: Spent) -> str:
    return f"{ms(spent.wall)} ({ms(spent.cpu)})"


def spread(spents: list[Spent]) -> str:
    walls = [spent.wall for spent in spents]
    cpu = statistics.median(spent.cpu for spent in spents)
    return f"{ms(statistics.median(walls))} ({ms(cpu)}; {ms(max(walls))})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument(
        "--large",
        action="store_true",
        help="--pods 50000 --nodes 1000 --namespaces 10000 (issue 13's cluster)",
    )
    parser.add_argument("--runs", type=int, default=9, help="of each single change")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument("--profile", help="py-spy a compile + change loop into FILE")
    args = parser.parse_args(argv)
    if args.large:
        args.pods, args.nodes, args.namespaces = 50_000, 1_000, 10_000
    return args


def profile(path: str, args: argparse.Namespace) -> str:
    """Record this program's compile-only mode under py-spy (raw stacks into `path`);
    return the functions with the most samples on top of the stack."""
    command = [sys.executable, "-m", "bench.bench_netpol", "--compile-loop"]
    command += [f"--pods={args.pods}", f"--nodes={args.nodes}", f"--namespaces={args.namespaces}"]
    spy = [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-o", path]
    subprocess.run([*spy, "-f", "raw", "-r", "250", "--", *command], check=True)
    leaves: dict[str, int] = {}
    total = 0
    with open(path, encoding="utf-8") as stacks:
        for line in stacks:
            stack, _, samples = line.rstrip().rpartition(" ")
            leaf = stack.rsplit(";", 1)[-1]
            leaves[leaf] = leaves.get(leaf, 0) + int(samples)
            total += int(samples)
    top = sorted(leaves.items(), key=lambda item: -item[1])[:12]
    return "\n".join(f"{100 * n / total:5.1f}%  {leaf}" for leaf, n in top)


def compile_loop(world: World, rounds: int = 20) -> None:
    """Untimed work for the profiler: full compiles, then rounds of single changes."""
    compiler = compiler_for(world)
    compiler.state()
    compile_node(world.cluster(), NODE)
    for _ in range(rounds):
        for change, undo in changes(world).values():
            for step in (change, undo):
                step(compiler)
                compiler.state()


def main(argv: list[str] | None = None) -> int:
    if argv is None and "--compile-loop" in sys.argv:
        rest = [word for word in sys.argv[1:] if word != "--compile-loop"]
        args = parse_args(rest)
        compile_loop(generate(args.pods, args.nodes, args.namespaces))
        return 0
    args = parse_args(argv)
    base = memory()
    start = time.perf_counter()
    world = generate(args.pods, args.nodes, args.namespaces)
    generated = time.perf_counter() - start
    gc.collect()
    gc.freeze()  # as the agent once its caches are synced
    reference = time_it(lambda: compile_node(world.cluster(), NODE))
    incremental = time_it(lambda: compiler_for(world).state())
    found = counts(compiler_for(world).state())
    local = sum(1 for pod in world.pods if pod.node_name == NODE)
    print(
        f"cluster: {len(world.pods)} pods on {args.nodes} nodes ({local} on {NODE}), "
        f"{len(world.namespaces)} namespaces, {len(world.policies)} policies "
        f"(generated in {generated:.2f} s)"
    )
    print(
        f"this node: {found['chains']} chains, {found['rules']} rules "
        f"({found['rules'] / local:.1f} per local pod), {found['sets']} sets, "
        f"{found['set entries']} set entries"
    )
    print(
        f"compile from scratch: compile_node {ms(reference)}, "
        f"incremental compiler {ms(incremental)}"
    )
    results = [run_backend(kind, world, args.runs) for kind in args.backends.split(",")]
    after = memory()
    print()
    rows = []
    for result in results:
        full = result.compile + result.apply
        row = [result.kind, *(with_cpu(spent) for spent in (result.compile, result.apply, full))]
        rows.append([*row, with_cpu(result.learn)])
    header = ["back end", "compile", "apply", "full sync", "then: chains read back"]
    print("wall-clock time (CPU time of the bench and its tools):")
    print(table(header, rows))
    print()
    names = list(results[0].changes) if results else []
    rows = [[what] + [spread(r.changes[what]) for r in results] for what in names]
    print(
        f"single change to programmed, median (CPU median; worst) of {args.runs} changes"
        f" + {args.runs} undos:"
    )
    print(table(["change", *(r.kind for r in results)], rows))
    print()
    print(
        f"memory: VmRSS {base.get('VmRSS')} at start, {after.get('VmRSS')} at the end "
        f"(peak VmHWM {after.get('VmHWM')})"
    )
    if not args.no_anchors:
        found_anchors = anchors()
        print()
        print(
            table(
                ["anchor", "time"],
                [
                    [
                        "iptables-legacy-restore, 50,000 rules",
                        with_cpu(found_anchors["iptables-legacy-restore"]),
                    ],
                    [
                        "iptables-nft-restore, 50,000 rules",
                        with_cpu(found_anchors["iptables-nft-restore"]),
                    ],
                    ["ipset restore, 200,000 entries", with_cpu(found_anchors["ipset"])],
                ],
            )
        )
    if args.profile:
        print(f"\nprofile of a compile + change loop ({args.profile}), top of stack:")
        print(profile(args.profile, args))
    return 0


def time_it(work: Callable[[], Any], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    sys.exit(main())
