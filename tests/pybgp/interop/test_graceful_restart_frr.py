"""Graceful restart (RFC 4724) with FRR's bgpd (run directly in its namespace):

- FRR restarts (killed, so no NOTIFICATION): pybgpd keeps its routes, stale, all the time
  FRR is away, and once FRR is back and has sent End-of-RIB, drops the one FRR no longer
  has;
- pybgpd restarts (SIGTERM, a graceful stop) with --fib: FRR keeps pybgpd's routes and the
  kernel keeps the routes pybgpd installed, without a gap; after the restart pybgpd waits
  for FRR's End-of-RIB, then sends its table, and a route dropped from its configuration
  while it was away is withdrawn, at FRR and nowhere else.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    OUR_V4,
    PEER_ASN,
    PEER_V4,
    MakePair,
    Pair,
    Route,
    Session,
    end,
    output,
    wait_for,
)

pytestmark = pytest.mark.privileged

KIND = "frr-direct"
NEIGHBOR = {
    "address": PEER_V4,
    "peer_asn": PEER_ASN[KIND],
    "families": ["ipv4-unicast"],
    "connect_retry": 1,
}
GRACEFUL = "[global.graceful_restart]\nenabled = true\nrestart_time = 60\n"


@contextmanager
def never_missing(what: str, present: Callable[[], bool]) -> Iterator[list[str]]:
    """Polls `present` every 50 ms in a thread while the block runs; fails the test if it
    was ever false. Yields the list of failures (for a look inside the block)."""
    gaps: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                if not present():
                    gaps.append(f"{what} missing at {time.monotonic():.2f}")
            except Exception as exc:  # a daemon restarting: its CLI may fail meanwhile
                gaps.append(f"{what}: {exc}")
            done.wait(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield gaps
    finally:
        done.set()
        thread.join()
    assert not gaps, gaps[:5]


def v4_pair(make_pair: MakePair, *, frr_restarts: bool, pybgpd_restarts: bool) -> Pair:
    pair = make_pair(
        KIND,
        start=False,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        routes=[Route("10.1.0.0/24"), Route("10.1.1.0/24")],
        neighbors=[NEIGHBOR],
        our_routes=[Route("10.2.0.0/24"), Route("10.2.1.0/24")],
        peer_options={"graceful_restart": frr_restarts},
    )
    if pybgpd_restarts:
        pair.ours.policy += GRACEFUL
    return pair


def stale(pair: Pair) -> int:
    return int(pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]["stale"])


def test_frr_restarting_keeps_its_routes_stale_until_end_of_rib(make_pair: MakePair) -> None:
    pair = v4_pair(make_pair, frr_restarts=True, pybgpd_restarts=False)
    pair.start()
    pair.ours.wait_routes(["10.1.0.0/24", "10.1.1.0/24"])
    with never_missing("10.1.0.0/24 in pybgpd", lambda: "10.1.0.0/24" in pair.ours.rib()):
        end(pair.peer.proc, signal.SIGKILL)  # type: ignore[attr-defined]
        wait_for(lambda: pair.ours.state(PEER_V4) != ESTABLISHED, "pybgpd to see FRR gone")
        assert stale(pair) == 2  # both kept, marked stale
        time.sleep(1)
        assert pair.ours.has_routes(["10.1.0.0/24", "10.1.1.0/24"])
        pair.peer.routes = [Route("10.1.0.0/24")]  # FRR comes back without 10.1.1.0/24
        pair.peer.start()
        wait_for(lambda: pair.ours.state(PEER_V4) == ESTABLISHED, "FRR back")
        wait_for(lambda: stale(pair) == 0, "FRR's End-of-RIB sweeping the stale routes")
    assert pair.ours.has_none(["10.1.1.0/24"])
    assert pair.ours.has_routes(["10.1.0.0/24"])
    assert "restarting: its routes stay" in pair.ours.log()


def kernel_has(pair: Pair, prefix: str) -> bool:
    shown = output("ip", "-4", "route", "show", "proto", "bgp", netns=pair.link.ours)
    return any(line.startswith(f"{prefix} via {PEER_V4}") for line in shown.splitlines())


def test_pybgpd_restarting_gracefully_with_fib(make_pair: MakePair) -> None:
    pair = v4_pair(make_pair, frr_restarts=False, pybgpd_restarts=True)
    pair.start("--fib")
    pair.peer.wait_route("10.2.0.0/24")
    pair.peer.wait_route("10.2.1.0/24")
    wait_for(lambda: kernel_has(pair, "10.1.0.0/24"), "FRR's route in the kernel")

    def frr_has_ours() -> bool:
        return pair.peer.route("10.2.0.0/24") is not None

    with (
        never_missing("10.2.0.0/24 at FRR", frr_has_ours),
        never_missing("10.1.0.0/24 in the kernel", lambda: kernel_has(pair, "10.1.0.0/24")),
    ):
        assert pair.ours.stop(signal.SIGTERM) == 0
        wait_for(lambda: pair.peer.state(OUR_V4) != ESTABLISHED, "FRR to see pybgpd gone")
        time.sleep(1)
        pair.ours.routes = [Route("10.2.0.0/24")]  # 10.2.1.0/24 left the configuration
        pair.ours.start("--fib")
        pair.wait_established()
        pair.peer.wait_gone("10.2.1.0/24")
    log = pair.ours.log()
    assert "restarting gracefully" in log and "advertising now" in log
    # FRR in its default helper mode announces itself restarting (R bit), no families.
    frr_restart = pair.ours.neighbor(PEER_V4)["peer_graceful_restart"]
    assert frr_restart["restart_state"] and frr_restart["families"] == []
    # FRR saw our Restart State bit after the restart; a later session comes without it.
    assert pair.frr.neighbor(OUR_V4)["gracefulRestartInfo"]["rBit"] is True
    pair.ours.cli("neighbor", PEER_V4, "reset")

    def later_session_without_r_bit() -> bool:
        info = pair.frr.neighbor(OUR_V4).get("gracefulRestartInfo", {})
        return pair.up(PEER_V4, OUR_V4) and info.get("rBit") is False

    wait_for(later_session_without_r_bit, "a session after the reset without the R bit")
    # the reset withdrew FRR's route from the kernel; the new session brings it back
    wait_for(lambda: kernel_has(pair, "10.1.0.0/24"), "FRR's route in the kernel again")
