"""Defined sets compiled for matching: prefix tables, address sets, regexes.

Prefix sets are never scanned. Per family, a table indexed by the route's prefix length L
lists the entry lengths p that can match an L-bit prefix (entries whose ge..le holds L),
each with the set of their p-bit networks. A route's wire-form key (length octet, prefix
octets) read as one integer and shifted right keeps exactly its length octet and its first
p bits, so the entries are stored as (L << p | first p bits) and one shift plus one set
lookup per candidate length decides: the cost grows with the number of distinct entry
lengths that cover L, not with the number of entries.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from pybgp.policy.context import RouteContext
from pybgp.policy.sets import PrefixEntry, as_path_regex
from pybgp.wire.constants import AFI_IPV4, AFI_IPV6

V = TypeVar("V")
_CACHE_LIMIT = 4096
Row = tuple[tuple[int, frozenset[int]], ...]  # (shift, values) per candidate entry length


class PrefixTable:
    """Which route prefixes (wire-form keys) fall in any entry of a prefix set."""

    __slots__ = ("_plans", "entries")

    def __init__(self, entries: Iterable[PrefixEntry]) -> None:
        self.entries = tuple(entries)
        self._plans: dict[int, list[Row]] = {}
        for afi, bits in ((AFI_IPV4, 32), (AFI_IPV6, 128)):
            mine = [e for e in self.entries if (":" in e.prefix) == (afi == AFI_IPV6)]
            if mine:
                self._plans[afi] = _plan(mine, bits)

    def contains(self, key: bytes, afi: int) -> bool:
        plan = self._plans.get(afi)
        length = key[0]
        if plan is None or length >= len(plan):
            return False
        value = int.from_bytes(key, "big")
        for shift, values in plan[length]:  # noqa: SIM110 (a loop beats any() + generator)
            if value >> shift in values:
                return True
        return False

    def route_test(self, invert: bool) -> Callable[[RouteContext, str], bool]:
        """`contains` as a condition on a RouteContext (its prefix and family), inlined:
        this is the hottest test of all."""
        plans, from_bytes = self._plans, int.from_bytes

        def test(ctx: RouteContext, _next_hop: str) -> bool:
            plan = plans.get(ctx.family.afi)
            key = ctx.prefix
            if plan is None or key[0] >= len(plan):
                return invert
            value = from_bytes(key, "big")
            for shift, values in plan[key[0]]:
                if value >> shift in values:
                    return not invert
            return invert

        return test


def _plan(entries: list[PrefixEntry], bits: int) -> list[Row]:
    rows: list[dict[int, set[int]]] = [{} for _ in range(bits + 1)]
    for entry in entries:
        net = entry.network
        plen, top = net.prefixlen, int(net.network_address) >> (bits - net.prefixlen)
        for length in range(entry.ge, entry.le + 1):
            rows[length].setdefault(plen, set()).add(length << plen | top)
    return [
        tuple(
            (8 * ((length + 7) >> 3) - plen, frozenset(values))
            for plen, values in sorted(row.items(), key=lambda item: -len(item[1]))
        )
        for length, row in enumerate(rows)
    ]


class AddressMatcher:
    """Addresses and prefixes (neighbor sets, next-hop conditions); answers are cached by
    address text, since few distinct peers and next hops carry a whole table."""

    __slots__ = ("_cache", "_exact", "_networks")

    def __init__(self, members: Iterable[str]) -> None:
        exact: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for member in members:
            if "/" in member:
                networks.append(ipaddress.ip_network(member))
            else:
                exact.add(ipaddress.ip_address(member))
        self._exact, self._networks = frozenset(exact), tuple(networks)
        self._cache: dict[str, bool] = {}

    def contains(self, address: str) -> bool:
        found = self._cache.get(address)
        if found is None:
            found = self._lookup(address)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[address] = found
        return found

    def _lookup(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip in self._exact:
            return True
        return any(ip.version == net.version and ip in net for net in self._networks)


class AsPathMatcher:
    """The regular expressions of an AS-path set, searched in the path's text."""

    __slots__ = ("regexes",)

    def __init__(self, patterns: Iterable[str]) -> None:
        self.regexes = tuple(as_path_regex(p) for p in patterns)

    def hits(self, text: str) -> list[bool]:
        return [regex.search(text) is not None for regex in self.regexes]


class ValueMatcher(Generic[V]):
    """Community-like sets: exact members (compared as values) and regexes (searched in
    each value's text form)."""

    __slots__ = ("exact", "regexes", "to_text")

    def __init__(self, members: Iterable[V | re.Pattern[str]], to_text: Callable[[V], str]) -> None:
        exact: list[V] = []
        regexes: list[re.Pattern[str]] = []
        for member in members:
            if isinstance(member, re.Pattern):
                regexes.append(member)
            else:
                exact.append(member)
        self.exact, self.regexes, self.to_text = frozenset(exact), tuple(regexes), to_text

    def matches_value(self, value: V) -> bool:
        if value in self.exact:
            return True
        if self.regexes:
            text = self.to_text(value)
            return any(regex.search(text) for regex in self.regexes)
        return False

    def any(self, values: tuple[V, ...]) -> bool:
        """Some value of the route matches some member."""
        return any(self.matches_value(value) for value in values)

    def all(self, values: tuple[V, ...]) -> bool:
        """Every member matches some value of the route."""
        if not self.exact.issubset(values):
            return False
        texts = [self.to_text(value) for value in values] if self.regexes else []
        return all(any(regex.search(text) for text in texts) for regex in self.regexes)

    def test(self, values: tuple[V, ...], option: str) -> bool:
        if option == "all":
            return self.all(values)
        return self.any(values) != (option == "invert")
