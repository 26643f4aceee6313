"""pybgpd's ingest work without the network, repeatable enough to judge a change on a busy
machine: the real Speaker (configured as bench/bench_ingest.py configures pybgpd) with its
peers on in-memory streams, each fed by a sender task that does OPEN and KEEPALIVE, then writes
the same UPDATE stream bench_ingest's senders write (bench/gen.py: /24s in UPDATEs of 10, a
3-AS path per UPDATE, the sender's address as next hop), and reads and drops what the Speaker
advertises to it.

    python -m bench.bench_speaker [--peers 20] [--prefixes 50000] [--runs 5]

Reported, best of --runs: CPU seconds (time.process_time, this process only) until every path
is accepted (what bench_ingest's clock stops at), and until the Speaker is idle (every best
path decided and advertised, every advertisement read by the senders). CPU time, not wall
time: other people's processes on the machine slow it less. Instruction counts are steadier
still; run one size under callgrind (trio's scheduling made deterministic by a fixed seed):

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python -m bench.bench_speaker --peers 20 --prefixes 5000 --runs 1

prints "I refs: N"; the same with --runs 0 gives the setup's count (imports, streams built),
and the difference is the instructions of one ingest.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable

import trio
import trio.testing

from bench.sender import build_stream
from pybgp.api import Speaker
from pybgp.config import parse
from pybgp.session.config import SessionConfig
from pybgp.session.connection import Connection
from pybgp.session.fsm import State
from pybgp.wire.constants import IPV4_UNICAST

DAEMON_ASN, DAEMON_ADDR = 64000, "10.0.0.1"


def peers(count: int) -> list[tuple[str, int]]:
    """(address, AS) of each sender, as bench_ingest numbers them."""
    if count == 1:
        return [("10.0.0.2", 65001)]
    return [(f"10.0.0.{2 + i}", 65101 + i) for i in range(count)]


def speaker(senders: list[tuple[str, int]]) -> Speaker:
    neighbors = [
        {
            "address": a,
            "peer_asn": asn,
            "passive": True,
            "families": ["ipv4-unicast"],
            # over TCP the session knows its own address; in memory, the config says it
            "local_address": DAEMON_ADDR,
        }
        for a, asn in senders
    ]
    config = {
        "global": {"asn": DAEMON_ASN, "router_id": DAEMON_ADDR},
        "neighbors": neighbors,
        "policy": {"attach": {"default_export": "accept"}},
    }
    return Speaker.from_config(parse(config))


async def sender(
    stream: trio.abc.Stream,
    conn: Connection,
    updates: bytes,
    go: trio.Event,
    established: Callable[[], None],
) -> None:
    """One peer: the session up (the sans-IO Connection speaks for it), then the UPDATEs
    written at once; everything the Speaker sends is read and dropped."""
    conn.start(trio.current_time(), passive=False)
    conn.connection_made(trio.current_time())
    while conn.state is not State.ESTABLISHED:
        await stream.send_all(conn.data_to_send())
        data = await stream.receive_some(65536)
        conn.receive_data(bytes(data), trio.current_time())
    await stream.send_all(conn.data_to_send())
    established()
    await go.wait()
    await stream.send_all(updates)
    while await stream.receive_some(1 << 18):
        pass


async def one_run(count: int, prefixes: int, streams: list[bytes]) -> tuple[float, float]:
    """(CPU seconds until every path is accepted, until the Speaker is idle)."""
    senders = peers(count)
    bgp = speaker(senders)
    up, go = [0], trio.Event()

    def established() -> None:
        up[0] += 1
        if up[0] == count:
            go.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(bgp.run)
        for (address, asn), updates in zip(senders, streams, strict=True):
            ours, theirs = trio.testing.memory_stream_pair()
            session = bgp._peers[address].session
            await session.running.wait()
            session.accept(ours)
            conn = _sender_connection(address, asn)
            nursery.start_soon(sender, theirs, conn, updates, go, established)
        await go.wait()
        start = time.process_time()
        accepted = await _until(lambda: _accepted(bgp) >= count * prefixes)
        idle = await _until_idle()
        nursery.cancel_scope.cancel()
    return accepted - start, idle - start


def _sender_connection(address: str, asn: int) -> Connection:
    # Hold time 0 (no hold timer, RFC 4271 §4.2): under callgrind on a busy machine a run can
    # outlast a hold time, and these senders send no KEEPALIVE once the UPDATEs are out.
    config = SessionConfig(local_asn=asn, router_id=address, peer_asn=DAEMON_ASN, hold_time=0)
    return Connection(config, trio.current_time())


def _accepted(bgp: Speaker) -> int:
    return sum(
        p.adj_in.counts(IPV4_UNICAST).accepted for p in bgp._peers.values() if p.adj_in is not None
    )


async def _until(done: Callable[[], bool]) -> float:
    while not done():
        await trio.sleep(0)
    return time.process_time()


async def _until_idle() -> float:
    """Until no task but this one has run for a while: the ingest and the flush are over."""
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)
    return time.process_time()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=int, default=20)
    parser.add_argument("--prefixes", type=int, default=50_000, help="per peer")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    streams = [build_stream(args.prefixes, asn, address) for address, asn in peers(args.peers)]
    gc.set_threshold(50_000, 20, 100)  # as pybgpd sets it
    results = []
    for _ in range(args.runs):
        random.seed(0)
        trio._core._run._r.seed(0)  # type: ignore[attr-defined]  # trio's batch shuffling
        gc.collect()
        results.append(trio.run(one_run, args.peers, args.prefixes, streams))
    if not results:
        return 0  # --runs 0: the setup alone, for callgrind's baseline
    accepted = min(r[0] for r in results)
    idle = min(r[1] for r in results)
    paths = args.peers * args.prefixes
    print(
        f"{args.peers} peer(s) x {args.prefixes:,} prefixes ({paths:,} paths), best of {args.runs}"
    )
    print(f"  CPU s until every path accepted: {accepted:.3f}  ({paths / accepted:,.0f} paths/s)")
    print(f"  CPU s until the Speaker is idle: {idle:.3f}")
    print("  every run (accepted / idle): " + ", ".join(f"{a:.3f}/{i:.3f}" for a, i in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
