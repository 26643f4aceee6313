"""Codec ingest speed: 1,000,000 IPv4 /24 prefixes in UPDATEs of 10 with distinct AS paths,
decoded from a byte stream into what the RIB stores (interned attributes + prefix keys).

The anchor, measured in the same run: a plain CPython loop that only cuts the prefixes out
of the same messages' NLRI bytes. Run: python -m bench.bench_decode [--prefixes N]
"""

from __future__ import annotations

import argparse
import gc
import time

from bench.gen import update_stream
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.update import Update


def decode_all(stream: bytes, ctx: CodecContext) -> int:
    buf = bytearray(stream)
    routes = 0
    rib: list[tuple[object, tuple[bytes, ...]]] = []
    for _msg_type, body in split_messages(buf, ctx):
        update = Update.decode(body, ctx)
        rib.append((update.attributes, update.nlri))
        routes += len(update.nlri)
    return routes


def plain_loop(stream: bytes) -> int:
    """The anchor: walk the stream, cut every NLRI prefix out as bytes, nothing else."""
    routes, pos, size = 0, 0, len(stream)
    while pos < size:
        length = int.from_bytes(stream[pos + 16 : pos + 18], "big")
        body = stream[pos + 19 : pos + length]
        wlen = int.from_bytes(body[0:2], "big")
        alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
        data, i, n = body[4 + wlen + alen :], 0, length - 23 - wlen - alen
        out = []
        while i < n:
            end = i + 1 + ((data[i] + 7) >> 3)
            out.append(data[i:end])
            i = end
        routes += len(out)
        pos += length
    return routes


def best_of(runs: int, func: object, *args: object) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = func(*args)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefixes", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    stream = update_stream(args.prefixes)
    ctx = CodecContext(asn4=True, peer_asn=65001)
    t_codec, n_codec = best_of(args.runs, decode_all, stream, ctx)
    t_plain, n_plain = best_of(args.runs, plain_loop, stream)
    assert n_codec == n_plain == args.prefixes, (n_codec, n_plain)
    print(f"prefixes: {args.prefixes}, UPDATEs: {args.prefixes // 10}, stream {len(stream)} octets")
    print(f"pybgp codec : {t_codec:.3f} s  {args.prefixes / t_codec / 1e6:.2f} M prefixes/s")
    print(f"plain loop  : {t_plain:.3f} s  {args.prefixes / t_plain / 1e6:.2f} M prefixes/s")
    print(f"codec / plain-loop time ratio: {t_codec / t_plain:.2f}")


if __name__ == "__main__":
    main()
