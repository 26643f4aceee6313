"""Reading our proxy tables back from `nft -j list table`: chains as canonical JSON
listings, sets and maps as element key -> value in the text render_nft writes, so a
repair compares like with like."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

import attrs

from kuberouter.dataplane.plan import digest


@attrs.frozen(kw_only=True)
class TableListing:
    chains: Mapping[str, str]  # chain name -> digest of its header and rules
    rules: Mapping[str, int]  # chain name -> how many rules it has
    sets: Mapping[str, Mapping[str, str] | None]  # name -> elements (None: a timed set)
    kinds: Mapping[str, str]  # set or map name -> "set" or "map"


def parse_table(text: str) -> TableListing:
    chains: dict[str, list[str]] = {}
    sets: dict[str, Mapping[str, str] | None] = {}
    kinds: dict[str, str] = {}
    for item in json.loads(text)["nftables"]:
        if "chain" in item:
            chain = item["chain"]
            header = {key: chain[key] for key in ("type", "hook", "prio", "policy") if key in chain}
            chains.setdefault(chain["name"], []).insert(0, _canonical(header))
        elif "rule" in item:
            rule = item["rule"]
            chains.setdefault(rule["chain"], []).append(_canonical(rule.get("expr")))
        elif "set" in item or "map" in item:
            kind = "set" if "set" in item else "map"
            found = item[kind]
            kinds[found["name"]] = kind
            timed = "timeout" in found.get("flags", []) or "timeout" in found
            sets[found["name"]] = None if timed else elements(found.get("elem", []))
    return TableListing(
        chains={name: digest(lines) for name, lines in chains.items()},
        rules={name: len(lines) - 1 for name, lines in chains.items()},  # the header is one
        sets=sets,
        kinds=kinds,
    )


def elements(listed: list[Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in listed:
        if isinstance(entry, list):  # a map element: [key, data]
            found[value_text(entry[0])] = value_text(entry[1])
        else:
            found[value_text(entry)] = ""
    return found


def value_text(value: Any) -> str:
    """One key or datum as render_nft spells it: "10.96.0.1 . tcp . 80 . 0",
    "goto internal-pick-cluster-2", "10.1.0.0/16"."""
    if isinstance(value, dict):
        if "elem" in value:
            return value_text(value["elem"]["val"])
        if "concat" in value:
            return " . ".join(value_text(part) for part in value["concat"])
        if "prefix" in value:
            prefix = value["prefix"]
            return ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}").compressed
        if "range" in value:
            low, high = value["range"]
            return f"{value_text(low)}-{value_text(high)}"
        for verdict in ("goto", "jump"):
            if verdict in value:
                return f"{verdict} {value[verdict]['target']}"
        for verdict in ("drop", "accept", "return", "continue"):
            if verdict in value:
                return verdict
    if isinstance(value, str) and (":" in value or value.count(".") == 3):
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            return value
    return str(value)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
