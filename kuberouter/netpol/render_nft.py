"""`nft -f` text for one family's ruleset, as the table kube-router-filter-ipv4 / -ipv6.

The same chains and rules as the iptables rendering, spelled in nft: ipsets become named
sets in the table (hash:net as interval sets, hash:ip,port as concatenations matched on
daddr . l4proto . th dport), the top-level chains become base chains on the
input/forward/output hooks. In those, a run of jumps to pod chains on one address each
(`ip daddr POD jump KUBE-POD-FW-...`) is one verdict map, `<chain>-DADDR` or `-SADDR`
(`hook_layout`): a new pod adds its elements, the chain's rules stay. nft interval sets
have no `nomatch`, so a hash:net set is written as its effective ranges (entries minus
their holes); our hash:net sets are one ipBlock each (holes inside the block), which
keeps that exact. Chains are defined after the chains they jump to.
"""

from __future__ import annotations

import ipaddress

import attrs

from kuberouter.netpol.names import IPV6_SET_PREFIX, POD_CHAIN_PREFIX
from kuberouter.netpol.ruleset import Chain, IPSet, Rule, Ruleset

_HOOKS = {"INPUT": "input", "FORWARD": "forward", "OUTPUT": "output"}
_ICMPV6_NAMES = {
    "neighbor-solicitation": "nd-neighbor-solicit",
    "neighbor-advertisement": "nd-neighbor-advert",
}
_VERDICTS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return"}


def table_name(family: int) -> str:
    return f"kube-router-filter-ipv{family}"


def render_nft(ruleset: Ruleset) -> str:
    family = "ip" if ruleset.family == 4 else "ip6"
    table = f"{family} {table_name(ruleset.family)}"
    lines = [f"add table {table}", f"delete table {table}", f"table {table} {{"]
    for ipset in ruleset.sets.values():
        lines += _set(ipset)
    layouts = {
        chain.name: hook_layout(chain, ruleset.family)
        for chain in ruleset.chains.values()
        if chain.hook is not None
    }
    for layout in layouts.values():
        lines += [line for vmap in layout.maps for line in _map(vmap)]
    for chain in ruleset.chains.values():
        lines.append(f"\tchain {chain.name} {{")
        if chain.hook is not None:
            hook = _HOOKS[chain.hook]
            lines.append(f"\t\ttype filter hook {hook} priority filter; policy accept;")
            lines += ["\t\t" + rule for rule in layouts[chain.name].rules]
        else:
            lines += ["\t\t" + _rule(rule, family) for rule in chain.rules]
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


@attrs.frozen
class VerdictMap:
    """`<family> <field> vmap @name`: address -> the pod chain to jump to."""

    name: str
    family: int
    jumps: tuple[tuple[str, str], ...]  # (address, chain), in rule order

    @property
    def type(self) -> str:
        return f"{'ipv4_addr' if self.family == 4 else 'ipv6_addr'} : verdict"

    def elements(self) -> dict[str, str]:
        return {address: f"{address} : jump {chain}" for address, chain in self.jumps}


@attrs.frozen
class HookLayout:
    """A top chain as nft holds it: its rules' text and its two verdict maps (both
    always there, maybe empty, so the maps of a chain never come and go)."""

    rules: tuple[str, ...]
    maps: tuple[VerdictMap, ...]


_FIELDS = ("saddr", "daddr")


def map_name(chain: str, field: str) -> str:
    return f"{chain}-{field.upper()}"


def hook_layout(chain: Chain, family: int) -> HookLayout:
    """Each field's first run of jumps to pod chains becomes a vmap rule where the run
    starts. Exact: within a run only the jumps on a packet's own address match it, in
    order; a second jump on an address already in the map stays a rule (so both chains
    still run, in order), and a later run of the same field stays rules."""
    nft_family = "ip" if family == 4 else "ip6"
    rules: list[str] = []
    jumps: dict[str, dict[str, str]] = {field: {} for field in _FIELDS}
    mapped: set[str] = set()
    open_run: str | None = None  # the field whose mapped run the last rule was part of
    for rule in chain.rules:
        found = _pod_jump(rule)
        field, address = found or (None, "")
        if field != open_run:
            open_run = None
            if field is not None and field not in mapped:
                mapped.add(field)
                rules.append(f"{nft_family} {field} vmap @{map_name(chain.name, field)}")
                open_run = field
        if field is not None and field == open_run and address not in jumps[field]:
            jumps[field][address] = rule.target
        else:
            rules.append(_rule(rule, nft_family))
    maps = tuple(
        VerdictMap(map_name(chain.name, field), family, tuple(jumps[field].items()))
        for field in _FIELDS
    )
    return HookLayout(rules=tuple(rules), maps=maps)


# A rule's other match and action fields, and their values when unset.
_MATCHES = tuple(
    field.name
    for field in attrs.fields(Rule)
    if field.name not in ("target", "comment", "src_addr", "dst_addr", "policy", "origin")
)
_NO_MATCH = tuple(getattr(Rule(target="ACCEPT"), name) for name in _MATCHES)


def _pod_jump(rule: Rule) -> tuple[str, str] | None:
    """(field, address) of a jump to a pod chain matching one address and nothing else."""
    if not rule.target.startswith(POD_CHAIN_PREFIX):
        return None
    address = rule.src_addr if rule.dst_addr is None else rule.dst_addr
    if address is None or "/" in address or (rule.src_addr and rule.dst_addr):
        return None
    if tuple(getattr(rule, name) for name in _MATCHES) != _NO_MATCH:
        return None
    return ("saddr" if rule.dst_addr is None else "daddr"), address


def _map(vmap: VerdictMap) -> list[str]:
    lines = [f"\tmap {vmap.name} {{", f"\t\ttype {vmap.type}"]
    elements = list(vmap.elements().values())
    if elements:
        lines.append(f"\t\telements = {{ {', '.join(elements)} }}")
    lines.append("\t}")
    return lines


def _set_name(name: str) -> str:
    return name.removeprefix(IPV6_SET_PREFIX)


def set_type(ipset: IPSet) -> tuple[list[str], list[str]]:
    """The parts of a set's nft type, and its flags."""
    address = "ipv4_addr" if ipset.family == 4 else "ipv6_addr"
    if ipset.type == "hash:ip,port":
        return [address, "inet_proto", "inet_service"], []
    if ipset.type == "hash:net":
        return [address], ["interval"]
    return [address], []


def set_members(ipset: IPSet) -> list[str]:
    """What the nft set holds, in the compiler's notation (hash:net: its effective
    networks), sorted."""
    return _effective_networks(ipset) if ipset.type == "hash:net" else sorted(ipset.entries)


def _set(ipset: IPSet) -> list[str]:
    parts, flags = set_type(ipset)
    lines = [f"\tset {_set_name(ipset.name)} {{", f"\t\ttype {' . '.join(parts)}"]
    lines += [f"\t\tflags {flag}" for flag in flags]
    elements = [element(ipset, member) for member in set_members(ipset)]
    if elements:
        lines.append(f"\t\telements = {{ {', '.join(elements)} }}")
    lines.append("\t}")
    return lines


def element(ipset: IPSet, entry: str) -> str:
    """One entry of a hash:ip or hash:ip,port set as an nft element."""
    return _ip_port_element(entry) if ipset.type == "hash:ip,port" else entry


def _ip_port_element(entry: str) -> str:
    address, _, proto_port = entry.rpartition(",")
    protocol, _, port = proto_port.rpartition(":")
    return f"{address} . {protocol} . {port}"


def _effective_networks(ipset: IPSet) -> list[str]:
    """Entries minus their nomatch holes, as disjoint prefixes."""
    spans = [_span(cidr) for cidr in ipset.entries]
    for hole_low, hole_high in (_span(cidr) for cidr in ipset.nomatch):
        kept: list[tuple[int, int]] = []
        for low, high in spans:
            if hole_high < low or hole_low > high:
                kept.append((low, high))
                continue
            if low < hole_low:
                kept.append((low, hole_low - 1))
            if hole_high < high:
                kept.append((hole_high + 1, high))
        spans = kept
    return [prefix for low, high in sorted(spans) for prefix in _prefixes(low, high, ipset.family)]


def _span(cidr: str) -> tuple[int, int]:
    network = ipaddress.ip_network(cidr)
    return int(network.network_address), int(network.broadcast_address)


def _prefixes(low: int, high: int, family: int) -> list[str]:
    if family == 4:
        v4 = ipaddress.summarize_address_range(
            ipaddress.IPv4Address(low), ipaddress.IPv4Address(high)
        )
        return [network.compressed for network in v4]
    v6 = ipaddress.summarize_address_range(ipaddress.IPv6Address(low), ipaddress.IPv6Address(high))
    return [network.compressed for network in v6]


def _rule(rule: Rule, family: str) -> str:
    parts = _matches(rule, family)
    parts += _statement(rule)
    if rule.comment:
        text = rule.comment.replace('"', "'")[:127]  # nft keeps at most 128 bytes
        parts.append(f'comment "{text}"')
    return " ".join(parts)


def _matches(rule: Rule, family: str) -> list[str]:
    parts: list[str] = []
    if rule.src_addr is not None:
        parts.append(f"{family} saddr {rule.src_addr}")
    if rule.dst_addr is not None:
        parts.append(f"{family} daddr {rule.dst_addr}")
    if rule.src_set is not None:
        parts.append(f"{family} saddr @{_set_name(rule.src_set)}")
    if rule.dst_set is not None:
        parts.append(f"{family} daddr @{_set_name(rule.dst_set)}")
    parts += _protocol(rule)
    if rule.dst_ip_port_set is not None:
        name = _set_name(rule.dst_ip_port_set)
        parts.append(f"{family} daddr . meta l4proto . th dport @{name}")
    if rule.src_local:
        parts.append("fib saddr type local")
    if rule.dst_local:
        parts.append("fib daddr type local")
    if rule.ctstate:
        parts.append("ct state " + ",".join(state.lower() for state in rule.ctstate))
    if rule.mark is not None:
        value, mask = rule.mark
        operator = "!=" if rule.mark_negate else "=="
        parts.append(f"meta mark & {mask:#010x} {operator} {value:#010x}")
    if rule.limit is not None:
        parts.append(f"limit rate {rule.limit} burst 10 packets")
    return parts


def _protocol(rule: Rule) -> list[str]:
    if rule.protocol is None:
        return []
    if rule.icmp_type is not None:
        kind = _ICMPV6_NAMES.get(rule.icmp_type, rule.icmp_type)
        return [f"{rule.protocol} type {kind}"]
    if rule.dport is not None:
        low, high = rule.dport
        ports = str(low) if low == high else f"{low}-{high}"
        return [f"{rule.protocol} dport {ports}"]
    return [f"meta l4proto {rule.protocol}"]


def _statement(rule: Rule) -> list[str]:
    if rule.target in _VERDICTS:
        return [_VERDICTS[rule.target]]
    if rule.target == "NFLOG":
        return ["log group 100"]
    if rule.target == "MARK":
        value, mask = rule.set_mark or (0, 0)
        if value == 0:
            return [f"meta mark set meta mark & {~mask & 0xFFFFFFFF:#010x}"]
        if value == mask:
            return [f"meta mark set meta mark | {value:#010x}"]
        raise ValueError(f"cannot render mark {value:#x}/{mask:#x} in nft")
    return [f"jump {rule.target}"]
