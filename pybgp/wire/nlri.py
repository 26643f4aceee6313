"""NLRI: prefixes in wire form (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).

A prefix is kept exactly as the wire carries it, one `bytes` per NLRI:
`[path identifier (4 octets, ADD-PATH only)] length-octet prefix-octets`. That is one slice
of the message per prefix, compact and hashable, so the RIB stores what the decoder cut out.
Host bits past the prefix length are cleared, so equal prefixes are equal keys.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable

from pybgp.wire.constants import AFI_IPV6, Family

Nlri = bytes

_UNIFORM_MARKS = [bytes((plen,)) for plen in range(256)]
_SPLITTERS: dict[tuple[int, int], Callable[[bytes], tuple[bytes, ...]]] = {}


def _splitter(step: int, count: int) -> Callable[[bytes], tuple[bytes, ...]]:
    """Cuts `count` pieces of `step` octets in one C call (struct "Ns" fields)."""
    split = _SPLITTERS.get((step, count))
    if split is None:
        split = _SPLITTERS[step, count] = struct.Struct(f"{step}s" * count).unpack
    return split


class NlriError(ValueError):
    """An NLRI field that cannot be split into prefixes (length over the family's maximum,
    or a prefix running past the end of the field)."""


def parse_nlri(data: bytes, max_bits: int, addpath: bool) -> tuple[Nlri, ...]:
    """Split an NLRI field into wire-form prefixes.

    `max_bits` is 32 or 128. Most UPDATEs carry prefixes of one length; that case is checked
    in one comparison and cut by one struct call.
    """
    size = len(data)
    if not size:
        return ()
    off = 4 if addpath else 0
    if size > off:
        plen = data[off]
        step = off + 1 + ((plen + 7) >> 3)
        if plen <= max_bits and size % step == 0 and plen & 7 == 0:
            marks = data[off::step]
            if marks == _UNIFORM_MARKS[plen] * len(marks):
                return _splitter(step, len(marks))(data)
    return _parse_nlri_general(data, max_bits, off)


def _parse_nlri_general(data: bytes, max_bits: int, off: int) -> tuple[Nlri, ...]:
    out: list[Nlri] = []
    i, size = 0, len(data)
    while i < size:
        if i + off >= size:
            raise NlriError(f"NLRI truncated at octet {i}")
        plen = data[i + off]
        if plen > max_bits:
            raise NlriError(f"prefix length {plen} exceeds {max_bits}")
        end = i + off + 1 + ((plen + 7) >> 3)
        if end > size:
            raise NlriError(f"prefix of length {plen} at octet {i} runs past the NLRI field")
        key = data[i:end]
        if plen & 7 and key[-1] & (0xFF >> (plen & 7)):
            key = key[:-1] + bytes((key[-1] & (0xFF << (8 - (plen & 7))) & 0xFF,))
        out.append(key)
        i = end
    return tuple(out)


def max_bits(family: Family) -> int:
    return 128 if family.afi == AFI_IPV6 else 32


def nlri_prefix(key: Nlri, addpath: bool) -> tuple[int, bytes]:
    """(prefix length, significant prefix octets) of a wire-form NLRI."""
    off = 4 if addpath else 0
    return key[off], key[off + 1 :]


def nlri_path_id(key: Nlri) -> int:
    """The ADD-PATH path identifier of a wire-form NLRI (only for ADD-PATH keys)."""
    return int.from_bytes(key[:4], "big")


def nlri_to_str(key: Nlri, family: Family, addpath: bool = False) -> str:
    """ "10.0.0.0/24" or "2001:db8::/32" (without the path identifier)."""
    plen, octets = nlri_prefix(key, addpath)
    width = family.address_len
    value = int.from_bytes(octets.ljust(width, b"\0"), "big")
    if width == 16:
        return f"{ipaddress.IPv6Address(value)}/{plen}"
    return f"{ipaddress.IPv4Address(value)}/{plen}"


def nlri_from_str(text: str, family: Family, path_id: int | None = None) -> Nlri:
    """Wire form of "10.0.0.0/24"; host bits must be clear. `path_id` adds the ADD-PATH id."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"invalid prefix {text!r}: {exc}") from None
    if (net.version == 6) != (family.afi == AFI_IPV6):
        raise ValueError(f"prefix {text!r} is not in family {family.name}")
    plen = net.prefixlen
    octets = net.network_address.packed[: (plen + 7) >> 3]
    key = bytes((plen,)) + octets
    if path_id is not None:
        key = path_id.to_bytes(4, "big") + key
    return key


def address_to_str(raw: bytes) -> str:
    """An IPv4 (4 octets) or IPv6 (16 octets) address as text."""
    if len(raw) == 4:
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    return str(ipaddress.IPv6Address(raw))


_ADDRESS_TEXT: dict[bytes, str] = {}  # a whole table has few distinct next hops


def address_text(raw: bytes) -> str:
    """`address_to_str`, remembered: next hops repeat on every route."""
    text = _ADDRESS_TEXT.get(raw)
    if text is None:
        if len(_ADDRESS_TEXT) > 4096:
            _ADDRESS_TEXT.clear()
        text = _ADDRESS_TEXT[raw] = address_to_str(raw)
    return text


def address_from_str(text: str) -> bytes:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise ValueError(f"invalid IP address {text!r}") from None
