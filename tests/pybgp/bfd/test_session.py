"""The sans-IO BFD session (RFC 5880) with explicit times: the three-way handshake, slow
transmission until Up, the exact Detection Time, Poll/Final sequences, jitter ranges and the
diagnostics."""

from __future__ import annotations

import random

import pytest

from pybgp.bfd.packet import BfdState, ControlPacket, Diag
from pybgp.bfd.session import BfdConfig, BfdSession, BfdStateChanged

UP, DOWN, INIT, ADMIN_DOWN = BfdState.UP, BfdState.DOWN, BfdState.INIT, BfdState.ADMIN_DOWN


class NoJitter(random.Random):
    """Intervals exactly as negotiated (the top of the jitter range)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def session(discriminator: int, now: float = 0.0, **config: float) -> BfdSession:
    s = BfdSession(BfdConfig(**config), discriminator, now, rng=NoJitter())  # type: ignore[arg-type]
    s.start(now)
    return s


def deliver(src: BfdSession, dst: BfdSession, now: float) -> list[BfdStateChanged]:
    events: list[BfdStateChanged] = []
    for packet in src.packets_to_send():
        events += dst.receive(ControlPacket.decode(packet.encode()), now)
    return events


def exchange(a: BfdSession, b: BfdSession, now: float) -> None:
    """Move packets both ways until neither side has anything to send."""
    for _ in range(10):
        deliver(a, b, now)
        deliver(b, a, now)


def run_until(a: BfdSession, b: BfdSession, start: float, end: float) -> float:
    """Fire both sides' timers in order and deliver at once, from `start` to `end`."""
    now = start
    while True:
        deadlines = [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
        nxt = min(deadlines)
        if nxt > end:
            return now
        now = nxt
        for s in (a, b):
            deadline = s.next_deadline()
            if deadline is not None and deadline <= now:
                s.handle_timer(now)
        exchange(a, b, now)


def up_pair() -> tuple[BfdSession, BfdSession, float]:
    a, b = session(1), session(2)
    a.handle_timer(0.0)
    b.handle_timer(0.0)
    exchange(a, b, 0.0)
    now = run_until(a, b, 0.0, 3.0)
    assert a.state is UP and b.state is UP
    return a, b, now


def test_three_way_handshake() -> None:
    a, b = session(1), session(2)
    a.handle_timer(0.0)
    [first] = a.packets_to_send()
    assert (first.state, first.your_discriminator, first.my_discriminator) == (DOWN, 0, 1)
    assert first.desired_min_tx == 1_000_000  # §6.8.3: 1 s while not Up
    assert first.required_min_rx == 300_000
    assert first.required_min_echo_rx == 0
    assert b.receive(first, 0.0) == [BfdStateChanged(old=DOWN, new=INIT, diag=Diag.NONE)]
    b.handle_timer(0.0)
    [init] = b.packets_to_send()
    assert (init.state, init.your_discriminator) == (INIT, 1)
    assert a.receive(init, 0.01) == [BfdStateChanged(old=DOWN, new=UP, diag=Diag.NONE)]
    assert a.remote_discriminator == 2
    a.handle_timer(a.next_deadline() or 0)
    [up] = a.packets_to_send()
    assert b.receive(up, 0.3) == [BfdStateChanged(old=INIT, new=UP, diag=Diag.NONE)]


def test_slow_transmission_while_down() -> None:
    a = session(1)
    times = []
    now = 0.0
    for _ in range(4):
        now = a.next_deadline() or 0.0
        a.handle_timer(now)
        times.append(now)
        assert a.packets_to_send()[0].desired_min_tx == 1_000_000
    assert times == [0.0, 1.0, 2.0, 3.0]


def test_up_announces_configured_interval_with_a_poll_sequence() -> None:
    a, b, _now = up_pair()
    # Once both Final bits came back, no side polls; both send every 300 ms.
    assert not a.polling and not b.polling
    assert a.desired_min_tx == pytest.approx(0.3)
    assert a.tx_interval == pytest.approx(0.3)
    assert a.detection_time == pytest.approx(0.9)


def test_poll_bit_until_final() -> None:
    a, b = session(1), session(2)
    a.handle_timer(0.0)
    exchange(a, b, 0.0)
    b.handle_timer(0.0)
    b.packets_to_send()
    # Build b's Init by hand and let a come Up: a starts polling (its TX interval changed).
    init = ControlPacket(
        state=INIT,
        detect_mult=3,
        my_discriminator=2,
        your_discriminator=1,
        desired_min_tx=1_000_000,
        required_min_rx=300_000,
    )
    a.receive(init, 0.1)
    assert a.state is UP and a.polling
    a.handle_timer(a.next_deadline() or 0)
    first = a.packets_to_send()[0]
    assert first.poll and not first.final and first.desired_min_tx == 300_000
    a.handle_timer(a.next_deadline() or 0)
    assert a.packets_to_send()[0].poll  # still polling: no Final yet
    final = ControlPacket(
        state=UP,
        final=True,
        detect_mult=3,
        my_discriminator=2,
        your_discriminator=1,
        desired_min_tx=300_000,
        required_min_rx=300_000,
    )
    a.receive(final, 1.0)
    assert not a.polling
    a.handle_timer(a.next_deadline() or 0)
    assert not a.packets_to_send()[0].poll


def test_poll_is_answered_with_final_at_once() -> None:
    a, _b, now = up_pair()
    a.packets_to_send()
    poll = ControlPacket(
        state=UP,
        poll=True,
        detect_mult=3,
        my_discriminator=2,
        your_discriminator=1,
        desired_min_tx=300_000,
        required_min_rx=300_000,
    )
    a.receive(poll, now + 0.01)
    [answer] = a.packets_to_send()  # outside the periodic schedule (§6.8.7)
    assert answer.final and not answer.poll


def test_detection_time_exact() -> None:
    a, _b, now = up_pair()
    a.packets_to_send()
    last_rx = now + 0.05
    a.receive(
        ControlPacket(
            state=UP,
            detect_mult=3,
            my_discriminator=2,
            your_discriminator=1,
            desired_min_tx=300_000,
            required_min_rx=300_000,
        ),
        last_rx,
    )
    assert a.next_deadline() is not None
    detect_at = last_rx + 0.9  # remote Detect Mult 3 x max(300 ms, 300 ms)
    # Periodic transmissions keep coming, but none of them ends the session early.
    t = a.next_deadline() or 0.0
    while t < detect_at - 1e-9:
        assert a.handle_timer(t) == []
        t = min(a.next_deadline() or detect_at, detect_at)
    assert t == pytest.approx(detect_at)
    assert a.handle_timer(detect_at) == [
        BfdStateChanged(old=UP, new=DOWN, diag=Diag.CONTROL_DETECTION_TIME_EXPIRED)
    ]
    assert a.remote_discriminator == 0  # §6.8.1
    assert a.local_diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
    a.packets_to_send()
    a.handle_timer(a.next_deadline() or 0.0)
    [packet] = a.packets_to_send()
    assert (packet.state, packet.diag, packet.your_discriminator) == (DOWN, 1, 0)


def test_detection_time_uses_the_slower_of_remote_tx_and_our_rx() -> None:
    a = session(1, now=10.0, required_min_rx=0.2)
    a.handle_timer(10.0)
    remote = ControlPacket(
        state=DOWN,
        detect_mult=5,
        my_discriminator=9,
        desired_min_tx=500_000,
        required_min_rx=100_000,
    )
    assert a.receive(remote, 10.0) == [BfdStateChanged(old=DOWN, new=INIT, diag=Diag.NONE)]
    assert a.detection_time == pytest.approx(2.5)  # 5 x max(200 ms, 500 ms)
    assert a.next_deadline() == pytest.approx(10.0 + min(1.0, 2.5))  # the next packet first
    assert a.handle_timer(12.5 - 1e-6) == []
    assert a.handle_timer(12.5) == [
        BfdStateChanged(old=INIT, new=DOWN, diag=Diag.CONTROL_DETECTION_TIME_EXPIRED)
    ]


def test_remote_min_rx_slows_our_transmission() -> None:
    a = session(1)
    a.handle_timer(0.0)
    a.packets_to_send()
    a.receive(
        ControlPacket(
            state=DOWN,
            detect_mult=3,
            my_discriminator=9,
            desired_min_tx=3_000_000,
            required_min_rx=2_000_000,
        ),
        0.5,
    )
    assert a.tx_interval == pytest.approx(2.0)
    # §6.8.7: never sooner than the new interval after the last packet (sent at 0.0).
    assert a.next_deadline() == pytest.approx(2.0)
    a.handle_timer(2.0)
    assert a.next_deadline() == pytest.approx(4.0)


def test_remote_min_rx_zero_stops_periodic_packets() -> None:
    a = session(1)
    a.handle_timer(0.0)
    a.packets_to_send()
    a.receive(
        ControlPacket(
            state=DOWN, detect_mult=3, my_discriminator=9, desired_min_tx=1, required_min_rx=0
        ),
        0.5,
    )
    a.handle_timer(1.0)
    assert a.packets_to_send() == []
    assert a.next_deadline() == pytest.approx(0.5 + 3 * 0.3)  # only the detection timer


def test_longer_tx_waits_for_the_poll_sequence() -> None:
    a, b, now = up_pair()
    a.set_config(BfdConfig(desired_min_tx=0.5, required_min_rx=0.3), now)
    assert a.polling
    assert a.desired_min_tx == pytest.approx(0.5)  # announced at once
    assert a.tx_interval == pytest.approx(0.3)  # §6.8.3: not used before the Final
    t = a.next_deadline() or 0.0
    a.handle_timer(t)
    [poll] = a.packets_to_send()
    assert poll.poll and poll.desired_min_tx == 500_000
    b.receive(poll, t)
    deliver(b, a, t)  # b's Final
    assert not a.polling
    assert a.tx_interval == pytest.approx(0.5)
    assert b.detection_time == pytest.approx(1.5)  # b now expects a packet every 500 ms


def test_shorter_rx_waits_for_the_poll_sequence_in_detection_time() -> None:
    a, b, now = up_pair()
    b.set_config(BfdConfig(desired_min_tx=0.5, required_min_rx=0.3), now)
    t = run_until(a, b, now, now + 2)
    assert a.detection_time == pytest.approx(1.5)  # 3 x b's 500 ms
    a.set_config(BfdConfig(desired_min_tx=0.3, required_min_rx=0.6), t)
    assert a.detection_time == pytest.approx(1.8)  # a longer RX applies at once
    t = run_until(a, b, t, t + 2)
    a.set_config(BfdConfig(desired_min_tx=0.3, required_min_rx=0.1), t)
    assert a.polling
    assert a.detection_time == pytest.approx(1.8)  # §6.8.3: the old RX until the Final
    run_until(a, b, t, t + 2)
    assert not a.polling
    assert a.detection_time == pytest.approx(1.5)  # 3 x max(100 ms, b's 500 ms)


@pytest.mark.parametrize(("mult", "high"), [(3, 1.0), (1, 0.9)])
def test_jitter_range(mult: int, high: float) -> None:
    s = BfdSession(BfdConfig(detect_mult=mult), 1, 0.0, rng=random.Random(5))
    s.start(0.0)
    gaps = []
    last = None
    for _ in range(400):
        t = s.next_deadline()
        assert t is not None
        s.handle_timer(t)
        if last is not None:
            gaps.append(t - last)
        last = t
    # §6.8.7: 75-100% of the 1 s interval (75-90% with Detect Mult 1)
    assert all(0.75 - 1e-9 <= g <= high + 1e-9 for g in gaps)
    assert min(gaps) < 0.77 and max(gaps) > high - 0.02  # the whole range is used


def test_neighbor_signals_down() -> None:
    a, _b, now = up_pair()
    down = ControlPacket(
        state=DOWN,
        detect_mult=3,
        my_discriminator=2,
        your_discriminator=1,
        desired_min_tx=1,
        required_min_rx=1,
    )
    assert a.receive(down, now) == [
        BfdStateChanged(old=UP, new=DOWN, diag=Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)
    ]
    assert a.desired_min_tx == pytest.approx(1.0)  # back to slow (§6.8.3)


def test_remote_admin_down_is_flagged() -> None:
    a, b, now = up_pair()
    assert b.admin_down(now) == [
        BfdStateChanged(old=UP, new=ADMIN_DOWN, diag=Diag.ADMINISTRATIVELY_DOWN)
    ]
    b.packets_to_send()
    while not (sent := b.packets_to_send()):
        b.handle_timer(b.next_deadline() or 0)
    packet = sent[-1]
    assert (packet.state, packet.diag) == (ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN)
    assert a.receive(packet, now + 0.3) == [
        BfdStateChanged(
            old=UP, new=DOWN, diag=Diag.NEIGHBOR_SIGNALED_SESSION_DOWN, remote_admin_down=True
        )
    ]
    # AdminDown ignores what arrives (§6.8.6) until taken out of it.
    assert b.receive(ControlPacket.decode(packet.encode()), now + 0.4) == []
    assert b.admin_up(now + 1) == [BfdStateChanged(old=ADMIN_DOWN, new=DOWN, diag=Diag.NONE)]


def test_authenticated_packets_discarded() -> None:
    a = session(1)
    signed = ControlPacket(
        state=DOWN,
        auth_present=True,
        auth=bytes([1, 3, 1]),
        detect_mult=3,
        my_discriminator=9,
        desired_min_tx=1,
        required_min_rx=1,
    )
    assert a.receive(signed, 0.0) == []
    assert a.remote_discriminator == 0 and a.discarded == 1


def test_packet_for_another_discriminator_discarded() -> None:
    a = session(1)
    other = ControlPacket(
        state=UP,
        detect_mult=3,
        my_discriminator=9,
        your_discriminator=77,
        desired_min_tx=1,
        required_min_rx=1,
    )
    assert a.receive(other, 0.0) == []
    assert a.discarded == 1


def test_remote_discriminator_forgotten_after_silence_when_down() -> None:
    a = session(1)
    a.receive(
        ControlPacket(
            state=ADMIN_DOWN,
            detect_mult=2,
            my_discriminator=9,
            desired_min_tx=1_000_000,
            required_min_rx=1,
        ),
        0.0,
    )
    assert a.state is DOWN and a.remote_discriminator == 9
    assert a.handle_timer(2.0) == []  # 2 x max(300 ms, 1 s): no state change in Down
    assert a.remote_discriminator == 0


def test_info() -> None:
    a, _b, now = up_pair()
    info = a.info(now + 1)
    assert info["state"] == "Up" and info["remote_state"] == "Up"
    assert info["detection_time_ms"] == 900.0 and info["tx_interval_ms"] == 300.0
    assert info["remote_discriminator"] == 2 and info["diag"] == "none"
