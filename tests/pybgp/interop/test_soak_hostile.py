"""Soak: one configured peer attacks pybgpd while BIRD holds its sessions beside it.

The attacker (tests/pybgp/hostile_peer.py, one process per transport family) opens sessions
as fast as pybgpd allows, with several connections at once and pybgpd's own connections
taken too (collisions), and sends corrupted OPENs, UPDATEs (IPv4 and IPv6), NOTIFICATIONs and
ROUTE-REFRESHes, dropping connections at every stage with FIN or RST. Throughout, pybgpd
must stay alive, BIRD's sessions must never reset and their routes must stay, memory must
stay bounded, and the log must stay readable: no traceback, a line per reset at most every
few seconds per peer, no warning repeated per reconnect.

PYBGP_SOAK_SECONDS sets the attack's length (default 60; run it for minutes by hand) and
PYBGP_SOAK_SEED its seed (default: a new one, printed, so a failure can be replayed).
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from pathlib import Path

import pytest

from tests.netns import netns, run, veth_pair
from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    REPO,
    MakePair,
    Pair,
    end,
    peer_routes,
    spawn,
    wait_for,
)

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

SECONDS = float(os.environ.get("PYBGP_SOAK_SECONDS", "60"))
HOSTILE_ASN = 65066
OUR_V4, HOSTILE_V4 = "10.0.9.1", "10.0.9.2"
OUR_V6, HOSTILE_V6 = "fd09::1", "fd09::2"
HOSTILE_PEER = REPO / "tests" / "pybgp" / "hostile_peer.py"
RSS_LIMIT_MIB = 200
RSS_GROWTH_MIB = 25  # from a quarter of the way in to the end
RESET_LOG_INTERVAL = (
    10.0  # pybgp.speaker.sessions: at most one "peer down" line per peer per interval
)


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1)) / 1024


def test_hostile_peer_never_hurts_the_daemon_or_other_sessions(make_pair: MakePair) -> None:
    seed = int(os.environ.get("PYBGP_SOAK_SEED", random.randrange(1 << 30)))
    print(f"soak: {SECONDS:g} s, seed {seed} (PYBGP_SOAK_SEED={seed} replays it)")
    pair = make_pair("bird", start=False)
    with (
        netns("hos") as hostile_ns,
        veth_pair(pair.link.ours, f"{OUR_V4}/24", hostile_ns, f"{HOSTILE_V4}/24") as (
            ours_dev,
            hostile_dev,
        ),
    ):
        run("ip", "-n", pair.link.ours, "addr", "add", f"{OUR_V6}/64", "dev", ours_dev, "nodad")
        run("ip", "-n", hostile_ns, "addr", "add", f"{HOSTILE_V6}/64", "dev", hostile_dev, "nodad")
        add_hostile_neighbors(pair)
        pair.start(wait=False)
        bird_sessions = pair.neighbors[:2]
        for address, session in zip(bird_sessions, pair.peer.sessions, strict=True):
            wait_for(lambda a=address, s=session: pair.up(a, s.neighbor), f"BIRD {address} up")
        bird_prefixes = [r.prefix for r in peer_routes(pair.peer_asn)]
        pair.ours.wait_routes(bird_prefixes)
        bird = {a: pair.ours.neighbor(a) for a in bird_sessions}
        up_since = {a: time.monotonic() - n["uptime"] for a, n in bird.items()}

        stats_dir = pair.workdir / "hostile"
        stats_dir.mkdir()
        attackers = [
            spawn(
                hostile_ns,
                [sys.executable, str(HOSTILE_PEER), "--local", local,
                 "--target", target, "--asn", str(HOSTILE_ASN), "--seconds", str(SECONDS),
                 "--seed", str(seed + index), "--stats", str(stats_dir / f"{index}.json")],
                stats_dir / f"{index}.log",
            )
            for index, (local, target) in enumerate(
                ((HOSTILE_V4, OUR_V4), (HOSTILE_V6, OUR_V6))
            )
        ]  # fmt: skip
        try:
            rss = watch(pair, attackers, up_since, bird_prefixes)
        finally:
            for attacker in attackers:
                end(attacker)
        for index, attacker in enumerate(attackers):
            assert attacker.returncode == 0, (stats_dir / f"{index}.log").read_text()
        stats = [json.loads((stats_dir / f"{i}.json").read_text()) for i in range(2)]
        print("soak: attacker stats", stats, f"pybgpd RSS {rss[0]:.0f}..{max(rss):.0f} MiB")
        check_attack_happened(stats)
        check_log(pair.ours.log())
        quarter = rss[len(rss) // 4]
        assert max(rss) <= RSS_LIMIT_MIB, f"pybgpd RSS peaked at {max(rss):.0f} MiB"
        assert rss[-1] - quarter <= RSS_GROWTH_MIB, f"RSS grew {quarter:.0f} -> {rss[-1]:.0f}"


def add_hostile_neighbors(pair: Pair) -> None:
    pair.ours.neighbors += [
        {"address": HOSTILE_V4, "peer_asn": HOSTILE_ASN, "connect_retry": 1,
         "families": ["ipv4-unicast", "ipv6-unicast"]},
        {"address": HOSTILE_V6, "peer_asn": HOSTILE_ASN, "connect_retry": 1,
         "families": ["ipv6-unicast"]},
    ]  # fmt: skip
    pair.ours.global_["listen"] = [*pair.ours.global_["listen"], OUR_V4, OUR_V6]


def watch(
    pair: Pair, attackers: list, up_since: dict[str, float], bird_prefixes: list[str]
) -> list[float]:
    """Every half second while the attack lasts: pybgpd alive, BIRD's sessions up since the
    same moment on both sides, BIRD's routes in pybgpd's table. Returns pybgpd's RSS samples."""
    assert pair.ours.proc is not None
    samples = []
    while any(a.poll() is None for a in attackers):
        assert pair.ours.proc.poll() is None, "pybgpd died"
        for address, since in up_since.items():
            neighbor = pair.ours.neighbor(address)
            assert neighbor["state"] == ESTABLISHED, f"BIRD session {address}: {neighbor}"
            moved = abs(time.monotonic() - neighbor["uptime"] - since)
            assert moved < 1.0, f"BIRD session {address} was reset during the attack"
        for session in pair.peer.sessions:
            assert pair.peer.state(session.neighbor) == ESTABLISHED, "BIRD saw a reset"
        rib = pair.ours.rib()
        missing = [p for p in bird_prefixes if p not in rib]
        assert not missing, f"BIRD's routes lost during the attack: {missing}"
        samples.append(rss_mib(pair.ours.proc.pid))
        time.sleep(0.5)
    assert pair.ours.proc.poll() is None, "pybgpd died"
    wait_for(lambda: pair.ours.neighbor(pair.neighbors[0])["state"], "pybgpd answering", 5)
    return samples


def check_attack_happened(stats: list[dict[str, int]]) -> None:
    """The attack was real: many connections, corrupted messages of every kind we send, and
    pybgpd answered some of them with NOTIFICATIONs of several kinds."""
    total: dict[str, int] = {}
    for one in stats:
        for key, value in one.items():
            total[key] = total.get(key, 0) + value
    connections = total.get("dialled", 0) + total.get("accepted", 0)
    assert connections >= SECONDS, f"only {connections} connections: {total}"
    assert total.get("accepted", 0) > 0, f"pybgpd's own connections never taken: {total}"
    assert total.get("sent_update", 0) >= 10 * SECONDS, total
    assert total.get("corrupted", 0) >= 5 * SECONDS, total
    notifications = {k for k in total if k.startswith("notification_")}
    assert len(notifications) >= 3, f"pybgpd's NOTIFICATIONs: {sorted(notifications)}"


def check_log(log: str) -> None:
    lines = log.splitlines()
    assert "Traceback" not in log, "\n".join(lines[-80:])
    assert "internal error" not in log, "\n".join(lines[-80:])
    for peer in (HOSTILE_V4, HOSTILE_V6):
        no_export = [line for line in lines if f"peer {peer}: no export policy" in line]
        assert len(no_export) <= 1, f"repeated per reconnect: {no_export[:3]}"
        downs = [line for line in lines if f"peer {peer} down:" in line]
        allowed = SECONDS / RESET_LOG_INTERVAL + 2
        assert 1 <= len(downs) <= allowed, f"{len(downs)} reset lines for {peer}: {downs[:5]}"
    assert len(lines) < 100 + 10 * SECONDS, f"{len(lines)} log lines in {SECONDS:g} s"
