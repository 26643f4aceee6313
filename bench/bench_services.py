"""The service proxy at scale (issue 10 §5), each back end beside its kernel floor.

A generated cluster: --services Services (a cluster IP and port 80 each, a quarter of
them NodePorts) with --endpoints ready endpoints each, on 100 nodes (this node is "node-0").
Reported per back end, each in a throwaway network namespace:
- full sync: compile every Service (the incremental compiler, as the agent builds it from
  its store) and program an empty kernel;
- one endpoint change, from the change reaching the compiler to `apply` returning (the
  kernel holds it then): an endpoint added to a Service, then removed, `--runs` times
  each, median and worst;
- one Service added (kube-proxy's published anchor: 141 ms at 10,000 Services in
  nftables mode), and a reconcile that finds nothing to repair;
- memory: the process's VmRSS and peak VmHWM (objects, compiler and back end: what the
  agent holds for the proxy).
Anchors in the same run: one `nft -f` of the whole state (the nftables mode's floor) and
one `ipvsadm --restore` of the same IPVS services and destinations (IPVS's floor);
upstream kube-router's published 16 s per full resync at 2,700 Services.

The host kernel has no IPVS: `--backends ipvs` then runs this same program inside a QEMU
guest (tests/guest.py's kernel and share), where the CPU is emulated (TCG): its absolute
figures are slower than a real node's, the ratio to the floor measured beside them is
what compares.

    python -m bench.bench_services [--services 10000] [--endpoints 10] [--runs 15]
                                   [--backends nftables,ipvs] [--no-anchors]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_netpol import memory, ms, netns
from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.services import ServiceBackend
from kuberouter.dataplane.services.nftables import Desired, NftablesServices, Script
from kuberouter.model import EndpointSlice, Service
from kuberouter.proxy.config import ProxyConfig
from kuberouter.proxy.incremental import IncrementalCompiler
from kuberouter.proxy.ipvs_plan import PROTOCOL_NUMBERS, plan_service
from kuberouter.proxy.state import NodeFacts, ProxyState

NODE = NodeFacts(name="node-0", addresses=("192.168.0.1",), pod_cidrs=("10.128.0.0/9",))
NODES = 100
Make = Callable[[Runner], ServiceBackend]


def cluster_ip(index: int) -> str:
    return f"10.96.{index // 256}.{index % 256}"


def pod_ip(index: int) -> str:
    return f"10.{128 + index // 65536}.{index // 256 % 256}.{index % 256}"


def service(index: int) -> Service:
    port: dict[str, object] = {"name": "http", "port": 80, "targetPort": 8080}
    spec: dict[str, object] = {"clusterIP": cluster_ip(index), "clusterIPs": [cluster_ip(index)]}
    if index % 4 == 1 and index // 4 < 2700:  # a quarter are NodePorts, each its own port
        spec["type"] = "NodePort"
        port["nodePort"] = 30000 + index // 4
    spec["ports"] = [port]
    return Service.from_k8s(
        {"metadata": {"name": f"svc{index}", "namespace": "bench"}, "spec": spec}
    )


def endpoints(index: int, count: int, first: int) -> EndpointSlice:
    return EndpointSlice.from_k8s({
        "metadata": {"name": f"svc{index}-a", "namespace": "bench",
                     "labels": {"kubernetes.io/service-name": f"svc{index}"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": [pod_ip(first + n)], "nodeName": f"node-{(first + n) % NODES}"}
                      for n in range(count)],
    })  # fmt: skip


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def say(mode: str, text: str) -> None:
    print(f"{mode}: {text}", flush=True)


def run_backend(mode: str, make: Make, args: argparse.Namespace) -> None:
    config = ProxyConfig(mode="ipvs" if mode == "ipvs" else "nftables", families=(4,))
    count, per = args.services, args.endpoints
    services = [service(index) for index in range(count)]
    slices = [endpoints(index, per, index * per) for index in range(count)]
    with netns() as name:
        backend = make(Runner(name))
        compiler = IncrementalCompiler(NODE, config)
        start = time.perf_counter()
        for svc, eps in zip(services, slices, strict=True):
            compiler.set_service(svc.key, svc)
            compiler.set_slice(eps.key, eps)
        state = compiler.state()
        compiled = time.perf_counter() - start
        applied = timed(lambda: backend.apply(state, None))
        say(mode, f"full sync {compiled + applied:.2f} s (compile {compiled:.2f} s, program "
                  f"{applied:.2f} s) for {count} Services x {per} endpoints")  # fmt: skip
        changes: list[float] = []
        rng = random.Random(1)
        for _ in range(args.runs):
            index = rng.randrange(count)
            for extra in (1, 0):
                eps = endpoints(index, per + extra, index * per)
                start = time.perf_counter()
                compiler.set_slice(eps.key, eps)
                new = compiler.state()
                backend.apply(new, state)
                changes.append(time.perf_counter() - start)
                state = new
        median, worst = ms(statistics.median(changes)), ms(max(changes))
        say(mode, f"one endpoint change: median {median}, worst {worst} ({len(changes)} changes)")
        added, added_eps = service(count), endpoints(count, per, count * per)
        start = time.perf_counter()
        compiler.set_service(added.key, added)
        compiler.set_slice(added_eps.key, added_eps)
        new = compiler.state()
        backend.apply(new, state)
        say(mode, f"one Service added at {count}: {ms(time.perf_counter() - start)}")
        state = new
        stats = backend.reconcile(state)
        found = f"{stats.objects_written} repaired, {stats.objects_deleted} unused removed"
        say(mode, f"reconcile (read back: {found}): {stats.seconds:.2f} s")
        held = memory()
        say(mode, f"memory VmRSS {held['VmRSS']}, peak VmHWM {held['VmHWM']}")
        if not args.no_anchors:
            anchor(mode, state)


def anchor(mode: str, state: ProxyState) -> None:
    """The kernel floor: the same state in one tool call, into a fresh namespace."""
    with netns() as name, tempfile.NamedTemporaryFile("w", suffix=".txt") as text:
        if mode == "nftables":
            script = Script()
            NftablesServices(Runner(name))._repair(script, 4, Desired(state, 4), None)
            text.write("\n".join(script.lines()) + "\n")
            command = ["nft", "-f", text.name]
        else:
            text.write(ipvsadm_rules(state))
            command = ["ipvsadm", "--restore"]
        text.flush()
        with open(text.name) as stdin:
            start = time.perf_counter()
            subprocess.run(["ip", "netns", "exec", name, *command], stdin=stdin, check=True)
        seconds = time.perf_counter() - start
        say(mode, f"anchor `{' '.join(command[:2])}` of the same state: {seconds:.2f} s")


def ipvsadm_rules(state: ProxyState) -> str:
    flag = {
        PROTOCOL_NUMBERS["TCP"]: "-t",
        PROTOCOL_NUMBERS["UDP"]: "-u",
        PROTOCOL_NUMBERS["SCTP"]: "--sctp-service",
    }
    lines = []
    for vs in state.virtual_services():
        for service_ in plan_service(vs, state.node.addresses, False).services:
            where = f"{flag[service_.key.protocol]} {service_.key.address}:{service_.key.port}"
            lines.append(f"-A {where} -s {service_.scheduler}")
            lines += [
                f"-a {where} -r {dest.ip}:{dest.port} -m -w {dest.weight}"
                for dest in service_.dests
            ]
    return "\n".join(lines) + "\n"


def in_guest(argv: list[str]) -> None:
    """Run this program with `argv` inside a QEMU guest that has IPVS."""
    from tests.guest import _CACHED_SHARE, MODULES, _run_guest, _vng, find_kernel

    kernel, vng = find_kernel(), _vng()
    if kernel is None or vng is None:
        sys.exit("no guest kernel or vng: IPVS cannot be measured here")
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="pybgp-bench-") as scratch:
        script = Path(scratch, "run.sh")
        script.write_text("\n".join([
            "export PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            '[ "$(stat -f -c %T /run)" = tmpfs ] || mount -t tmpfs guest-run /run',
            f"for module in {' '.join(MODULES)}; do modprobe $module; done",
            f"cd {root}",
            f"exec {sys.executable} -m bench.bench_services --inside-guest {' '.join(argv)}",
        ]) + "\n")  # fmt: skip
        cmd = [vng, "--disable-kvm", "--run", str(kernel), "--user", "root",
               "--rwdir", scratch, "--cwd", str(root), f"--qemu-opts={_CACHED_SHARE}",
               "--", f"sh {script}"]  # fmt: skip
        print(_run_guest(cmd, 3600), end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backends", default="nftables,ipvs")
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument("--inside-guest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print("published: upstream kube-router resyncs 2,700 Services in 16 s; kube-proxy "
          "(nftables) adds one Service at 10,000 in 141 ms")  # fmt: skip
    for mode in args.backends.split(","):
        if mode == "nftables":
            run_backend(mode, NftablesServices, args)
        elif Path("/proc/net/ip_vs").exists() or args.inside_guest:
            from kuberouter.dataplane.services.ipvs import IpvsServices

            run_backend(mode, IpvsServices, args)
        else:
            keep = [f"--services={args.services}", f"--endpoints={args.endpoints}",
                    f"--runs={args.runs}", "--backends=ipvs"]  # fmt: skip
            keep += ["--no-anchors"] if args.no_anchors else []
            print("ipvs: in a QEMU guest (emulated CPU)")
            in_guest(keep)


if __name__ == "__main__":
    main()
