"""Text for the kernel tools: `iptables-restore --noflush`, `ipset restore`, `nft -f`.

Text only; running the tools is the data-plane adapter's job. What the text promises:

- iptables: one `*filter` ... `COMMIT` block that declares (and so flushes) only our own
  chains and appends their rules; with --noflush every other chain and rule in the table
  is left alone. The jumps from INPUT/FORWARD/OUTPUT into KUBE-ROUTER-* are not in it:
  the applier keeps those with -C/-I (DesiredState.builtin_jumps).
- ipset: each set is filled under a temporary name and swapped in, so a packet sees the
  old or the new contents, never a half-filled set. Every set of ours is made with the
  same `maxelem` (far above the default 65,536: one named-port set holds a member per
  pod of the cluster); a swap also brings an older set of ours to it. hash:ip,port
  members name their protocol by number ("6:80"): ipset then skips a protocol-database
  lookup per member, which made a large set three times slower to load. ipset lists
  them by name ("tcp:80") all the same.
- nft: the whole `kube-router-filter-ipv4`/`-ipv6` table replaced in one transaction
  (add, delete, define); nothing outside that table is named.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from kuberouter.netpol.names import short_hash
from kuberouter.netpol.render_nft import render_nft
from kuberouter.netpol.ruleset import Family, IPSet, Rule, Ruleset

__all__ = ["iptables_rule", "render_ipset", "render_iptables", "render_nft"]

_NFLOG_GROUP = "100"
_LIMIT_BURST = "10"


def render_iptables(ruleset: Ruleset, stale_chains: Iterable[str] = ()) -> str:
    """An `iptables-restore --noflush` (ip6tables for family 6) input for our chains.

    `stale_chains` are our chains that exist in the kernel but are no longer wanted: they
    are flushed and deleted in the same transaction."""
    stale = sorted(set(stale_chains) - set(ruleset.chains))
    lines = ["*filter"]
    lines += [f":{name} - [0:0]" for name in [*ruleset.chains, *stale]]
    for chain in ruleset.chains.values():
        lines += [iptables_rule(chain.name, rule, ruleset.family) for rule in chain.rules]
    lines += [f"-X {name}" for name in stale]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def iptables_rule(chain: str, rule: Rule, family: Family) -> str:
    """One rule as an `-A CHAIN ...` line."""
    args = ["-A", chain]
    if rule.comment:
        args += ["-m", "comment", "--comment", _quote(rule.comment)]
    args += _addresses(rule)
    args += _iptables_protocol(rule, family)
    if rule.src_local:
        args += ["-m", "addrtype", "--src-type", "LOCAL"]
    if rule.dst_local:
        args += ["-m", "addrtype", "--dst-type", "LOCAL"]
    if rule.ctstate:
        args += ["-m", "conntrack", "--ctstate", ",".join(rule.ctstate)]
    for name, flags in (
        (rule.src_set, "src"),
        (rule.dst_set, "dst"),
        (rule.dst_ip_port_set, "dst,dst"),
    ):
        if name is not None:
            args += ["-m", "set", "--match-set", name, flags]
    if rule.mark is not None:
        negate = ["!"] if rule.mark_negate else []
        args += ["-m", "mark", *negate, "--mark", _mask(*rule.mark)]
    if rule.limit is not None:
        args += ["-m", "limit", "--limit", rule.limit, "--limit-burst", _LIMIT_BURST]
    args += _iptables_target(rule)
    return " ".join(args)


def _addresses(rule: Rule) -> list[str]:
    args = []
    if rule.src_addr is not None:
        args += ["-s", rule.src_addr]
    if rule.dst_addr is not None:
        args += ["-d", rule.dst_addr]
    return args


def _iptables_protocol(rule: Rule, family: Family) -> list[str]:
    if rule.protocol is None:
        return []
    if rule.protocol in ("icmp", "icmpv6"):
        if family == 4:
            return ["-p", "icmp", "-m", "icmp", "--icmp-type", rule.icmp_type or "any"]
        return ["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", rule.icmp_type or "any"]
    args = ["-p", rule.protocol]
    if rule.dport is not None:
        low, high = rule.dport
        ports = str(low) if low == high else f"{low}:{high}"
        args += ["-m", rule.protocol, "--dport", ports]
    return args


def _iptables_target(rule: Rule) -> list[str]:
    if rule.target == "MARK":
        value, mask = rule.set_mark or (0, 0)
        return ["-j", "MARK", "--set-xmark", _mask(value, mask)]
    if rule.target == "NFLOG":
        return ["-j", "NFLOG", "--nflog-group", _NFLOG_GROUP]
    return ["-j", rule.target]


def _mask(value: int, mask: int) -> str:
    return f"{value:#x}/{mask:#x}"


def _quote(comment: str) -> str:
    # iptables comments are at most 256 bytes and are quoted with double quotes.
    text = comment.replace('"', "'").replace("\n", " ")[:255]
    return f'"{text}"'


IPSET_MAXELEM = 1048576
_PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "sctp": "132"}


def ipset_spec(ipset: IPSet) -> str:
    """The `create` arguments of every set of ours after its name."""
    family = "inet" if ipset.family == 4 else "inet6"
    return f"{ipset.type} family {family} maxelem {IPSET_MAXELEM}"


def ipset_member(ipset: IPSet, entry: str) -> str:
    """An entry as `ipset restore` takes it (hash:ip,port: the protocol by number)."""
    if ipset.type != "hash:ip,port":
        return entry
    address, _, proto_port = entry.rpartition(",")
    protocol, _, port = proto_port.partition(":")
    return f"{address},{_PROTOCOL_NUMBERS.get(protocol, protocol)}:{port}"


def render_ipset(sets: Iterable[IPSet], existing: Collection[str] = ()) -> str:
    """An `ipset restore` input that fills each set atomically (temporary set + swap);
    `existing`: sets the kernel holds already (the others are created first)."""
    lines: list[str] = []
    for ipset in sets:
        spec = ipset_spec(ipset)
        temp = "TMP-" + short_hash(ipset.name)
        lines.append(f"create {temp} {spec} -exist")
        lines.append(f"flush {temp}")
        lines += [f"add {temp} {ipset_member(ipset, entry)}" for entry in sorted(ipset.entries)]
        lines += [f"add {temp} {entry} nomatch" for entry in ipset.nomatch]
        if ipset.name not in existing:
            lines.append(f"create {ipset.name} {spec} -exist")
        lines.append(f"swap {temp} {ipset.name}")
        lines.append(f"destroy {temp}")
    return "\n".join(lines) + "\n" if lines else ""
