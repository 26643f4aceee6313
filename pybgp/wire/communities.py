"""COMMUNITIES (RFC 1997), EXTENDED_COMMUNITIES (RFC 4360), LARGE_COMMUNITIES (RFC 8092)."""

from __future__ import annotations

import struct

from pybgp.wire.aspath import MalformedAttribute

# Well-known communities (RFC 1997 §4, RFC 3765, RFC 7999, RFC 8326).
WELL_KNOWN = {
    0xFFFFFF01: "no-export",
    0xFFFFFF02: "no-advertise",
    0xFFFFFF03: "no-export-subconfed",
    0xFFFFFF04: "no-peer",
    0xFFFF0000: "graceful-shutdown",
    0xFFFF029A: "blackhole",
}
_BY_NAME = {name: value for value, name in WELL_KNOWN.items()}
NO_EXPORT, NO_ADVERTISE, NO_EXPORT_SUBCONFED = 0xFFFFFF01, 0xFFFFFF02, 0xFFFFFF03


def decode_communities(value: bytes) -> tuple[int, ...]:
    if not value or len(value) % 4:
        raise MalformedAttribute(f"COMMUNITIES length {len(value)} is not a non-zero multiple of 4")
    return struct.unpack(f">{len(value) // 4}I", value)


def encode_communities(values: tuple[int, ...]) -> bytes:
    return struct.pack(f">{len(values)}I", *values)


def community_to_str(value: int) -> str:
    return f"{value >> 16}:{value & 0xFFFF}"


def community_from_str(text: str) -> int:
    """ "65000:100" or a well-known name such as "no-export"."""
    if text in _BY_NAME:
        return _BY_NAME[text]
    high, sep, low = text.partition(":")
    if sep and high.isdigit() and low.isdigit() and int(high) <= 0xFFFF and int(low) <= 0xFFFF:
        return int(high) << 16 | int(low)
    raise ValueError(f"invalid community {text!r} (expected A:B with 16-bit numbers, or a name)")


def decode_extended_communities(value: bytes) -> tuple[bytes, ...]:
    if not value or len(value) % 8:
        raise MalformedAttribute(
            f"EXTENDED_COMMUNITIES length {len(value)} is not a non-zero multiple of 8"
        )
    return tuple(value[i : i + 8] for i in range(0, len(value), 8))


def extended_community_to_str(value: bytes) -> str:
    """Route target / origin in operator form where unambiguous, else 16 hex digits."""
    kind, sub = value[0], value[1]
    if sub in (2, 3) and kind in (0x00, 0x01, 0x02):
        name = "rt" if sub == 2 else "soo"
        if kind == 0x00:
            return f"{name}:{int.from_bytes(value[2:4], 'big')}:{int.from_bytes(value[4:], 'big')}"
        if kind == 0x01:
            return f"{name}:{'.'.join(map(str, value[2:6]))}:{int.from_bytes(value[6:], 'big')}"
        return f"{name}4:{int.from_bytes(value[2:6], 'big')}:{int.from_bytes(value[6:], 'big')}"
    return "0x" + value.hex()


def extended_community_from_str(text: str) -> bytes:
    try:
        if text.startswith("0x") and len(text) == 18:
            return bytes.fromhex(text[2:])
        name, admin, assigned = text.split(":")
        sub = {"rt": 2, "soo": 3, "rt4": 2, "soo4": 3}[name]
        if name.endswith("4"):
            return (
                bytes((0x02, sub))
                + int(admin).to_bytes(4, "big")
                + int(assigned).to_bytes(2, "big")
            )
        if "." in admin:
            octets = bytes(int(part) for part in admin.split("."))
            if len(octets) != 4:
                raise ValueError
            return bytes((0x01, sub)) + octets + int(assigned).to_bytes(2, "big")
        return bytes((0x00, sub)) + int(admin).to_bytes(2, "big") + int(assigned).to_bytes(4, "big")
    except (ValueError, KeyError, OverflowError):
        raise ValueError(
            f"invalid extended community {text!r}"
            " (rt:ASN:N, rt:IP:N, rt4:ASN:N, soo:..., or 0x + 16 hex)"
        ) from None


LargeCommunity = tuple[int, int, int]


def decode_large_communities(value: bytes) -> tuple[LargeCommunity, ...]:
    if not value or len(value) % 12:
        raise MalformedAttribute(
            f"LARGE_COMMUNITIES length {len(value)} is not a non-zero multiple of 12"
        )
    flat = struct.unpack(f">{len(value) // 4}I", value)
    return tuple((flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3))


def encode_large_communities(values: tuple[LargeCommunity, ...]) -> bytes:
    return b"".join(struct.pack(">III", *value) for value in values)


def large_community_to_str(value: LargeCommunity) -> str:
    return "{}:{}:{}".format(*value)


def large_community_from_str(text: str) -> LargeCommunity:
    parts = text.split(":")
    if len(parts) == 3 and all(p.isdigit() and int(p) < 2**32 for p in parts):
        return int(parts[0]), int(parts[1]), int(parts[2])
    raise ValueError(f"invalid large community {text!r} (expected A:B:C with 32-bit numbers)")
