"""`kube-router-ctl policy simulate|explain`: what the firewall would do with a cluster
described in YAML (Namespaces, Pods, NetworkPolicies; multi-document or `kind: List`).

Verdicts come from the compiled rules (kuberouter.netpol.simulate), never from a second
reading of the policies. Invalid objects are reported on stderr and skipped; unusable
input (missing file, bad YAML, unknown pod) is one error line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kuberouter.ctl.inputs import InputError, read_documents
from kuberouter.ctl.policy_text import explain_json, explain_text
from kuberouter.model import Pod
from kuberouter.model.objects import PROTOCOLS
from kuberouter.netpol.explain import explain
from kuberouter.netpol.loader import Loaded, load_objects
from kuberouter.netpol.simulate import Simulator
from kuberouter.netpol.truthtable import format_table


def register(groups: Any) -> None:
    group = groups.add_parser("policy", help="simulate and explain network policies")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    simulate = commands.add_parser("simulate", help="reachability matrix of every pod pair")
    _add_input(simulate)
    simulate.add_argument("--port", type=_port, default=80, help="destination port (80)")
    simulate.add_argument("--protocol", type=_protocol, default="TCP", help="TCP, UDP or SCTP")
    simulate.add_argument("--ip-family", type=int, choices=(4, 6), help="only this family")
    simulate.add_argument("-o", "--output", choices=("table", "json"), default="table")
    simulate.set_defaults(run=run_simulate)

    why = commands.add_parser("explain", help="why one flow is allowed or blocked")
    _add_input(why)
    why.add_argument("--from", dest="source", required=True, metavar="NS/POD")
    why.add_argument("--to", dest="destination", required=True, metavar="NS/POD")
    why.add_argument("--port", dest="port_spec", type=_port_spec, default=(80, "TCP"),
                     metavar="PORT[/PROTOCOL]", help="e.g. 80/TCP (default)")  # fmt: skip
    why.add_argument("-o", "--output", choices=("text", "json"), default="text")
    why.set_defaults(run=run_explain)


def _add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", dest="files", action="append", required=True, metavar="FILE",
        help="YAML with Namespaces, Pods and NetworkPolicies ('-' for stdin); repeatable",
    )  # fmt: skip


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _protocol(text: str) -> str:
    if text.upper() not in PROTOCOLS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of TCP, UDP, SCTP")
    return text.upper()


def _port_spec(text: str) -> tuple[int, str]:
    number, _, protocol = text.partition("/")
    return _port(number), _protocol(protocol or "TCP")


def run_simulate(args: argparse.Namespace) -> int:
    loaded = _load(args.files)
    sim = Simulator(loaded.cluster)
    matrix = sim.matrix(args.port, args.protocol, family=args.ip_family)
    if args.output == "json":
        print(json.dumps(matrix, indent=2))
    else:
        print(format_table(matrix), end="")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    loaded = _load(args.files)
    src, dst = _pod(loaded, args.source), _pod(loaded, args.destination)
    port, protocol = args.port_spec
    sim = Simulator(loaded.cluster)
    verdicts = sim.pod_verdicts(src, dst, port, protocol)
    reports = [(verdict, *explain(sim, verdict)) for verdict in verdicts]
    if args.output == "json":
        print(json.dumps(explain_json(sim, src, dst, port, protocol, reports), indent=2))
    else:
        print(explain_text(sim, src, dst, port, protocol, reports), end="")
    return 0


def _pod(loaded: Loaded, key: str) -> Pod:
    pod = loaded.cluster.pods_by_key.get(key)
    if pod is None:
        raise InputError(f"pod {key} not found in the input (expected NAMESPACE/NAME)")
    return pod


def _load(paths: list[str]) -> Loaded:
    loaded = load_objects(read_documents(paths))
    for problem in loaded.problems:
        print(f"kube-router-ctl: warning: skipping {problem}", file=sys.stderr)
    for kind, count in sorted(loaded.ignored.items()):
        print(f"kube-router-ctl: note: ignoring {count} object(s) of kind {kind}", file=sys.stderr)
    if not loaded.cluster.pods:
        raise InputError(f"no usable Pod objects in {', '.join(paths)}")
    return loaded
