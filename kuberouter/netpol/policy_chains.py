"""One policy, one direction, one family -> a KUBE-NWPLCY chain and the ipsets it uses.

The chain holds, for every (peer match x port match) of every rule, upstream's pair:
`<match> -j MARK 0x10000` then `<match> + mark 0x10000 -j RETURN`. Peers become sets:
all pod/namespace-selector peers of a rule share one hash:ip set; each ipBlock peer gets
its own hash:net set (one set per block keeps `except` exact: ipset's most-specific
`nomatch` would let one block's hole cut through another block). Named ports are one
shared hash:ip,port set per (name, protocol) of every pod declaring it, matched on
(daddr, proto, dport), so a name resolves per destination pod. A rule whose peers all
belong to the other family yields nothing (not "everything").

What the pod and named-port sets hold comes from a `SetSource`: `IndexSource` reads the
label index (the from-scratch compile); the incremental compiler hands in the members it
keeps up to date, so reshaping a policy's chains does not select its peers again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Protocol

import attrs

from kuberouter.model import IPBlock, NetworkPolicy, Pod, PolicyPort, PolicyRule
from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol import names
from kuberouter.netpol.index import PodIndex
from kuberouter.netpol.ruleset import MARK_ALLOWED, Chain, Family, IPSet, Rule, SetType


@attrs.frozen
class _PeerMatch:
    set_name: str | None  # None: any address
    origin: str


@attrs.frozen
class _PortMatch:
    protocol: str | None = None
    dport: tuple[int, int] | None = None
    ip_port_set: str | None = None
    origin: str = ""


def family_ips(pods: Iterable[Pod], family: Family) -> set[str]:
    return {ip for pod in pods for ip in pod.ips_of_family(family)}


class SetSource(Protocol):
    def peer_ips(self, direction: Direction, number: int, family: Family) -> Iterable[str]:
        """Addresses of the pods the pod/namespace-selector peers of rule `number` select."""
        ...

    def named_port_set(self, port: str, protocol: str, family: Family) -> IPSet:
        """The shared set of the pods declaring `port`/`protocol`."""
        ...


@attrs.frozen
class IndexSource:
    """Set contents straight from the label index, for one policy."""

    index: PodIndex
    policy: NetworkPolicy

    def peer_ips(self, direction: Direction, number: int, family: Family) -> set[str]:
        keys = rule_peer_keys(self.index, self.policy, self.policy.rules(direction)[number])
        return family_ips((self.index.pod(key) for key in keys), family)

    def named_port_set(self, port: str, protocol: str, family: Family) -> IPSet:
        entries = indexed_named_port_entries(self.index, port, protocol, family)
        return named_port_ipset(port, protocol, family, entries)


def rule_peer_keys(index: PodIndex, policy: NetworkPolicy, rule: PolicyRule) -> set[str]:
    """Keys of the pods a rule's pod/namespace-selector peers select, anywhere."""
    keys: set[str] = set()
    for peer in rule.peers:
        if peer.ip_block is None:
            keys |= index.peer_pods(policy.namespace, peer)
    return keys


def policy_chain(
    policy: NetworkPolicy,
    direction: Direction,
    family: Family,
    *,
    targets: Sequence[Pod],
    sets: dict[str, IPSet],
    source: SetSource,
) -> Chain:
    """Build the chain for `policy`/`direction`; add the sets it uses to `sets`."""
    return _Builder(policy, direction, family, source, sets).chain(targets)


@attrs.define
class _Builder:
    policy: NetworkPolicy
    direction: Direction
    family: Family
    source: SetSource
    sets: dict[str, IPSet]

    def chain(self, targets: Sequence[Pod]) -> Chain:
        policy, direction = self.policy, self.direction
        target = names.target_set(policy.namespace, policy.name, direction, self.family)
        self._add(target, "hash:ip", family_ips(targets, self.family), f"{direction} targets")
        rules: list[Rule] = []
        for number, rule in enumerate(policy.rules(direction)):
            ports = self._port_matches(rule)
            for peer in self._peer_matches(number, rule):
                for port in ports:
                    rules.extend(self._allow(target, peer, port))
        return Chain(
            name=names.policy_chain(policy.namespace, policy.name, direction, self.family),
            rules=tuple(rules),
            owner=policy.key,
            direction=direction,
            comment=f"{direction} rules of policy {policy.key}",
        )

    def _add(
        self,
        name: str,
        kind: SetType,
        entries: Iterable[str],
        comment: str,
        nomatch: Sequence[str] = (),
    ) -> None:
        self.sets[name] = IPSet(
            name=name,
            type=kind,
            family=self.family,
            entries=entries,
            nomatch=tuple(nomatch),
            comment=f"{self.policy.key} {comment}",
        )

    def _peer_matches(self, number: int, rule: PolicyRule) -> list[_PeerMatch]:
        policy, direction = self.policy, self.direction
        label = "from" if direction == "ingress" else "to"
        where = f"{direction}[{number}]"
        if not rule.peers:
            return [
                _PeerMatch(
                    None, f"{where} (every {'source' if label == 'from' else 'destination'})"
                )
            ]
        matches: list[_PeerMatch] = []
        selecting = [i for i, peer in enumerate(rule.peers) if peer.ip_block is None]
        if selecting:
            name = names.rule_pods_set(
                policy.namespace, policy.name, direction, number, self.family
            )
            entries = self.source.peer_ips(direction, number, self.family)
            self._add(name, "hash:ip", entries, f"{where} pod peers")
            matches.append(_PeerMatch(name, f"{where} {label}[{','.join(map(str, selecting))}]"))
        for i, peer in enumerate(rule.peers):
            if peer.ip_block is None or peer.ip_block.family != self.family:
                continue
            name = names.rule_ip_block_set(
                policy.namespace, policy.name, direction, rule=number, peer=i, family=self.family
            )
            entries, holes = _block_entries(peer.ip_block)
            self._add(name, "hash:net", entries, f"{where} {label}[{i}]", nomatch=holes)
            matches.append(_PeerMatch(name, f"{where} {label}[{i}]"))
        return matches

    def _port_matches(self, rule: PolicyRule) -> list[_PortMatch]:
        if not rule.ports:
            return [_PortMatch(origin="(all ports)")]
        return [self._port_match(entry, f"ports[{i}]") for i, entry in enumerate(rule.ports)]

    def _port_match(self, entry: PolicyPort, origin: str) -> _PortMatch:
        protocol = entry.protocol.lower()
        if entry.port is None:
            return _PortMatch(protocol=protocol, origin=origin)
        if isinstance(entry.port, int):
            dport = (entry.port, entry.end_port or entry.port)
            return _PortMatch(protocol=protocol, dport=dport, origin=origin)
        name = names.named_port_set(entry.port, entry.protocol, self.family)
        if name not in self.sets:
            self.sets[name] = self.source.named_port_set(entry.port, entry.protocol, self.family)
        return _PortMatch(protocol=protocol, ip_port_set=name, origin=f"{origin} ({entry.port})")

    def _allow(self, target: str, peer: _PeerMatch, port: _PortMatch) -> tuple[Rule, Rule]:
        ingress = self.direction == "ingress"
        src, dst = (peer.set_name, target) if ingress else (target, peer.set_name)
        origin = f"{peer.origin} {port.origin}"
        match = Rule(
            target="MARK",
            set_mark=(MARK_ALLOWED, MARK_ALLOWED),
            comment=f"rule to ACCEPT traffic allowed by policy {self.policy.key} {origin}",
            src_set=src,
            dst_set=dst,
            dst_ip_port_set=port.ip_port_set,
            protocol=port.protocol,
            dport=port.dport,
            policy=self.policy.key,
            origin=origin,
        )
        done = attrs.evolve(
            match, target="RETURN", set_mark=None, mark=(MARK_ALLOWED, MARK_ALLOWED), comment=""
        )
        return match, done


def named_port_ipset(port: str, protocol: str, family: Family, entries: Iterable[str]) -> IPSet:
    """The shared hash:ip,port set of the pods declaring `port`/`protocol`."""
    return IPSet(
        name=names.named_port_set(port, protocol, family),
        type="hash:ip,port",
        family=family,
        entries=entries,
        comment=f"pods declaring port {port}/{protocol}",
    )


def indexed_named_port_entries(
    index: PodIndex, port: str, protocol: str, family: Family
) -> list[str]:
    """The members of a named-port set, for every indexed pod declaring the port."""
    return [
        entry
        for pod, number in index.named_port(port, protocol)
        for entry in named_port_entries(pod, number, protocol, family)
    ]


def named_port_entries(pod: Pod, number: int, protocol: str, family: Family) -> list[str]:
    """One pod's members of a named-port set ("ip,proto:port")."""
    proto = protocol.lower()
    return [f"{ip},{proto}:{number}" for ip in pod.ips_of_family(family)]


def named_ports_used(policy: NetworkPolicy, direction: Direction) -> set[tuple[str, str]]:
    """(port name, protocol) of every named port in the policy's rules of `direction`:
    the chain for it (in any family) brings those shared sets along."""
    return {
        (entry.port, entry.protocol)
        for rule in policy.rules(direction)
        for entry in rule.ports
        if isinstance(entry.port, str)
    }


def _block_entries(block: IPBlock) -> tuple[list[str], list[str]]:
    """(entries, nomatch entries) of one ipBlock's hash:net set."""
    network = ipaddress.ip_network(block.cidr)
    # ipset hash:net cannot hold a /0: cover it with its two halves.
    if network.prefixlen == 0:
        return [half.compressed for half in network.subnets(1)], list(block.except_)
    return [block.cidr], list(block.except_)
