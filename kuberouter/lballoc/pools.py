"""The address pools of --loadbalancer-ip-range, per family, and the search for a free address.

Every address of a range may be handed out (network and broadcast addresses too, as
upstream: a /32 range is one usable address). Overlapping ranges are merged. The search
walks on from a cursor (the last address handed out) and wraps around the ranges, so an
address just released is not given to another service at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container, Iterable, Iterator

import attrs

from kuberouter.model.service import IPFamily

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def family_of(ip: str) -> IPFamily:
    return "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"


def _version(family: IPFamily) -> int:
    return 4 if family == "IPv4" else 6


@attrs.frozen
class Pools:
    networks: tuple[Network, ...]  # merged, sorted, IPv4 first

    @classmethod
    def parse(cls, ranges: Iterable[str]) -> Pools:
        """From the flag's CIDRs; ValueError names the first that is not one."""
        parsed: list[Network] = []
        for text in ranges:
            try:
                parsed.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{text!r} is not a CIDR") from None
        v4 = [n for n in parsed if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in parsed if isinstance(n, ipaddress.IPv6Network)]
        return cls((*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)))

    def families(self) -> tuple[IPFamily, ...]:
        have = {n.version for n in self.networks}
        return tuple(f for f in ("IPv4", "IPv6") if _version(f) in have)

    def has(self, family: IPFamily) -> bool:
        return family in self.families()

    def contains(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return any(address in network for network in self.networks)

    def size(self, family: IPFamily) -> int:
        return sum(n.num_addresses for n in self._of(family))

    def first_free(self, family: IPFamily, used: Container[str], after: int | None) -> str | None:
        """The first address of `family` not in `used`, after the address `after` (an int),
        wrapping round; None when every one is used."""
        address = ipaddress.IPv4Address if family == "IPv4" else ipaddress.IPv6Address
        for value in _walk(self._of(family), after):
            candidate = address(value).compressed
            if candidate not in used:
                return candidate
        return None

    def _of(self, family: IPFamily) -> list[Network]:
        version = _version(family)
        return [n for n in self.networks if n.version == version]


def _walk(networks: list[Network], after: int | None) -> Iterator[int]:
    """Every address of the networks once, starting just past `after` and wrapping round.

    Callers stop at the first free address, so a walk costs one step per used address.
    """
    start = 0 if after is None else after + 1
    ahead: list[tuple[int, int]] = []
    behind: list[tuple[int, int]] = []  # visited last, after wrapping round
    for network in networks:
        low, high = int(network.network_address), int(network.broadcast_address)
        if high < start:
            behind.append((low, high))
        elif low < start:
            ahead.append((start, high))
            behind.append((low, start - 1))
        else:
            ahead.append((low, high))
    for low, high in ahead + behind:
        yield from range(low, high + 1)
