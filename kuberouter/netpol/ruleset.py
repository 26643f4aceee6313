"""The compiled firewall as data: ipsets and filter-table chains, per node and family.

One representation serves three readers: `render` (iptables-restore, ipset restore and
nft text), `evaluate` (walks the chains like the kernel) and, later, the incremental
applier (diffs two of these). Rules carry where they came from (`policy`, `origin`) so
a trace can explain itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

from kuberouter.netpol.members import Members

SetType = Literal["hash:ip", "hash:net", "hash:ip,port"]
Family = Literal[4, 6]
FAMILIES: tuple[Family, ...] = (4, 6)

# Marks, as upstream: 0x10000 "some policy allowed this", 0x20000 "passed our checks".
MARK_ALLOWED = 0x10000
MARK_ACCEPT = 0x20000

# Targets that end the walk of the current hook.
TERMINAL_TARGETS = frozenset({"ACCEPT", "DROP", "REJECT"})
# Targets that do something and let the walk go on.
NON_TERMINAL_TARGETS = frozenset({"MARK", "NFLOG"})


def _members(entries: Iterable[str]) -> Members:
    return entries if isinstance(entries, Members) else Members.of(entries)


@attrs.frozen(kw_only=True)
class IPSet:
    """hash:ip entries are addresses; hash:net entries are CIDRs (`nomatch` carves holes,
    the most specific prefix wins, as ipset does); hash:ip,port entries read
    "ip,proto:port" (ipset's own syntax, proto lower case). `entries` is a `Members`
    (any iterable of strings is turned into one), so a new version of a big set that
    differs by a few entries is cheap to make and to diff."""

    name: str
    type: SetType
    family: Family
    entries: Members = attrs.field(factory=Members.of, converter=_members)
    nomatch: tuple[str, ...] = ()
    comment: str = ""


@attrs.frozen(kw_only=True)
class Rule:
    """One filter rule: every match field that is set must match; then `target` runs.

    `target` is ACCEPT, DROP, REJECT, RETURN, MARK (uses `set_mark`), NFLOG, or a chain
    name to jump to.
    """

    target: str
    comment: str = ""
    src_addr: str | None = None  # an address, or a network "a.b.c.d/n"
    dst_addr: str | None = None
    src_set: str | None = None
    dst_set: str | None = None
    dst_ip_port_set: str | None = None  # hash:ip,port matched on (daddr, proto, dport)
    protocol: str | None = None  # tcp, udp, sctp, icmp, icmpv6
    dport: tuple[int, int] | None = None  # inclusive range
    icmp_type: str | None = None
    ctstate: tuple[str, ...] = ()  # any of these states
    src_local: bool = False  # source address is local to this node (kubelet probes)
    dst_local: bool = False  # destination address is local to this node
    mark: tuple[int, int] | None = None  # (value, mask): (packet mark & mask) == value
    mark_negate: bool = False
    set_mark: tuple[int, int] | None = None  # MARK: mark = (mark & ~mask) | value
    limit: str | None = None  # NFLOG rate, e.g. "10/minute"
    policy: str | None = None  # "namespace/name" of the policy this rule comes from
    origin: str | None = None  # e.g. "ingress[0] from[1] ports[0]"


@attrs.frozen(kw_only=True)
class Chain:
    name: str
    rules: tuple[Rule, ...] = ()
    hook: str | None = None  # INPUT/FORWARD/OUTPUT for the top-level chains
    owner: str | None = None  # pod key or policy key
    direction: str | None = None  # "ingress" / "egress" for pod and policy chains
    comment: str = ""


@attrs.frozen(kw_only=True, eq=False)
class Ruleset:
    """Everything one node programs for one address family."""

    node: str
    family: Family
    local_addresses: frozenset[str]  # what `addrtype --src-type LOCAL` sees
    sets: Mapping[str, IPSet]
    chains: Mapping[str, Chain]  # insertion order: dependencies before dependants

    def top_chain(self, hook: str) -> Chain:
        return self.chains[f"KUBE-ROUTER-{hook}"]


@attrs.frozen(kw_only=True, eq=False)
class DesiredState:
    """The firewall one node wants: a ruleset per enabled family."""

    node: str
    rulesets: Mapping[int, Ruleset]
    # (built-in chain, our chain): the jumps the applier keeps at the top of INPUT etc.
    builtin_jumps: tuple[tuple[str, str], ...] = (
        ("INPUT", "KUBE-ROUTER-INPUT"),
        ("FORWARD", "KUBE-ROUTER-FORWARD"),
        ("OUTPUT", "KUBE-ROUTER-OUTPUT"),
    )
