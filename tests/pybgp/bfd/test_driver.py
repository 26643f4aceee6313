"""The trio BFD driver (RFC 5881) on real sockets, inside a network namespace of its own:
two services on 127.0.0.1 and 127.0.0.2 bring their sessions Up; a packet that arrives
with a TTL below 255 is dropped; a removed session says AdminDown (no failure for the
other side); a silent peer is detected after Detect Mult x interval.

The pytest test runs this module in the namespace (`python -m tests.pybgp.bfd.test_driver`),
which prints its findings as JSON."""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import pytest
import trio

from pybgp.bfd.driver import BFD_PORT, BfdService
from pybgp.bfd.packet import BfdState, ControlPacket
from pybgp.bfd.session import BfdConfig, BfdStateChanged
from tests.netns import netns, run
from tests.support import require_root, require_tools

A, B = "127.0.0.1", "127.0.0.2"


async def scenario() -> dict[str, Any]:
    found: dict[str, Any] = {}
    changes: list[tuple[str, str, str, str, bool]] = []

    def note(who: str) -> Any:
        def on_change(peer: str, change: BfdStateChanged) -> None:
            changes.append(
                (
                    who,
                    change.old.label,
                    change.new.label,
                    change.diag.name,
                    change.remote_admin_down,
                )
            )

        return on_change

    one, two = BfdService(), BfdService()
    async with trio.open_nursery() as nursery:
        await nursery.start(one.run)
        two_scope = trio.CancelScope()

        async def run_two() -> None:
            with two_scope:
                await two.run()

        nursery.start_soon(run_two)
        await trio.sleep(0.05)
        config = BfdConfig(desired_min_tx=0.1, required_min_rx=0.1, detect_mult=3)
        a = one.add(B, A, config, note("one"))
        b = two.add(A, B, config, note("two"))
        started = trio.current_time()
        with trio.move_on_after(5):
            while not (a.state is BfdState.UP and b.state is BfdState.UP and not a.polling):
                await trio.sleep(0.01)
        found["up_after"] = trio.current_time() - started
        found["states"] = [a.state.label, b.state.label]
        found["info"] = one.info(B)

        # RFC 5881 §5: TTL 64 is not single hop: dropped before the codec.
        packet = ControlPacket(
            state=BfdState.DOWN,
            detect_mult=3,
            my_discriminator=99,
            desired_min_tx=1,
            required_min_rx=1,
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
            raw.bind((B, 0))
            raw.sendto(packet.encode(), (A, BFD_PORT))
            await trio.sleep(0.1)
            found["dropped_ttl"] = one.dropped_ttl
            raw.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
            raw.sendto(b"\x20" * 10, (A, BFD_PORT))  # TTL right, not a BFD packet
            await trio.sleep(0.1)
            found["dropped_invalid"] = one.dropped_invalid
        found["state_after_bad_packets"] = a.state.label

        # A peer that goes quiet: the whole of `two` stops at once, no AdminDown.
        two_scope.cancel()
        quiet_since = trio.current_time()
        with trio.move_on_after(3):
            while a.state is BfdState.UP:
                await trio.sleep(0.005)
        found["detected_after"] = trio.current_time() - quiet_since

        # A removed session says AdminDown: the remote goes Down without calling it a failure.
        three = BfdService()
        await nursery.start(three.run)
        c = three.add(A, B, config, note("three"))
        with trio.move_on_after(5):
            while not (a.state is BfdState.UP and c.state is BfdState.UP):
                await trio.sleep(0.01)
        found["up_again"] = a.state.label
        three.remove(A)
        with trio.move_on_after(2):
            while a.state is BfdState.UP:
                await trio.sleep(0.01)
        found["changes"] = changes
        nursery.cancel_scope.cancel()
    return found


@pytest.mark.privileged
def test_driver_in_a_namespace() -> None:
    require_root()
    require_tools("ip")
    with netns("bfdd") as ns:
        done = run(
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            "-m",
            "tests.pybgp.bfd.test_driver",
            check=False,
        )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    print(json.dumps(found, indent=1))
    assert found["states"] == ["Up", "Up"]
    assert found["info"]["state"] == "Up" and found["info"]["detection_time_ms"] == 300.0
    assert found["dropped_ttl"] == 1
    assert found["dropped_invalid"] == 1
    assert found["state_after_bad_packets"] == "Up"
    # Detection Time 3 x 100 ms, counted from the last packet received (up to one
    # interval before the cut), plus scheduling slack.
    assert 0.15 < found["detected_after"] < 0.6
    changes = [tuple(c) for c in found["changes"]]
    assert ("one", "Up", "Down", "CONTROL_DETECTION_TIME_EXPIRED", False) in changes
    assert found["up_again"] == "Up"
    assert changes[-1] == ("one", "Up", "Down", "NEIGHBOR_SIGNALED_SESSION_DOWN", True)


if __name__ == "__main__":
    print(json.dumps(trio.run(scenario)))
