"""Membership tests with the kernel's ipset semantics, for the evaluator.

hash:ip is exact; hash:net picks the most specific prefix containing the address and
matches unless that entry is `nomatch`; hash:ip,port matches (address, protocol, port).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from kuberouter.netpol.ruleset import IPSet

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SetMatcher:
    def __init__(self, sets: Mapping[str, IPSet]) -> None:
        self._sets = sets
        self._ips: dict[str, frozenset[str]] = {}
        self._nets: dict[str, list[tuple[_Network, bool]]] = {}
        self._ip_ports: dict[str, frozenset[tuple[str, str, int]]] = {}

    def _get(self, name: str) -> IPSet:
        try:
            return self._sets[name]
        except KeyError:
            raise KeyError(f"rule refers to unknown ipset {name}") from None

    def contains(self, name: str, address: str) -> bool:
        ipset = self._get(name)
        if ipset.type == "hash:ip":
            if name not in self._ips:
                self._ips[name] = frozenset(ipset.entries)
            return address in self._ips[name]
        if ipset.type == "hash:net":
            return self._net_contains(ipset, address)
        raise ValueError(f"ipset {name} ({ipset.type}) cannot match a single address")

    def _net_contains(self, ipset: IPSet, address: str) -> bool:
        entries = self._nets.get(ipset.name)
        if entries is None:
            entries = [(ipaddress.ip_network(cidr), False) for cidr in ipset.entries]
            entries += [(ipaddress.ip_network(cidr), True) for cidr in ipset.nomatch]
            entries.sort(key=lambda entry: -entry[0].prefixlen)
            self._nets[ipset.name] = entries
        ip = ipaddress.ip_address(address)
        for network, nomatch in entries:
            if ip in network:
                return not nomatch
        return False

    def contains_ip_port(self, name: str, address: str, protocol: str, port: int) -> bool:
        found = self._ip_ports.get(name)
        if found is None:
            found = frozenset(_ip_port(entry) for entry in self._get(name).entries)
            self._ip_ports[name] = found
        return (address, protocol, port) in found


def _ip_port(entry: str) -> tuple[str, str, int]:
    """Parse ipset's "ip,proto:port" (the address may be IPv6, so split from the right)."""
    address, _, proto_port = entry.rpartition(",")
    protocol, _, port = proto_port.rpartition(":")
    return address, protocol, int(port)
