"""Defined sets (GoBGP "defined-sets", FRR prefix-lists, as-path and community lists).

A set is a name and its members as operators write them; the members are checked when the
set is made (`ValueError` saying which member and why) and compiled by `pybgp.policy.match`.

- Prefix set entries: "10.0.0.0/8" (exactly that prefix), "10.0.0.0/8 le 24" (10/8 and
  every prefix inside it up to /24), "10.0.0.0/8 ge 16" (/16 up to /32 inside 10/8),
  "10.0.0.0/8 ge 16 le 24", or GoBGP's masklength range "10.0.0.0/8 16..24". IPv4 and IPv6
  entries may share a set; a route only meets entries of its own family.
- Neighbor sets: addresses ("192.0.2.1") or prefixes ("192.0.2.0/24").
- AS-path sets: regular expressions over the path as text, "65001 65002 {65003,65004}"
  (AS_SET in braces, confederation segments in parentheses / brackets), where `_` stands
  for a separator or the start or end of the path, as in FRR and GoBGP.
- Community sets: "65000:100" (exact), a well-known name ("no-export", "NO_EXPORT",
  "blackhole", ...), or a regular expression searched in each community's "A:B" text.
- Large community sets: "65000:1:2" exact, or a regular expression over "A:B:C".
- Extended community sets: "rt:65000:1", "soo:192.0.2.1:7", "rt4:4200000000:1",
  "0x" + 16 hex digits exact, or a regular expression over that text (case-insensitive).
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from pybgp.wire.communities import (
    WELL_KNOWN,
    community_from_str,
    extended_community_from_str,
    large_community_from_str,
)

_BITS = {4: 32, 6: 128}
_RANGE_WORDS = re.compile(r"^(?:ge (\d+))?\s*(?:le (\d+))?$")
_MASK_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")

# Names beyond pybgp.wire.communities.WELL_KNOWN that FRR and GoBGP users write.
_ALIASES = {
    "internet": 0,
    "local-as": 0xFFFFFF03,
    "accept-own": 0xFFFF0001,
    "llgr-stale": 0xFFFF0006,
    "no-llgr": 0xFFFF0007,
}
WELL_KNOWN_NAMES = {name: value for value, name in WELL_KNOWN.items()} | _ALIASES


@attrs.frozen(kw_only=True)
class PrefixEntry:
    """One prefix-set entry: prefixes inside `prefix` whose length is in `ge`..`le`."""

    prefix: str  # normalised, "10.0.0.0/8"
    ge: int
    le: int

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.prefix)

    @classmethod
    def parse(cls, text: str) -> PrefixEntry:
        """ "10.0.0.0/8", "10.0.0.0/8 le 24", "... ge 16", "... ge 16 le 24", "... 16..24"."""
        head, _, rest = text.strip().partition(" ")
        try:
            net = ipaddress.ip_network(head, strict=True)
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
        plen, bits = net.prefixlen, _BITS[net.version]
        ge, le = _lengths(rest.strip(), plen, bits, text)
        if not plen <= ge <= le <= bits:
            raise ValueError(f"{text!r}: need {plen} <= ge <= le <= {bits} (got ge {ge}, le {le})")
        return cls(prefix=str(net), ge=ge, le=le)

    def __str__(self) -> str:
        plen = int(self.prefix.rsplit("/", 1)[1])
        if self.ge == self.le == plen:
            return self.prefix
        bits = 128 if ":" in self.prefix else 32
        ge = f" ge {self.ge}" if self.ge != plen else ""
        le = f" le {self.le}" if self.le != bits or not ge else ""
        return f"{self.prefix}{ge}{le}"


def _lengths(rest: str, plen: int, bits: int, text: str) -> tuple[int, int]:
    """(ge, le) from what follows the prefix; FRR: "ge N" alone reaches the family's end."""
    if not rest:
        return plen, plen
    mask = _MASK_RANGE.match(rest)
    if mask:
        return int(mask[1]), int(mask[2])
    words = _RANGE_WORDS.match(rest)
    if not words:
        raise ValueError(f"{text!r}: expected PREFIX [ge N] [le N] or PREFIX MIN..MAX")
    ge = int(words[1]) if words[1] else plen
    le = int(words[2]) if words[2] else (bits if words[1] else plen)
    return ge, le


@attrs.frozen(kw_only=True)
class PrefixSet:
    name: str
    entries: tuple[PrefixEntry, ...] = ()

    @classmethod
    def parse(cls, name: str, texts: list[str] | tuple[str, ...]) -> PrefixSet:
        return cls(name=name, entries=tuple(PrefixEntry.parse(t) for t in texts))


def normalise_address_or_prefix(text: str) -> str:
    """ "192.0.2.1" or "192.0.2.0/24" (host bits must be clear), normalised."""
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=True))
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise ValueError(f"{text!r}: expected an address or a prefix ({exc})") from None


def _addresses(members: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(normalise_address_or_prefix(m) for m in members)


@attrs.frozen(kw_only=True)
class NeighborSet:
    name: str
    members: tuple[str, ...] = attrs.field(default=(), converter=_addresses)


_SEPARATOR = r"(?:^|[ ,{}()\[\]]|$)"


def as_path_regex(pattern: str) -> re.Pattern[str]:
    """FRR/GoBGP AS-path regex: `_` (outside brackets, unescaped) is a separator, the start
    or the end of the path; the rest is a Python regular expression, searched."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "_":
            out.append(_SEPARATOR)
            continue
        out.append(char)
    return _regex("".join(out), source=pattern)


def _as_path_patterns(patterns: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    for pattern in patterns:
        as_path_regex(pattern)
    return tuple(patterns)


@attrs.frozen(kw_only=True)
class AsPathSet:
    name: str
    members: tuple[str, ...] = attrs.field(default=(), converter=_as_path_patterns)


def _regex(text: str, flags: int = 0, source: str | None = None) -> re.Pattern[str]:
    try:
        return re.compile(text, flags)
    except re.error as exc:
        shown = source if source is not None else text
        raise ValueError(f"{shown!r}: not a valid regular expression ({exc})") from None


def community_member(text: str) -> int | re.Pattern[str]:
    """A community set member: the community (int) when exact or named, else a regex."""
    name = text.strip().lower().replace("_", "-")
    if name in WELL_KNOWN_NAMES:
        return WELL_KNOWN_NAMES[name]
    if re.fullmatch(r"\d+:\d+", text):
        return community_from_str(text)
    return _regex(text)


def large_community_member(text: str) -> tuple[int, int, int] | re.Pattern[str]:
    if re.fullmatch(r"\d+:\d+:\d+", text):
        return large_community_from_str(text)
    return _regex(text)


def ext_community_member(text: str) -> bytes | re.Pattern[str]:
    lowered = text.lower()
    if re.fullmatch(r"(rt4?|soo4?):[\d.]+:\d+|0x[0-9a-f]{16}", lowered):
        return extended_community_from_str(lowered)
    return _regex(text, re.IGNORECASE)


def _communities(members: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    for member in members:
        community_member(member)
    return tuple(members)


def _large_communities(members: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    for member in members:
        large_community_member(member)
    return tuple(members)


def _ext_communities(members: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    for member in members:
        ext_community_member(member)
    return tuple(members)


@attrs.frozen(kw_only=True)
class CommunitySet:
    name: str
    members: tuple[str, ...] = attrs.field(default=(), converter=_communities)


@attrs.frozen(kw_only=True)
class LargeCommunitySet:
    name: str
    members: tuple[str, ...] = attrs.field(default=(), converter=_large_communities)


@attrs.frozen(kw_only=True)
class ExtCommunitySet:
    name: str
    members: tuple[str, ...] = attrs.field(default=(), converter=_ext_communities)
