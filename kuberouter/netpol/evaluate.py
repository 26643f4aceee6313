"""Run a packet through compiled rulesets the way netfilter would, and keep the trace.

This is what `simulate` and `explain` report: the verdict of the chains and sets as they
would be programmed, not a second reading of the policies. Model of the path:

- a packet from a pod crosses its node's FORWARD hook (bridged or routed; INPUT when it
  is addressed to that node itself); from a node address (host-network pods included)
  its node's OUTPUT hook; from outside the cluster nothing on the way in;
- on arrival at another node, FORWARD for a pod there, INPUT for the node itself;
- each hook walk starts at our KUBE-ROUTER-<HOOK> chain (the built-in chain's first
  rule jumps there) with an empty mark; falling off our chain leaves the packet to the
  rest of the table, which we do not own and take as accepting.

The packet is a NEW connection attempt (ctstate NEW) unless told otherwise. A flow is
allowed when no hook walk ends in DROP or REJECT.
"""

from __future__ import annotations

import ipaddress
import weakref
from collections.abc import Callable

import attrs

from kuberouter.netpol.cluster import Location
from kuberouter.netpol.ruleset import TERMINAL_TARGETS, Rule, Ruleset
from kuberouter.netpol.sets import SetMatcher


def _address(value: str) -> str:
    return ipaddress.ip_address(value).compressed


@attrs.frozen(kw_only=True)
class Packet:
    src: str = attrs.field(converter=_address)
    dst: str = attrs.field(converter=_address)
    protocol: str = "TCP"  # TCP / UDP / SCTP
    dport: int = 80
    ctstate: str = "NEW"

    @property
    def family(self) -> int:
        return 6 if ":" in self.src else 4


@attrs.frozen(kw_only=True)
class Step:
    chain: str
    index: int  # position of the rule in its chain, from 0
    rule: Rule
    action: str  # what the rule did: ACCEPT, REJECT, RETURN, MARK 0x10000/0x10000, jump X


@attrs.frozen(kw_only=True)
class HookWalk:
    node: str
    hook: str
    verdict: str  # ACCEPT, DROP, REJECT, or CONTINUE (left to the rest of the table)
    steps: tuple[Step, ...]


@attrs.frozen(kw_only=True)
class Verdict:
    packet: Packet
    allowed: bool
    walks: tuple[HookWalk, ...]


RulesetFor = Callable[[str, int], Ruleset]  # (node, family) -> that node's ruleset


def evaluate(packet: Packet, src: Location, dst: Location, ruleset_for: RulesetFor) -> Verdict:
    """Walk every hook the packet crosses (see module doc) and combine the verdicts."""
    walks = tuple(
        walk(ruleset_for(node, packet.family), hook, packet) for node, hook in path(src, dst)
    )
    allowed = all(w.verdict not in ("DROP", "REJECT") for w in walks)
    return Verdict(packet=packet, allowed=allowed, walks=walks)


def path(src: Location, dst: Location) -> list[tuple[str, str]]:
    """The (node, hook) pairs a packet from `src` to `dst` crosses, in order."""
    hops: list[tuple[str, str]] = []
    same_node = src.node is not None and src.node == dst.node
    if src.place == "pod" and src.node:
        hooks = "INPUT" if same_node and dst.place == "host" else "FORWARD"
        hops.append((src.node, hooks))
    elif src.place == "host" and src.node:
        hops.append((src.node, "OUTPUT"))
        if same_node and dst.place == "host":
            hops.append((src.node, "INPUT"))
    if not same_node and dst.node:
        hops.append((dst.node, "FORWARD" if dst.place == "pod" else "INPUT"))
    return hops


def walk(ruleset: Ruleset, hook: str, packet: Packet, start: str | None = None) -> HookWalk:
    """Traverse KUBE-ROUTER-<hook> (or the chain `start`) with jumps, RETURN and marks,
    like the kernel."""
    matcher = _matcher(ruleset)
    steps: list[Step] = []
    mark = 0
    stack: list[tuple[str, int]] = [(start or f"KUBE-ROUTER-{hook}", 0)]
    while stack:
        chain, position = stack.pop()
        rules = ruleset.chains[chain].rules
        while position < len(rules):
            rule, index = rules[position], position
            position += 1
            if not _matches(rule, packet, mark, ruleset, matcher):
                continue
            target = rule.target
            if target in TERMINAL_TARGETS:
                steps.append(Step(chain=chain, index=index, rule=rule, action=target))
                return HookWalk(node=ruleset.node, hook=hook, verdict=target, steps=tuple(steps))
            if target == "RETURN":
                steps.append(Step(chain=chain, index=index, rule=rule, action="RETURN"))
                break
            if target == "MARK":
                value, mask = rule.set_mark or (0, 0)
                mark = (mark & ~mask) | value
                action = f"MARK {value:#x}/{mask:#x}"
            elif target == "NFLOG":
                action = "NFLOG"
            else:
                steps.append(Step(chain=chain, index=index, rule=rule, action=f"jump {target}"))
                stack += [(chain, position), (target, 0)]
                break
            steps.append(Step(chain=chain, index=index, rule=rule, action=action))
    return HookWalk(node=ruleset.node, hook=hook, verdict="CONTINUE", steps=tuple(steps))


# Set lookups built once per ruleset object and dropped with it.
_MATCHERS: weakref.WeakKeyDictionary[Ruleset, SetMatcher] = weakref.WeakKeyDictionary()


def _matcher(ruleset: Ruleset) -> SetMatcher:
    matcher = _MATCHERS.get(ruleset)
    if matcher is None:
        matcher = _MATCHERS[ruleset] = SetMatcher(ruleset.sets)
    return matcher


def _matches(rule: Rule, packet: Packet, mark: int, ruleset: Ruleset, sets: SetMatcher) -> bool:
    protocol = packet.protocol.lower()
    checks = (
        rule.src_addr is None or _address_matches(rule.src_addr, packet.src),
        rule.dst_addr is None or _address_matches(rule.dst_addr, packet.dst),
        rule.protocol is None or rule.protocol == protocol,
        rule.dport is None or rule.dport[0] <= packet.dport <= rule.dport[1],
        not rule.ctstate or packet.ctstate in rule.ctstate,
        not rule.src_local or packet.src in ruleset.local_addresses,
        not rule.dst_local or packet.dst in ruleset.local_addresses,
        rule.mark is None or ((mark & rule.mark[1]) == rule.mark[0]) != rule.mark_negate,
    )
    if not all(checks):
        return False
    if rule.src_set is not None and not sets.contains(rule.src_set, packet.src):
        return False
    if rule.dst_set is not None and not sets.contains(rule.dst_set, packet.dst):
        return False
    if rule.dst_ip_port_set is not None:
        return sets.contains_ip_port(rule.dst_ip_port_set, packet.dst, protocol, packet.dport)
    return True


def _address_matches(wanted: str, address: str) -> bool:
    """A rule's address (or network, for default deny's pod CIDRs) against a packet's."""
    if "/" not in wanted:
        return wanted == address
    network = ipaddress.ip_network(wanted)
    ip = ipaddress.ip_address(address)
    return ip.version == network.version and ip in network
