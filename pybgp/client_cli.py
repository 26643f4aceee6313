"""`pybgp neighbor ...` and `pybgp rib ...`: talk to pybgpd over its control socket, the way
`gobgp` talks to `gobgpd`. Tables for people, `-j` for JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pybgp.control import ControlError, request


def add_commands(commands: Any) -> None:
    neighbor = commands.add_parser("neighbor", help="show neighbours, or reset one")
    neighbor.add_argument("address", nargs="?", help="one neighbour (default: all)")
    neighbor.add_argument(
        "action",
        nargs="?",
        choices=["reset", "softreset"],
        help="reset the session, or soft-reset (route refresh in, re-advertise out)",
    )
    neighbor.set_defaults(run=run_neighbor)
    rib = commands.add_parser(
        "rib",
        help="show the Loc-RIB, or add/del an originated route",
        description="pybgp rib [-a ipv4|ipv6] [PREFIX] | rib add PREFIX [nexthop X] "
        "[community A:B ...] [large-community A:B:C ...] [med N] [local-pref N] | rib del PREFIX",
    )
    rib.add_argument("-a", "--family", choices=["ipv4", "ipv6"], help="address family")
    rib.add_argument("words", nargs="*", help="PREFIX, or add/del PREFIX [attributes]")
    rib.set_defaults(run=run_rib)


def run_neighbor(args: argparse.Namespace) -> int:
    if args.action:
        if not args.address:
            raise ControlError(f"neighbor {args.action}: which neighbour?")
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
    for family, counts in peer["families"].items():
        lines.append(
            f"  {family}: received {counts['received']}, accepted {counts['accepted']},"
            f" advertised {counts['advertised']}"
        )
    return "\n".join(lines)


def run_rib(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words and words[0] in ("add", "del"):
        return _rib_change(args, words)
    if len(words) > 1:
        raise ControlError(f"rib: unexpected {' '.join(words[1:])!r}")
    routes = request(args.socket, "rib", family=args.family, prefix=words[0] if words else None)
    if args.json:
        print(json.dumps(routes, indent=2))
        return 0
    rows = [["", "Network", "Next Hop", "AS_PATH", "Attrs"]]
    for route in routes:
        mark = "*>" if route.get("best") else "* "
        attrs = [f"origin {route['origin']}"]
        for key in ("med", "local_pref"):
            if route.get(key) is not None:
                attrs.append(f"{key} {route[key]}")
        if route.get("communities"):
            attrs.append("communities " + " ".join(route["communities"]))
        if route.get("large_communities"):
            attrs.append("large " + " ".join(route["large_communities"]))
        rows.append(
            [mark, route["prefix"], route["next_hop"], route["as_path"] or "-", ", ".join(attrs)]
        )
    print(_table(rows))
    return 0


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
