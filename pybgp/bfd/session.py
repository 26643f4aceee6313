"""One asynchronous-mode BFD session (RFC 5880), sans-IO: time enters as `now` (seconds),
received packets as `ControlPacket`s; out come state changes and packets to send.

    session = BfdSession(BfdConfig(), local_discriminator=7, now=now)
    session.start(now)
    ... session.receive(packet, now) -> [BfdStateChanged]
    ... session.handle_timer(now) -> [BfdStateChanged]   (when now >= next_deadline())
    ... session.packets_to_send() -> [ControlPacket]

The rules, and where they come from:
- States AdminDown, Down, Init, Up and the three-way handshake: §6.2, §6.8.6.
- While not Up, the Desired Min TX Interval we announce is at least one second (§6.8.3);
  once Up, the configured one.
- Periodic packets every max(bfd.DesiredMinTxInterval, bfd.RemoteMinRxInterval), less
  0-25% jitter (0-10% more when bfd.DetectMult is 1), none while the remote asks for no
  packets (RemoteMinRxInterval 0) (§6.8.7). A packet with the Poll bit is answered by one
  with the Final bit at once, outside the periodic schedule (§6.8.7).
- Detection Time = the remote's Detect Mult x max(bfd.RequiredMinRxInterval, the remote's
  Desired Min TX Interval) (§6.8.4), counted from the last packet received (§6.8.6); when
  it passes in Init or Up the session goes Down with diagnostic 1, and bfd.RemoteDiscr
  returns to zero in any state (§6.8.1).
- A change of our intervals while Up starts a Poll Sequence (§6.5, §6.8.3): every packet
  carries the Poll bit until one with the Final bit arrives. Until then a longer TX interval
  is not used yet, nor a shorter RX interval for the Detection Time (§6.8.3).
- Authentication is not used: packets with the A bit are discarded (§6.8.6).
- Demand mode and the Echo function are not used: we never set D and announce a Required
  Min Echo RX Interval of 0 (§6.8.9).
"""

from __future__ import annotations

import random

import attrs

from pybgp.bfd.packet import BfdState, ControlPacket, Diag

SLOW_TX = 1.0  # RFC 5880 §6.8.3: at least one second while the session is not Up
US = 1_000_000  # microseconds per second: the wire's unit


def _interval(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < (1 << 32) / US:
        raise ValueError(f"{attribute.name}: {value} s is not a valid interval")


@attrs.frozen(kw_only=True)
class BfdConfig:
    """What the local system asks for (seconds). The defaults are FRR's (300 ms x 3)."""

    desired_min_tx: float = attrs.field(default=0.3, validator=_interval)
    required_min_rx: float = attrs.field(default=0.3, validator=_interval)
    detect_mult: int = attrs.field(default=3, validator=attrs.validators.in_(range(1, 256)))


@attrs.frozen(kw_only=True)
class BfdStateChanged:
    """bfd.SessionState changed; `diag` is bfd.LocalDiag, why it changed.

    `remote_admin_down`: the remote signalled AdminDown, which is no path failure; RFC 5882
    §3.2 says clients must not take their sessions down for it."""

    old: BfdState
    new: BfdState
    diag: Diag
    remote_admin_down: bool = False


class BfdSession:
    """The state variables of RFC 5880 §6.8.1 and what the procedures of §6.8 do with them."""

    def __init__(
        self,
        config: BfdConfig,
        local_discriminator: int,
        now: float,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < local_discriminator < 1 << 32:
            raise ValueError("local_discriminator: must be a non-zero 32-bit value")
        self.config = config
        self.local_discriminator = local_discriminator
        self.rng = rng or random.Random()
        self.state = BfdState.DOWN
        self.remote_state = BfdState.DOWN
        self.remote_discriminator = 0
        self.local_diag = Diag.NONE
        self.remote_diag = 0
        self.remote_detect_mult = 0
        self.remote_min_rx = 1e-6  # §6.8.1: bfd.RemoteMinRxInterval starts at 1 microsecond
        self.remote_desired_tx = 0.0
        self.desired_min_tx = SLOW_TX  # as announced (bfd.DesiredMinTxInterval)
        self.required_min_rx = config.required_min_rx  # as announced
        self._tx_in_use = SLOW_TX  # what the schedule uses while a poll runs (§6.8.3)
        self._rx_in_use = config.required_min_rx  # what the Detection Time uses
        self.polling = False
        self._started = False
        self._last_tx: float | None = None
        self._next_tx: float | None = None
        self._scheduled_interval = 0.0  # the interval _next_tx was worked out with
        self._last_rx: float | None = None
        self._outbox: list[ControlPacket] = []
        self.up_since: float | None = None
        self.discarded = 0  # packets dropped by the §6.8.6 rules applied here

    # -- what the owner asks -------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin transmitting (we are always the Active role, §6.1)."""
        self._started = True
        self._next_tx = now  # the first packet at once, then periodically

    def admin_down(self, now: float) -> list[BfdStateChanged]:
        """§6.8.16: AdminDown with diagnostic 7; packets keep saying so."""
        return self._set_state(BfdState.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN, now)

    def admin_up(self, now: float) -> list[BfdStateChanged]:
        """§6.8.16: leave AdminDown for Down."""
        if self.state is not BfdState.ADMIN_DOWN:
            return []
        return self._set_state(BfdState.DOWN, Diag.NONE, now)

    def set_config(self, config: BfdConfig, now: float) -> None:
        """New intervals or multiplier; while Up, a Poll Sequence announces them (§6.8.3)."""
        self.config = config
        self._announce_intervals()

    @property
    def detection_time(self) -> float | None:
        """§6.8.4 (asynchronous mode); None before the remote has said anything."""
        if self.remote_detect_mult == 0:
            return None
        return self.remote_detect_mult * max(self._rx_in_use, self.remote_desired_tx)

    @property
    def tx_interval(self) -> float:
        """§6.8.7: the larger of ours and the remote's, before jitter."""
        return max(self._tx_in_use, self.remote_min_rx)

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._next_tx, self._detect_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def packets_to_send(self) -> list[ControlPacket]:
        out, self._outbox = self._outbox, []
        return out

    # -- time ------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> list[BfdStateChanged]:
        events: list[BfdStateChanged] = []
        deadline = self._detect_deadline()
        if deadline is not None and now >= deadline:
            events += self._detection_expired(now)
        if self._next_tx is not None and now >= self._next_tx:
            self._transmit(now)
        return events

    def _detect_deadline(self) -> float | None:
        detect = self.detection_time
        if self._last_rx is None or detect is None or self.remote_discriminator == 0:
            return None
        return self._last_rx + detect

    def _detection_expired(self, now: float) -> list[BfdStateChanged]:
        # §6.8.1: bfd.RemoteDiscr is zero again once a Detection Time passes in silence;
        # §6.8.4: in Init or Up the session has gone down.
        self.remote_discriminator = 0
        self.remote_state = BfdState.DOWN
        if self.state in (BfdState.INIT, BfdState.UP):
            return self._set_state(BfdState.DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED, now)
        return []

    def _transmit(self, now: float) -> None:
        """One periodic packet, and the next one scheduled with jitter (§6.8.7)."""
        if not self._started:
            return
        if self.remote_min_rx == 0:  # §6.8.7: the remote wants no periodic packets
            self._next_tx = None
            return
        self._outbox.append(self._packet(poll=self.polling))
        self._last_tx = now
        self._scheduled_interval = self.tx_interval
        self._next_tx = now + self._jittered(self.tx_interval)

    def _jittered(self, interval: float) -> float:
        # §6.8.7: reduced by 0-25% (75-100% of the interval); at most 90% when
        # bfd.DetectMult is 1, so one late packet never makes the remote time out.
        high = 0.9 if self.config.detect_mult == 1 else 1.0
        return interval * self.rng.uniform(0.75, high)

    def _reschedule(self, *, delay: bool = True) -> None:
        """The transmit interval may have changed: the next packet is due one (jittered)
        new interval after the last one, never sooner (§6.8.7). Without `delay`, a longer
        interval starts after the packet already due (which then tells the new state)."""
        if self.remote_min_rx == 0:  # §6.8.7: no periodic packets
            self._next_tx = None
            return
        if self._last_tx is None:  # not started, or the first packet is still due
            return
        if self._next_tx is None or self.tx_interval != self._scheduled_interval:
            self._scheduled_interval = self.tx_interval
            due = self._last_tx + self._jittered(self.tx_interval)
            if delay or self._next_tx is None or due < self._next_tx:
                self._next_tx = due

    # -- reception (§6.8.6) ---------------------------------------------------------------

    def receive(self, packet: ControlPacket, now: float) -> list[BfdStateChanged]:
        """A packet the codec accepted and the owner matched to this session."""
        if packet.auth_present:  # §6.8.6: A bit set, no authentication in use: discard
            self.discarded += 1
            return []
        if packet.your_discriminator not in (0, self.local_discriminator):
            self.discarded += 1  # §6.8.6: a packet for another session
            return []
        self.remote_discriminator = packet.my_discriminator
        self.remote_state = packet.state
        self.remote_diag = packet.diag
        self.remote_detect_mult = packet.detect_mult
        self.remote_desired_tx = packet.desired_min_tx / US
        old_min_rx, self.remote_min_rx = self.remote_min_rx, packet.required_min_rx / US
        if packet.final and self.polling:
            self._poll_done()
        self._last_rx = now  # received, for the Detection Time (§6.8.6)
        if self.remote_min_rx != old_min_rx:
            self._reschedule()
        if self.state is BfdState.ADMIN_DOWN:  # §6.8.6: nothing more while AdminDown
            return []
        events = self._handshake(packet, now)
        if packet.poll:  # §6.8.6, §6.8.7: answer with Final at once (never both P and F)
            self._outbox.append(self._packet(final=True))
        return events

    def _handshake(self, packet: ControlPacket, now: float) -> list[BfdStateChanged]:
        """§6.8.6, the state part."""
        if packet.state is BfdState.ADMIN_DOWN:
            if self.state is BfdState.DOWN:
                return []
            return self._set_state(
                BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN, now, remote_admin_down=True
            )
        if self.state is BfdState.DOWN:
            if packet.state is BfdState.DOWN:
                return self._set_state(BfdState.INIT, Diag.NONE, now)
            if packet.state is BfdState.INIT:
                return self._set_state(BfdState.UP, Diag.NONE, now)
        elif self.state is BfdState.INIT:
            if packet.state in (BfdState.INIT, BfdState.UP):
                return self._set_state(BfdState.UP, Diag.NONE, now)
        elif packet.state is BfdState.DOWN:  # we are Up
            return self._set_state(BfdState.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN, now)
        return []

    # -- state and intervals --------------------------------------------------------------

    def _set_state(
        self, new: BfdState, diag: Diag, now: float, remote_admin_down: bool = False
    ) -> list[BfdStateChanged]:
        old = self.state
        if new is old:
            return []
        self.state = new
        if new is BfdState.UP:
            self.local_diag = Diag.NONE
            self.up_since = now
        else:
            self.local_diag = diag
            self.up_since = None
        self._announce_intervals()
        return [BfdStateChanged(old=old, new=new, diag=diag, remote_admin_down=remote_admin_down)]

    def _announce_intervals(self) -> None:
        """bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval for the current state."""
        up = self.state is BfdState.UP
        tx = self.config.desired_min_tx if up else max(self.config.desired_min_tx, SLOW_TX)
        rx = self.config.required_min_rx
        changed = (tx, rx) != (self.desired_min_tx, self.required_min_rx)
        self.desired_min_tx, self.required_min_rx = tx, rx
        if up and changed:
            # §6.8.3: a Poll Sequence; a longer TX interval waits for its end, and so
            # does a shorter RX interval for the Detection Time.
            self.polling = True
            self._tx_in_use = min(self._tx_in_use, tx)
            self._rx_in_use = max(self._rx_in_use, rx)
        elif not up:
            self.polling = False
            self._tx_in_use, self._rx_in_use = tx, rx
        self._reschedule(delay=False)

    def _poll_done(self) -> None:
        self.polling = False
        self._tx_in_use, self._rx_in_use = self.desired_min_tx, self.required_min_rx
        self._reschedule()

    def _packet(self, *, poll: bool = False, final: bool = False) -> ControlPacket:
        return ControlPacket(
            state=self.state,
            diag=self.local_diag,
            poll=poll,
            final=final,
            detect_mult=self.config.detect_mult,
            my_discriminator=self.local_discriminator,
            your_discriminator=self.remote_discriminator,
            desired_min_tx=round(self.desired_min_tx * US),
            required_min_rx=round(self.required_min_rx * US),
            required_min_echo_rx=0,
        )

    def info(self, now: float) -> dict[str, object]:
        """For `pybgp neighbor`: the state, both sides' view, the timers in milliseconds."""
        detect = self.detection_time
        return {
            "state": self.state.label,
            "remote_state": self.remote_state.label,
            "diag": self.local_diag.name.lower(),
            "local_discriminator": self.local_discriminator,
            "remote_discriminator": self.remote_discriminator,
            "detect_mult": self.config.detect_mult,
            "tx_interval_ms": round(self.tx_interval * 1000, 3),
            "detection_time_ms": round(detect * 1000, 3) if detect is not None else None,
            "uptime": now - self.up_since if self.up_since is not None else None,
        }
