"""`kube-router-ctl service trace` and `kube-router-ctl services`.

trace: what a node does with one new connection, from YAML holding Nodes (addresses, pod
CIDRs), Services and EndpointSlices. The agent's service flags are accepted with their
own names after the command's (`--masquerade-all`, `--service-external-ip-range=...`),
and the answer is computed from the same compiled state the agent programs.

services: each Service, what is programmed for it and why: from a running agent (its
health port serves /services), or from YAML with --node like trace.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from typing import Any

from kuberouter.cli import validate
from kuberouter.ctl.inputs import InputError, read_documents
from kuberouter.model import EndpointSlice, Node, Service
from kuberouter.model.documents import parse_documents
from kuberouter.options import OptionError, Options, parse_command_line
from kuberouter.proxy.config import ProxyConfig
from kuberouter.proxy.incremental import compile_all, node_facts
from kuberouter.proxy.report import report_json, report_text
from kuberouter.proxy.state import ProxyState
from kuberouter.proxy.trace import trace


def register(groups: Any) -> None:
    group = groups.add_parser("service", help="trace a connection through the service proxy")
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    tracer = commands.add_parser(
        "trace",
        help="what a node does with one new connection",
        epilog="Agent flags (e.g. --masquerade-all) may follow, with kube-router's names.",
    )
    _add_input(tracer, required=True)
    tracer.add_argument("--from", dest="source", required=True, type=_address, metavar="SRC_IP")
    tracer.add_argument("--to", dest="destination", required=True, type=_destination,
                        metavar="DST_IP:PORT")  # fmt: skip
    tracer.add_argument("--protocol", type=str.upper, choices=("TCP", "UDP", "SCTP"),
                        default="TCP")  # fmt: skip
    tracer.add_argument("-o", "--output", choices=("json", "text"), default="json")
    tracer.set_defaults(run=run_trace, agent_flags=True)

    listing = groups.add_parser("services", help="each Service and what is programmed for it")
    _add_input(listing, required=False)
    listing.add_argument("--agent", default="http://127.0.0.1:20244",
                         help="the agent's health address (default %(default)s)")  # fmt: skip
    listing.add_argument("-o", "--output", choices=("json", "text"), default="text")
    listing.set_defaults(run=run_services, agent_flags=True)


def _add_input(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-f", "--filename", dest="files", action="append", required=required, metavar="FILE",
        help="YAML with Nodes, Services and EndpointSlices ('-' for stdin); repeatable",
    )  # fmt: skip
    parser.add_argument("--node", required=required, help="the node the answer is for")


def _address(text: str) -> str:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def _destination(text: str) -> tuple[str, int]:
    """IP:PORT, or [IPv6]:PORT."""
    host, colon, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not IP:PORT (or [IPv6]:PORT)")
    return _address(host), int(port)


def agent_options(extra: list[str]) -> Options:
    """The agent flags given after the command, checked as kube-router checks them."""
    try:
        options = parse_command_line(extra).options
        validate(options)
    except OptionError as err:
        raise InputError(str(err)) from None
    return options


def load_state(paths: list[str], node: str, options: Options) -> ProxyState:
    parsed = parse_documents(read_documents(paths))
    for problem in parsed.problems:
        print(f"kube-router-ctl: warning: skipping {problem}", file=sys.stderr)
    nodes: dict[str, Node] = parsed.of_kind("Node")
    if node not in nodes:
        raise InputError(f"node {node} not found in the input (a Node object is needed)")
    services: dict[str, Service] = parsed.of_kind("Service")
    slices: dict[str, EndpointSlice] = parsed.of_kind("EndpointSlice")
    facts = node_facts(node, nodes.values())
    return compile_all(facts, ProxyConfig.from_options(options), services, slices)


def run_trace(args: argparse.Namespace) -> int:
    state = load_state(args.files, args.node, agent_options(args.extra))
    dst, port = args.destination
    if (":" in args.source) != (":" in dst):
        raise InputError("--from and --to must be of the same address family")
    result = trace(state, args.source, dst, port, args.protocol)
    if args.output == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(f"{result.verdict} {' '.join(result.endpoints)}".rstrip())
        print(f"  masquerade: {str(result.masquerade).lower()}  ({result.reason})")
    return 0


def run_services(args: argparse.Namespace) -> int:
    if args.files:
        if not args.node:
            raise InputError("--node is needed with -f")
        state = load_state(args.files, args.node, agent_options(args.extra))
        report = report_json(state)
    else:
        report = _from_agent(args.agent)
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        print(report_text(report), end="")
    return 0


def _from_agent(base: str) -> dict[str, Any]:
    import urllib.error  # noqa: PLC0415 (only this path talks to the agent)
    import urllib.request  # noqa: PLC0415

    url = base.rstrip("/") + "/services"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            found: dict[str, Any] = json.load(answer)
            return found
    except (OSError, ValueError, urllib.error.URLError) as err:
        raise InputError(f"cannot read {url}: {err}") from None
