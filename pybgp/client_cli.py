"""`pybgp neighbor ...` and `pybgp rib ...`: talk to pybgpd over its control socket, the way
`gobgp` talks to `gobgpd`. Tables for people, `-j` for JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pybgp.control import ControlError, request

_NEIGHBOR_ACTIONS = ("reset", "softreset", "adj-in", "adj-out")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """`-j` after the subcommand too (`pybgp neighbor -j`), as gobgp takes it; SUPPRESS
    keeps a `-j` given before the subcommand."""
    parser.add_argument(
        "-j", "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON"
    )


def add_commands(commands: Any) -> None:
    neighbor = commands.add_parser(
        "neighbor",
        help="show neighbours, reset one, or show what it sent us and what we send it",
        description="pybgp neighbor [ADDR] | neighbor ADDR reset|softreset | "
        "neighbor ADDR adj-in|adj-out [-a ipv4|ipv6]",
    )
    neighbor.add_argument("address", nargs="?", help="one neighbour (default: all)")
    neighbor.add_argument(
        "action",
        nargs="?",
        choices=_NEIGHBOR_ACTIONS,
        help="reset the session, or soft-reset (route refresh in, re-advertise out); "
        "adj-in: the routes it sent us, as received (before import policy); adj-out: the "
        "routes we send it (after export policy)",
    )
    neighbor.add_argument("-a", "--family", choices=["ipv4", "ipv6"], help="address family")
    add_json_option(neighbor)
    neighbor.set_defaults(run=run_neighbor)
    rib = commands.add_parser(
        "rib",
        help="show the Loc-RIB, or add/del an originated route",
        description="pybgp rib [-a ipv4|ipv6] [PREFIX] | rib add PREFIX [nexthop X] "
        "[community A:B ...] [large-community A:B:C ...] [med N] [local-pref N] | rib del PREFIX",
    )
    rib.add_argument("-a", "--family", choices=["ipv4", "ipv6"], help="address family")
    rib.add_argument(
        "--explain",
        metavar="NEIGHBOR",
        help="with PREFIX: which policy statement lets the route go to NEIGHBOR, or not",
    )
    rib.add_argument(
        "--import",
        dest="explain_import",
        action="store_true",
        help="with --explain: the import side (the route NEIGHBOR sent us)",
    )
    rib.add_argument("words", nargs="*", help="PREFIX, or add/del PREFIX [attributes]")
    add_json_option(rib)
    rib.set_defaults(run=run_rib)
    policy = commands.add_parser(
        "policy", help="show the routing policies and which neighbour gets which"
    )
    add_json_option(policy)
    policy.set_defaults(run=run_policy)


def run_neighbor(args: argparse.Namespace) -> int:
    if args.address in _NEIGHBOR_ACTIONS:  # `neighbor reset`: the address was left out
        args.action, args.address = args.address, None
    if args.action and not args.address:
        raise ControlError(f"neighbor {args.action}: which neighbour?")
    if args.action in ("adj-in", "adj-out"):
        return _adj_rib(args)
    if args.family:
        raise ControlError("neighbor: -a goes with adj-in or adj-out")
    if args.action:
        request(
            args.socket, "neighbor_reset", address=args.address, soft=args.action == "softreset"
        )
        print(f"{args.action} sent to {args.address}")
        return 0
    peers = request(args.socket, "neighbors", address=args.address)
    if args.json:
        print(json.dumps(peers[0] if args.address else peers, indent=2))
    elif args.address:
        print(_neighbor_detail(peers[0]))
    else:
        print(_neighbor_table(peers))
    return 0


def _neighbor_table(peers: list[dict[str, Any]]) -> str:
    rows = [["Peer", "AS", "Up/Down", "State", "#Received", "Accepted", "Advertised"]]
    for peer in peers:
        counts = peer["families"].values()
        rows.append(
            [
                peer["address"],
                str(peer["peer_asn"]),
                _duration(peer.get("uptime")),
                peer["state"],
                str(sum(c["received"] for c in counts)),
                str(sum(c["accepted"] for c in counts)),
                str(sum(c["advertised"] for c in counts)),
            ]
        )
    return _table(rows)


def _neighbor_detail(peer: dict[str, Any]) -> str:
    lines = [
        f"BGP neighbor {peer['address']}, remote AS {peer['peer_asn']}",
        f"  state {peer['state']}, up for {_duration(peer.get('uptime'))}",
    ]
    for key in ("description", "router_id", "hold_time", "keepalive", "last_error"):
        if peer.get(key) not in (None, ""):
            lines.append(f"  {key.replace('_', ' ')}: {peer[key]}")
    bfd = peer.get("bfd")
    if bfd:
        lines.append(_bfd_line(bfd))
    for family, counts in peer["families"].items():
        lines.append(
            f"  {family}: received {counts['received']}, accepted {counts['accepted']},"
            f" advertised {counts['advertised']}"
        )
    return "\n".join(lines)


def _bfd_line(bfd: dict[str, Any]) -> str:
    """`  BFD: Up (remote Up), diag none, tx 300 ms, detection 900 ms`."""
    parts = [f"  BFD: {bfd['state']}"]
    if bfd.get("remote_state"):
        parts[0] += f" (remote {bfd['remote_state']})"
    if bfd.get("diag"):
        parts.append(f"diag {bfd['diag']}")
    if bfd.get("tx_interval_ms") is not None:
        parts.append(f"tx {bfd['tx_interval_ms']:g} ms")
    if bfd.get("detection_time_ms") is not None:
        parts.append(f"detection {bfd['detection_time_ms']:g} ms")
    return ", ".join(parts)


def run_rib(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words and words[0] in ("add", "del"):
        return _rib_change(args, words)
    if len(words) > 1:
        raise ControlError(f"rib: unexpected {' '.join(words[1:])!r}")
    if args.explain:
        if not words:
            raise ControlError("rib --explain: which prefix?")
        return _explain(args, words[0])
    if args.explain_import:
        raise ControlError("rib --import goes with --explain NEIGHBOR")
    routes = request(args.socket, "rib", family=args.family, prefix=words[0] if words else None)
    if args.json:
        print(json.dumps(routes, indent=2))
        return 0
    print(_routes_table(routes, lambda route: "*>" if route.get("best") else "* "))
    return 0


def _adj_rib(args: argparse.Namespace) -> int:
    direction = args.action.removeprefix("adj-")
    routes = request(
        args.socket, "adj_rib", address=args.address, direction=direction, family=args.family
    )
    if args.json:
        print(json.dumps(routes, indent=2))
        return 0
    # adj-in: "*" accepted by the import policy, "x" rejected by it.
    print(_routes_table(routes, lambda route: "* " if route.get("accepted", True) else "x "))
    return 0


def _routes_table(routes: list[dict[str, Any]], mark: Callable[[dict[str, Any]], str]) -> str:
    rows = [["", "Network", "Next Hop", "AS_PATH", "Attrs"]]
    for route in routes:
        attrs = [f"origin {route['origin']}"]
        for key in ("med", "local_pref"):
            if route.get(key) is not None:
                attrs.append(f"{key} {route[key]}")
        if route.get("communities"):
            attrs.append("communities " + " ".join(route["communities"]))
        if route.get("large_communities"):
            attrs.append("large " + " ".join(route["large_communities"]))
        network = route["prefix"]
        if route.get("path_id"):
            network += f" (path {route['path_id']})"
        rows.append(
            [mark(route), network, route["next_hop"], route["as_path"] or "-", ", ".join(attrs)]
        )
    return _table(rows)


def _explain(args: argparse.Namespace, prefix: str) -> int:
    direction = "import" if args.explain_import else "export"
    found = request(
        args.socket, "explain", prefix=prefix, address=args.explain, direction=direction
    )
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    way = "from" if direction == "import" else "to"
    chain = ", ".join(found["chain"]) or "(no policies)"
    print(
        f"{found['prefix']} {way} {found['neighbor']}: {direction} policies {chain},"
        f" then default {found['default']}"
    )
    if found.get("note"):
        print(f"  {found['note']}")
    for path in found["paths"]:
        route = path["route"]
        label = f"path {path['path_id']}: " if path["path_id"] else ""
        print(f"  {label}next hop {route['next_hop']}, AS path {route['as_path'] or '-'}")
        for step in path["steps"]:
            print(f"    {step}")
    return 0


def run_policy(args: argparse.Namespace) -> int:
    found = request(args.socket, "policy")
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print("\n".join(_policy_text(found)))
    return 0


def _policy_text(found: dict[str, Any]) -> list[str]:
    definitions = found["definitions"]
    lines: list[str] = []
    for kind, members_key in _SET_MEMBERS.items():
        for defined in definitions.get(kind, []):
            members = defined.get(members_key) or []
            shown = [m if isinstance(m, str) else _entry_text(m) for m in members]
            lines.append(f"{kind.removesuffix('s').replace('_', '-')} {defined['name']}:")
            lines += [f"  {m}" for m in shown]
    for policy in definitions.get("policies", []):
        default = f" (default {policy['default']})" if policy.get("default") else ""
        lines.append(f"policy {policy['name']}{default}:")
        for statement in policy["statements"]:
            conditions = _set_fields(statement["conditions"])
            actions = _set_fields(statement["actions"])
            lines.append(f"  statement {statement['name']}:")
            lines.append(f"    if {conditions or 'always'}")
            lines.append(f"    then {actions}")
    attach = found["global"]
    lines.append(
        f"global: import {_words(attach['import_policies']) or '-'}"
        f" (default {attach['default_import']}),"
        f" export {_words(attach['export_policies']) or '-'} (default {attach['default_export']})"
    )
    rows = [["Neighbor", "Import", "Export"]]
    for address, chains in found["neighbors"].items():
        rows.append(
            [
                address,
                " ".join([*chains["import"], f"then {chains['default_import']}"]),
                " ".join([*chains["export"], f"then {chains['default_export']}"]),
            ]
        )
    return [*lines, "", _table(rows)]


_SET_MEMBERS = {
    "prefix_sets": "entries",
    "neighbor_sets": "members",
    "as_path_sets": "members",
    "community_sets": "members",
    "ext_community_sets": "members",
    "large_community_sets": "members",
}


def _entry_text(entry: Any) -> str:
    return " ".join(f"{k} {v}" for k, v in entry.items()) if isinstance(entry, dict) else str(entry)


def _words(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _set_fields(fields: dict[str, Any]) -> str:
    """The fields that are set, as `key value` pairs."""
    parts = []
    for key, value in fields.items():
        if value in (None, (), [], {}):
            continue
        if isinstance(value, dict) and "set_name" in value:  # a set match
            option = value.get("option", "any")
            value = value["set_name"] + ("" if option == "any" else f" ({option})")
        elif isinstance(value, dict):
            value = " ".join(f"{k}={_words(v)}" for k, v in value.items() if v not in (None, []))
        parts.append(f"{key} {value}")
    return ", ".join(parts)


_KEYWORDS = {
    "nexthop": "next_hop",
    "community": "communities",
    "large-community": "large_communities",
    "med": "med",
    "local-pref": "local_pref",
    "origin": "origin",
}


def _rib_change(args: argparse.Namespace, words: list[str]) -> int:
    verb = words.pop(0)
    if not words:
        raise ControlError(f"rib {verb}: which prefix?")
    prefix = words.pop(0)
    if verb == "del":
        if words:
            raise ControlError(f"rib del: unexpected {' '.join(words)!r}")
        request(args.socket, "rib_del", prefix=prefix)
        print(f"withdrawn {prefix}")
        return 0
    route: dict[str, Any] = {"prefix": prefix}
    key = None
    for word in words:
        if word in _KEYWORDS:
            key = _KEYWORDS[word]
            continue
        if key is None:
            raise ControlError(f"rib add: expected one of {', '.join(_KEYWORDS)} before {word!r}")
        if key in ("communities", "large_communities"):
            route.setdefault(key, []).append(word)
        elif key in ("med", "local_pref"):
            if not word.isdigit():
                raise ControlError(
                    f"rib add: {key.replace('_', '-')} expects a number, not {word!r}"
                )
            route[key] = int(word)
            key = None
        else:
            route[key] = word
            key = None
    request(args.socket, "rib_add", route=route)
    print(f"announced {prefix}")
    return 0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def main_client(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except ControlError as exc:
        print(f"pybgp: {exc}", file=sys.stderr)
        return 1
