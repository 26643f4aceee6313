"""Synthetic UPDATE streams for the benchmarks: IPv4 /24s, 10 per UPDATE, distinct AS paths."""

from __future__ import annotations

import struct

from pybgp.wire.header import frame


def update_stream(prefixes: int, per_update: int = 10, first_as: int = 65001) -> bytes:
    """UPDATEs announcing `prefixes` /24s from 10.0.0.0 on, each UPDATE with its own AS path
    (first_as, 64512 + n % 1000, n), ORIGIN IGP and NEXT_HOP 192.0.2.1."""
    out = bytearray()
    for n, start in enumerate(range(0, prefixes, per_update)):
        count = min(per_update, prefixes - start)
        path = struct.pack(">BBIII", 2, 3, first_as, 64512 + n % 1000, 100000 + n)
        attrs = (
            b"\x40\x01\x01\x00"
            + b"\x40\x02"
            + bytes((len(path),))
            + path
            + b"\x40\x03\x04\xc0\x00\x02\x01"
        )
        nlri = b"".join(
            bytes((24, 10 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF))
            for i in range(start, start + count)
        )
        body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + nlri
        out += frame(2, body)
    return bytes(out)
