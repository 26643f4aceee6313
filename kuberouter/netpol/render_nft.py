"""`nft -f` text for one family's ruleset, as the table kube-router-filter-ipv4 / -ipv6.

The same chains and rules as the iptables rendering, spelled in nft: ipsets become named
sets in the table (hash:net as interval sets, hash:ip,port as concatenations matched on
daddr . l4proto . th dport), the top-level chains become base chains on the
input/forward/output hooks. nft interval sets have no `nomatch`, so a hash:net set is
written as its effective ranges (entries minus their holes); our hash:net sets are one
ipBlock each (holes inside the block), which keeps that exact. Chains are defined after
the chains they jump to.
"""

from __future__ import annotations

import ipaddress

from kuberouter.netpol.names import IPV6_SET_PREFIX
from kuberouter.netpol.ruleset import IPSet, Rule, Ruleset

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
    for chain in ruleset.chains.values():
        lines.append(f"\tchain {chain.name} {{")
        if chain.hook is not None:
            hook = _HOOKS[chain.hook]
            lines.append(f"\t\ttype filter hook {hook} priority filter; policy accept;")
        lines += ["\t\t" + _rule(rule, family) for rule in chain.rules]
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


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
