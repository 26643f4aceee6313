"""`pybgp monitor [rib|neighbor [ADDR]] [-a ipv4|ipv6] [-j]`: best-path and neighbour-state
changes as they happen, over pybgpd's control socket (a streaming reply), the way
`gobgp monitor` shows them: one line per change, or one JSON object per line with `-j`."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pybgp.client_cli import add_json_option
from pybgp.control import ControlError, request_stream


def add_command(commands: Any) -> None:
    monitor = commands.add_parser(
        "monitor",
        help="stream best-path and neighbour-state changes as they happen",
        description="pybgp monitor [rib|neighbor [ADDR]] [-a ipv4|ipv6] [-j] [--count N]",
    )
    monitor.add_argument(
        "what", nargs="?", choices=["rib", "neighbor"], help="only best paths, or only states"
    )
    monitor.add_argument("address", nargs="?", help="with neighbor: only this neighbour")
    monitor.add_argument("-a", "--family", choices=["ipv4", "ipv6"], help="address family")
    monitor.add_argument("--count", type=int, metavar="N", help="stop after N changes")
    add_json_option(monitor)
    monitor.set_defaults(run=run_monitor)


def run_monitor(args: argparse.Namespace) -> int:
    if args.address and args.what != "neighbor":
        raise ControlError("monitor: an address goes with `monitor neighbor ADDR`")
    if args.count is not None and args.count < 1:
        raise ControlError("monitor: --count must be at least 1")
    events = request_stream(
        args.socket,
        "monitor",
        rib=args.what != "neighbor",
        peers=args.what != "rib",
        family=args.family,
        address=args.address,
    )
    seen = 0
    try:
        for event in events:
            line = json.dumps(event) if args.json else event_line(event)
            print(line, flush=True)
            seen += 1
            if seen == args.count:
                break
    finally:
        events.close()
    return 0


def event_line(event: dict[str, Any]) -> str:
    """`12:00:01 [ROUTE] 10.1.0.0/24 via 10.0.0.2 as-path 65001`, `[WITHDRAW] 10.1.0.0/24`,
    `[NEIGH] 10.0.0.2 Established (was OpenConfirm)`."""
    when = time.strftime("%H:%M:%S", time.localtime(event.get("time", time.time())))
    if event.get("type") == "peer-state":
        return f"{when} [NEIGH] {event['address']} {event['new']} (was {event['old']})"
    if event.get("withdrawn"):
        return f"{when} [WITHDRAW] {event['prefix']}"
    hops = ",".join(event["next_hops"])
    return f"{when} [ROUTE] {event['prefix']} via {hops} as-path {event['as_path'] or '-'}"
