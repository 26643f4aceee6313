"""The nftables back end (`--use-nftables-for-netpol`): our own tables
`ip kube-router-filter-ipv4` and `ip6 kube-router-filter-ipv6`.

Every apply is ONE `nft -f` transaction for both families, and it is incremental: only
changed sets are touched (just their changed elements when the programmed version is
known, else flushed and refilled), only changed chains flushed and refilled (a top chain
whose rules stay, as when a pod comes or goes, changes just its verdict maps' elements:
render_nft.hook_layout), removed chains flushed then deleted (after the chains and maps
that jumped to them were rewritten in the same transaction), removed sets deleted last.
A top chain's maps are part of its listing (a read lists their elements with it). The
kernel commits the whole transaction or none of it, so no packet sees half of a change.
A family that goes away loses its table. The text of each set and chain comes from
render_nft (rendered for just the objects being written whole), so the two renderings
cannot disagree. Reads turn the set elements
nft lists back into the compiler's notation (an address, "ip,proto:port", a CIDR).
Nothing outside our tables is named; the base chains hook input/forward/output at filter
priority themselves, so there are no jumps to keep in other tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.firewall import PlannedBackend, Usage
from kuberouter.dataplane.plan import (
    ChainKey,
    FamilyPlan,
    Listing,
    Programmed,
    SetListing,
    member_changes,
)
from kuberouter.netpol.names import IPV6_SET_PREFIX
from kuberouter.netpol.render_nft import (
    HookLayout,
    element,
    hook_layout,
    render_nft,
    set_members,
    set_type,
    table_name,
)
from kuberouter.netpol.ruleset import Chain, IPSet

_Block = tuple[list[str], list[str]]  # (header lines, rule lines or element list)


def table(family: int) -> str:
    return f"{'ip' if family == 4 else 'ip6'} {table_name(family)}"


def nft_set_name(name: str) -> str:
    return name.removeprefix(IPV6_SET_PREFIX)


def _logical_set_name(name: str, family: int) -> str:
    return IPV6_SET_PREFIX + name if family == 6 else name


def blocks(script: str) -> dict[tuple[str, str], _Block]:
    """Split render_nft's table body into ("set"|"map"|"chain", name) -> (header, body)."""
    found: dict[tuple[str, str], _Block] = {}
    current: _Block | None = None
    for line in script.splitlines():
        if line.startswith("\t") and not line.startswith("\t\t") and line.endswith("{"):
            kind, name = line.strip().split(" ")[:2]
            current = found[(kind, name)] = ([], [])
        elif line.startswith("\t\t") and current is not None:
            text = line.strip()
            if text.startswith("elements = {"):
                current[1].append(text.removeprefix("elements = {").removesuffix("}").strip())
            elif text.startswith(("type ", "flags ")):
                current[0].append(text.rstrip(";"))
            else:
                current[1].append(text)
    return found


class NftablesBackend(PlannedBackend):
    def __init__(self, runner: Runner | None = None) -> None:
        super().__init__()
        self.runner = runner or Runner()
        self._layouts: dict[tuple[int, str], tuple[Chain, HookLayout]] = {}

    def usage(self) -> Usage:
        return Usage(commands=self.runner.count, tool_seconds=dict(self.runner.seconds_by_tool))

    def read(self) -> Programmed:
        return self._read(terse=False)

    def read_chains(self) -> Mapping[ChainKey, Listing]:
        return self._read(terse=True).chains

    def set_listing(self, ipset: IPSet) -> SetListing:
        parts, flags = set_type(ipset)
        header = _canonical({"type": parts[0] if len(parts) == 1 else parts, "flags": flags})
        return header, frozenset(set_members(ipset))

    def _read(self, *, terse: bool) -> Programmed:
        """`terse`: without set elements (nft -t), for the chains alone."""
        chains: dict[tuple[int, str], list[str]] = {}
        sets: dict[tuple[int, str], SetListing] = {}
        hooks: set[tuple[int, str]] = set()
        maps: dict[tuple[int, str], str] = {}
        for family in (4, 6):
            argv = [
                "nft",
                *(["-t"] if terse else []),
                "-j",
                "list",
                "table",
                *table(family).split(),
            ]
            done = self.runner.run(*argv, check=False)
            if done.returncode != 0:
                continue  # no table of ours in this family
            items = json.loads(done.stdout)["nftables"]
            if terse:  # -t leaves out the elements of the top chains' maps too
                items = [item for item in items if "map" not in item]
                items += self._maps(family)
            for item in items:
                _read_item(item, family, chains, sets, hooks, maps)
        for (family, name), listing in sorted(maps.items()):
            chain = name.rsplit("-", 1)[0]  # a top chain's map: <chain>-SADDR / -DADDR
            chains.setdefault((family, chain), []).append(listing)
        return Programmed(
            chains={key: tuple(lines) for key, lines in chains.items()},
            sets=sets,
            hooks=frozenset(hooks),
        )

    def _maps(self, family: int) -> list[dict[str, Any]]:
        """The maps of our table in `family`, elements included."""
        done = self.runner.run("nft", "-j", "list", "maps", table(family).split()[0])
        items = json.loads(done.stdout)["nftables"]
        return [item for item in items if item.get("map", {}).get("table") == table_name(family)]

    def _execute(self, plans: Sequence[FamilyPlan]) -> None:
        script = [line for plan in plans for line in self.script(plan)]
        if script:
            self.runner.run("nft", "-f", "-", input="\n".join(script) + "\n")

    def script(self, plan: FamilyPlan) -> list[str]:
        """The nft commands for one family's plan (all families go in one transaction)."""
        where = table(plan.family)
        if plan.ruleset is None:
            return [f"add table {where}", f"delete table {where}"]
        if not (plan.write_sets or plan.write_chains or plan.delete_sets or plan.delete_chains):
            return []
        deltas = {ipset.name: _member_changes(plan, ipset) for ipset in plan.write_sets}
        whole = [ipset for ipset in plan.write_sets if deltas[ipset.name] is None]
        # Top chains: when only their maps' elements differ, just those change.
        edited = {chain.name: self._map_edits(plan, chain, where) for chain in plan.write_chains}
        chains = {chain.name: chain for chain in plan.write_chains if edited[chain.name] is None}
        partial = attrs.evolve(plan.partial(), sets={s.name: s for s in whole}, chains=chains)
        rendered = blocks(render_nft(partial))
        lines = [f"add table {where}"]
        for ipset in plan.write_sets:
            name = nft_set_name(ipset.name)
            delta = deltas[ipset.name]
            if delta is not None:
                for verb, entries in (("delete", delta[1]), ("add", delta[0])):
                    text = ", ".join(element(ipset, entry) for entry in entries)
                    lines += [f"{verb} element {where} {name} {{ {text} }}"] if entries else []
                continue
            header, elements = rendered[("set", name)]
            lines.append(f"add set {where} {name} {{ {'; '.join(header)}; }}")
            lines.append(f"flush set {where} {name}")
            lines += [f"add element {where} {name} {{ {text} }}" for text in elements]
        lines += _chain_lines(plan, rendered, edited, where)
        lines += [f"delete set {where} {nft_set_name(name)}" for name in plan.delete_sets]
        return lines

    def _map_edits(self, plan: FamilyPlan, chain: Chain, where: str) -> list[str] | None:
        """The element changes that turn a top chain's programmed maps into the new ones,
        when its rules stay the same; None: the chain and its maps are written whole."""
        old = plan.replaced_chains.get(chain.name)
        if chain.hook is None or old is None:
            return None
        before, after = self._layout(old, plan.family), self._layout(chain, plan.family)
        if before.rules != after.rules:
            return None
        lines: list[str] = []
        for was, now in zip(before.maps, after.maps, strict=True):
            old_elements, new_elements = was.elements(), now.elements()
            gone = [key for key, text in old_elements.items() if new_elements.get(key) != text]
            added = [text for key, text in new_elements.items() if old_elements.get(key) != text]
            lines += [f"delete element {where} {now.name} {{ {', '.join(gone)} }}"] if gone else []
            lines += [f"add element {where} {now.name} {{ {', '.join(added)} }}"] if added else []
        return lines

    def _layout(self, chain: Chain, family: int) -> HookLayout:
        """hook_layout, remembered for the last version of each top chain (the next
        change compares with it)."""
        known = self._layouts.get((family, chain.name))
        if known is not None and known[0] is chain:
            return known[1]
        layout = hook_layout(chain, family)
        self._layouts[(family, chain.name)] = (chain, layout)
        return layout


def _chain_lines(
    plan: FamilyPlan,
    rendered: dict[tuple[str, str], _Block],
    edited: Mapping[str, list[str] | None],
    where: str,
) -> list[str]:
    """Chains made, their maps filled, chains flushed and refilled, old chains deleted."""
    whole = [chain for chain in plan.write_chains if edited[chain.name] is None]
    lines = []
    for chain in whole:
        header = rendered[("chain", chain.name)][0]
        spec = f" {{ {' '.join(header)}; }}" if header else ""
        lines.append(f"add chain {where} {chain.name}{spec}")
    lines += [f"add chain {where} {name}" for name in plan.delete_chains]
    for chain in plan.write_chains:  # after the chains their elements jump to exist
        lines += edited[chain.name] or []
        if chain.hook is not None and edited[chain.name] is None:
            lines += _map_lines(rendered, chain, where)
    flushed = [chain.name for chain in whole] + list(plan.delete_chains)
    lines += [f"flush chain {where} {name}" for name in flushed]
    for chain in whole:
        rules = rendered[("chain", chain.name)][1]
        lines += [f"add rule {where} {chain.name} {rule}" for rule in rules]
    lines += [f"delete chain {where} {name}" for name in plan.delete_chains]
    return lines


def _map_lines(rendered: dict[tuple[str, str], _Block], chain: Chain, where: str) -> list[str]:
    """A top chain's maps made (if new), emptied and filled, in the transaction."""
    lines: list[str] = []
    for (kind, name), (header, elements) in rendered.items():
        if kind == "map" and name.startswith(f"{chain.name}-"):
            lines += [f"add map {where} {name} {{ {'; '.join(header)}; }}"]
            lines += [f"flush map {where} {name}"]
            lines += [f"add element {where} {name} {{ {text} }}" for text in elements]
    return lines


def _member_changes(plan: FamilyPlan, ipset: IPSet) -> tuple[list[str], list[str]] | None:
    """Members to add and delete when the programmed version is known; None: rewrite it
    (hash:net sets too: their elements are ranges derived from entries and holes)."""
    old = plan.replaced_sets.get(ipset.name)
    if old is None or ipset.type == "hash:net":
        return None
    return member_changes(old, ipset)


def _read_item(
    item: dict[str, Any],
    family: int,
    chains: dict[tuple[int, str], list[str]],
    sets: dict[tuple[int, str], SetListing],
    hooks: set[tuple[int, str]],
    maps: dict[tuple[int, str], str],
) -> None:
    if "map" in item:  # a top chain's verdict map: part of that chain's listing
        found = item["map"]
        elements = sorted(_canonical(elem) for elem in found.get("elem", []))
        maps[(family, found["name"])] = _canonical({"map": found["name"], "elem": elements})
    elif "chain" in item:
        chain = item["chain"]
        base = {key: chain[key] for key in ("type", "hook", "prio", "policy") if key in chain}
        chains.setdefault((family, chain["name"]), []).insert(0, _canonical(base))
        if chain.get("hook") and chain["name"] == f"KUBE-ROUTER-{chain['hook'].upper()}":
            hooks.add((family, chain["hook"].upper()))
    elif "rule" in item:
        rule = item["rule"]
        entry = {"expr": rule.get("expr"), "comment": rule.get("comment")}
        chains.setdefault((family, rule["chain"]), []).append(_canonical(entry))
    elif "set" in item:
        found = item["set"]
        flags = found.get("flags", [])
        header = _canonical({"type": found.get("type"), "flags": flags})
        host = ("/32" if family == 4 else "/128") if "interval" in flags else ""
        members = frozenset(_member(elem, host) for elem in found.get("elem", []))
        sets[(family, _logical_set_name(found["name"], family))] = (header, members)


def _member(elem: Any, host: str) -> str:
    """An element as nft lists it, in the compiler's notation (`host`: the prefix length
    an interval set's lone address stands for)."""
    if isinstance(elem, str):
        return elem + host
    if isinstance(elem, dict) and "concat" in elem and len(elem["concat"]) == 3:
        address, protocol, port = elem["concat"]
        return f"{address},{protocol}:{port}"
    if isinstance(elem, dict) and "prefix" in elem:
        return f"{elem['prefix']['addr']}/{elem['prefix']['len']}"
    return _canonical(elem)  # a form we never write: it cannot match, so it is rewritten


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
