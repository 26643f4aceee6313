"""RIB ingest speed and memory: 1,000,000 IPv4 /24 prefixes in UPDATEs of 10 (distinct AS
paths) from one eBGP peer, taken from decoded `Update`s into the Adj-RIB-In, then the
Loc-RIB, then exported to an eBGP update group and packed into UPDATEs.

The anchor, measured in the same run on the same decoded UPDATEs: a plain dict insert,
`table[prefix] = attributes` for every prefix. Memory: tracemalloc, bytes per route held
(keys, attributes, routes, dict entries), with the UPDATEs decoded one at a time and dropped.
Also a many-peer run: 20 peers each sending the same 50,000 prefixes (1,000,000 paths).

Run: python -m bench.bench_rib [--prefixes N] [--runs R] [--peers P --shared S]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable

from bench.gen import update_stream
from pybgp.rib import AdjRibIn, AdjRibOut, ExportKey, LocRib, PeerInfo
from pybgp.wire.constants import IPV4_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.update import Update

LOCAL_AS = 64000  # outside the AS numbers bench.gen puts in paths


def peer(n: int) -> PeerInfo:
    return PeerInfo(
        address=f"192.0.2.{n}",
        asn=65000 + n,
        router_id=f"192.0.2.{n}",
        ibgp=False,
        local_asn=LOCAL_AS,
    )


def decode(stream: bytes, asn: int) -> list[Update]:
    ctx = CodecContext(asn4=True, peer_asn=asn)
    return [Update.decode(body, ctx) for _, body in split_messages(bytearray(stream), ctx)]


def plain_dict(updates: list[Update]) -> int:
    """The anchor: one dict, `table[prefix] = attributes` for every prefix."""
    table: dict[bytes, object] = {}
    for update in updates:
        attributes = update.attributes
        for key in update.nlri:
            table[key] = attributes
    return len(table)


def adj_in_only(updates: list[Update]) -> int:
    rib = AdjRibIn(peer(1))
    apply = rib.apply
    for update in updates:
        apply(update)
    return rib.counts(IPV4_UNICAST).accepted


def adj_in_and_loc_rib(updates: list[Update]) -> int:
    rib, loc = AdjRibIn(peer(1)), LocRib(IPV4_UNICAST)
    apply, take, sources = rib.apply, loc.apply, [rib]
    changes = 0
    for update in updates:
        for touched in apply(update):
            changes += len(take(touched, sources))
    return changes


def from_bytes(stream: bytes) -> int:
    """The whole ingest path: split the byte stream, decode each UPDATE, Adj-RIB-In, Loc-RIB."""
    ctx = CodecContext(asn4=True, peer_asn=65001)
    rib, loc = AdjRibIn(peer(1)), LocRib(IPV4_UNICAST)
    sources = [rib]
    for _, body in split_messages(bytearray(stream), ctx):
        for touched in rib.apply(Update.decode(body, ctx)):
            loc.apply(touched, sources)
    return len(loc)


def through_adj_out(updates: list[Update]) -> int:
    """Adj-RIB-In, Loc-RIB, then one eBGP update group of two peers, flushed every 1000
    UPDATEs: returns the number of UPDATE messages built."""
    rib, loc, out = AdjRibIn(peer(1)), LocRib(IPV4_UNICAST), AdjRibOut()
    key = ExportKey(ibgp=False, local_asn=LOCAL_AS, local_address="198.51.100.1")
    for n in (2, 3):
        out.add_peer(peer(n), key, {IPV4_UNICAST: loc})
    sent = 0
    for i, update in enumerate(updates):
        for touched in rib.apply(update):
            out.enqueue(touched.family, loc.apply(touched, [rib]))
        if i % 1000 == 999:
            sent += sum(len(m) for m in out.flush().values())
    return sent + sum(len(m) for m in out.flush().values())


def many_peers(streams: list[list[Update]]) -> int:
    """Peers one after the other into their Adj-RIB-In, the Loc-RIB run over all of them."""
    ribs = [AdjRibIn(peer(n + 1)) for n in range(len(streams))]
    loc = LocRib(IPV4_UNICAST)
    changes = 0
    for rib, updates in zip(ribs, streams, strict=True):
        for update in updates:
            for touched in rib.apply(update):
                changes += len(loc.apply(touched, ribs))
    return len(loc)


def best_of(runs: int, func: Callable[..., int], *args: object) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def memory_per_route(stream: bytes, prefixes: int) -> tuple[float, float, float]:
    """Bytes per route traced: Adj-RIB-In alone, plus the Loc-RIB, plus one eBGP update
    group's Adj-RIB-Out. UPDATEs are decoded one at a time and dropped, as a session would;
    the encoded UPDATEs are dropped after the flush."""
    ctx = CodecContext(asn4=True, peer_asn=65001)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rib = AdjRibIn(peer(1))
    touched = []
    for _, body in split_messages(bytearray(stream), ctx):
        touched += rib.apply(Update.decode(body, ctx))
    del touched
    gc.collect()
    adj_in = tracemalloc.get_traced_memory()[0] - base
    loc = LocRib(IPV4_UNICAST)
    loc.recompute((prefix for prefix, _, _ in rib.routes(IPV4_UNICAST)), [rib])
    gc.collect()
    both = tracemalloc.get_traced_memory()[0] - base
    out = AdjRibOut()
    key = ExportKey(ibgp=False, local_asn=LOCAL_AS, local_address="198.51.100.1")
    out.add_peer(peer(2), key, {IPV4_UNICAST: loc})
    gc.collect()
    all_three = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert rib.counts(IPV4_UNICAST).accepted == len(loc) == prefixes
    assert out.advertised("192.0.2.2", IPV4_UNICAST) == prefixes
    return adj_in / prefixes, both / prefixes, all_three / prefixes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefixes", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers", type=int, default=20)
    parser.add_argument("--shared", type=int, default=50_000)
    args = parser.parse_args()
    n = args.prefixes
    stream = update_stream(n)
    per_route, per_route_loc, per_route_out = memory_per_route(stream, n)
    updates = decode(stream, 65001)
    print(f"{n} prefixes in {len(updates)} UPDATEs from one eBGP peer; best of {args.runs}")
    t_anchor, got = best_of(args.runs, plain_dict, updates)
    assert got == n
    t_in, got = best_of(args.runs, adj_in_only, updates)
    assert got == n
    t_loc, got = best_of(args.runs, adj_in_and_loc_rib, updates)
    assert got == n
    t_out, sent = best_of(args.runs, through_adj_out, updates)
    t_bytes, got = best_of(args.runs, from_bytes, stream)
    assert got == n
    rate = n / t_in / 1e6
    print(f"anchor: plain dict insert      : {t_anchor:.3f} s")
    print(f"Adj-RIB-In apply()             : {t_in:.3f} s  {rate:.2f} M prefixes/s")
    print(f"  ratio to the anchor          : {t_in / t_anchor:.2f}")
    print(f"Adj-RIB-In + Loc-RIB           : {t_loc:.3f} s  ratio {t_loc / t_anchor:.2f}")
    print(f"  + Adj-RIB-Out (eBGP group, 2 peers, {sent} UPDATEs): {t_out:.3f} s")
    print(
        f"from bytes: decode + Adj-RIB-In + Loc-RIB: {t_bytes:.3f} s  {n / t_bytes / 1e6:.2f} M/s"
    )
    print(
        f"memory (tracemalloc): Adj-RIB-In {per_route:.0f} B/route, + Loc-RIB"
        f" {per_route_loc:.0f} B/route, + one eBGP group's Adj-RIB-Out {per_route_out:.0f} B/route"
    )
    del updates
    streams = [
        decode(update_stream(args.shared, first_as=65001 + p), 65001 + p) for p in range(args.peers)
    ]
    t_many, got = best_of(1, many_peers, streams)
    assert got == args.shared
    paths = args.peers * args.shared
    print(
        f"{args.peers} peers x {args.shared} prefixes ({paths} paths), Adj-RIB-In + Loc-RIB:"
        f" {t_many:.3f} s  {paths / t_many / 1e6:.2f} M paths/s"
    )


if __name__ == "__main__":
    main()
