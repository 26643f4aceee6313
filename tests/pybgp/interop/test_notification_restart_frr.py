"""Notification support in graceful restart (RFC 8538, the N bit) with FRR's bgpd, both
ways: both announce it; a NOTIFICATION other than Hard Reset leaves the routes stale on
both sides, as a lost connection would; a Hard Reset (Cease subcode 9) takes them away, and
pybgpd sends one when it stops cleanly."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    OUR_V4,
    PEER_V4,
    MakePair,
    Pair,
    Route,
    Session,
    wait_for,
)
from tests.pybgp.interop.test_graceful_restart_frr import (
    GRACEFUL,
    KIND,
    NEIGHBOR,
    never_missing,
    stale,
)

pytestmark = pytest.mark.privileged


def n_bit_pair(make_pair: MakePair, *frr_lines: str) -> Pair:
    pair = make_pair(
        KIND,
        start=False,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        routes=[Route("10.1.0.0/24")],
        neighbors=[NEIGHBOR],
        our_routes=[Route("10.2.0.0/24")],
        peer_options={
            "graceful_restart": True,
            "router_lines": (" bgp graceful-restart notification", *frr_lines),
        },
    )
    pair.ours.policy += GRACEFUL
    pair.start()
    pair.ours.wait_routes(["10.1.0.0/24"])
    pair.peer.wait_route("10.2.0.0/24")
    return pair


def frr_flaps(pair: Pair) -> Callable[[], int]:
    """How many times FRR's session with pybgpd has come up, read now."""
    return lambda: int(pair.frr.neighbor(OUR_V4).get("connectionsEstablished", 0))


def test_both_announce_the_n_bit(make_pair: MakePair) -> None:
    pair = n_bit_pair(make_pair)
    assert pair.ours.neighbor(PEER_V4)["peer_graceful_restart"]["notification"] is True
    info = pair.frr.neighbor(OUR_V4)
    assert info["neighborCapabilities"]["gracefulRestart"] == "advertisedAndReceived"
    assert info["gracefulRestartInfo"]["nBit"] is True  # the N bit FRR received from us


def test_frr_plain_cease_keeps_its_routes_stale(make_pair: MakePair) -> None:
    """FRR told not to send Hard Reset for an administrative reset: its Cease/Administrative
    Reset is a NOTIFICATION under the N bit, so pybgpd keeps FRR's route all along."""
    pair = n_bit_pair(make_pair, " no bgp hard-administrative-reset")
    before = frr_flaps(pair)()
    with never_missing("10.1.0.0/24 in pybgpd", lambda: "10.1.0.0/24" in pair.ours.rib()):
        pair.frr.vtysh(f"clear bgp ipv4 unicast {OUR_V4}")
        wait_for(lambda: frr_flaps(pair)() > before, "the session to come back")
        wait_for(lambda: pair.ours.state(PEER_V4) == ESTABLISHED, "pybgpd back up")
        wait_for(lambda: stale(pair) == 0, "FRR's End-of-RIB sweeping the stale mark")
    log = pair.ours.log()
    assert "restarting: its routes stay" in log


def test_hold_timer_expiry_keeps_the_routes_on_both_sides(make_pair: MakePair) -> None:
    """FRR frozen past the hold time: pybgpd sends Hold Timer Expired, a NOTIFICATION other
    than Hard Reset, and keeps FRR's route stale; FRR, thawed, reads it and keeps pybgpd's
    route (RFC 8538 §4), until the new session's End-of-RIB."""
    pair = n_bit_pair(make_pair)
    frr = pair.peer.proc  # type: ignore[attr-defined]
    with never_missing("10.1.0.0/24 in pybgpd", lambda: "10.1.0.0/24" in pair.ours.rib()):
        os.kill(frr.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: pair.ours.state(PEER_V4) != ESTABLISHED, "pybgpd's hold timer", 30)
            assert stale(pair) == 1
        finally:
            os.kill(frr.pid, signal.SIGCONT)
        with never_missing(
            "10.2.0.0/24 at FRR", lambda: pair.peer.route("10.2.0.0/24") is not None
        ):
            wait_for(lambda: pair.up(PEER_V4, OUR_V4), "the session back")
            wait_for(lambda: stale(pair) == 0, "FRR's End-of-RIB sweeping the stale mark")
    assert "down: hold timer expired" in pair.ours.log().lower()


def test_frr_hard_reset_takes_its_routes(make_pair: MakePair) -> None:
    pair = n_bit_pair(make_pair, " bgp hard-administrative-reset")
    pair.frr.vtysh(f"clear bgp ipv4 unicast {OUR_V4}")
    wait_for(lambda: "10.1.0.0/24" not in pair.ours.rib(), "pybgpd to drop FRR's route")
    assert "restarting: its routes stay" not in pair.ours.log()
    pair.ours.wait_routes(["10.1.0.0/24"])  # and back with the new session


def test_pybgpd_stopping_sends_hard_reset(make_pair: MakePair) -> None:
    """A clean stop (SIGINT: Administrative Shutdown) goes as Hard Reset under the N bit:
    FRR drops pybgpd's route at once instead of keeping it stale for the restart time."""
    pair = n_bit_pair(make_pair)
    assert pair.ours.stop(signal.SIGINT) == 0
    pair.peer.wait_gone("10.2.0.0/24")  # in well under the 60 s restart time we announce
    info = pair.frr.neighbor(OUR_V4)
    assert info["lastNotificationHardReset"] is True
    assert info["lastNotificationReason"] == "Cease/Administrative Shutdown"  # the cause inside
