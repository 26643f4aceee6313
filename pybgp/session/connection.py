"""One peer's BGP session, sans-IO (h2 style): bytes and time go in, events and bytes come out.

The owner (the trio layer, or a test) feeds in what happens, each call with the current time:
`start`/`stop`, `connection_made`/`connection_lost` for the TCP connection, `receive_data`
with received bytes, `handle_timer` when `next_deadline()` has come. Each call returns the
events it caused; what to write to the peer collects in `data_to_send()`, and `data_sent(now)`
says the transport took it (RFC 9687: the SendHoldTimer runs while written data waits).

Rules:
1. Every input becomes an RFC 4271 §8 event and goes through `pybgp.session.fsm.TABLE`; the actions
   of the entry are executed in order (`pybgp.session.actions` says what each one does).
   Nothing happens that the table does not say.
2. A protocol error of the peer is never raised: its NOTIFICATION is queued in data_to_send()
   first, then reported (NotificationSent, TcpCloseRequested, StateChanged, SessionDown).
   Misuse by the owner raises LocalProtocolError.
3. Every change of state is reported as StateChanged; entering Established also as
   Established, returning to Idle as SessionDown.
4. On TcpConnectRequested the owner opens a TCP connection and calls connection_made (or
   connection_lost when that fails); on TcpCloseRequested it writes what data_to_send() holds,
   then closes.
"""

from __future__ import annotations

from pybgp.session.actions import ACTIONS, SessionActions, cease
from pybgp.session.config import SessionConfig
from pybgp.session.events import (
    Established,
    Event,
    LocalProtocolError,
    NotificationReceived,
    NotificationSent,
    OpenReceived,
    RouteRefreshReceived,
    SessionDown,
    StateChanged,
    TcpCloseRequested,
    TcpConnectRequested,
    UpdateReceived,
)
from pybgp.session.fsm import FsmEvent, State, transition
from pybgp.session.inbound import Frame, Received, classify, take_frames
from pybgp.session.negotiation import Initiator, Negotiated, collision_winner
from pybgp.session.timers import Timer
from pybgp.wire.constants import CeaseSubcode, Family, MessageType
from pybgp.wire.errors import BGPError
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RefreshSubtype, RouteRefresh
from pybgp.wire.update import Update

__all__ = [
    "Connection",
    "Established",
    "Event",
    "Initiator",
    "LocalProtocolError",
    "Negotiated",
    "NotificationReceived",
    "NotificationSent",
    "OpenReceived",
    "RouteRefreshReceived",
    "SessionConfig",
    "SessionDown",
    "State",
    "StateChanged",
    "TcpCloseRequested",
    "TcpConnectRequested",
    "UpdateReceived",
    "collision_winner",
]

S, E = State, FsmEvent
_TCP_UP = (S.OPEN_SENT, S.OPEN_CONFIRM, S.ESTABLISHED)
_REASONS = {
    E.MANUAL_STOP: "stopped",
    E.HOLD_TIMER_EXPIRES: "hold timer expired",
    E.SEND_HOLD_TIMER_EXPIRES: "send hold timer expired: the peer is not reading",
    E.TCP_CONNECTION_FAILS: "TCP connection failed or closed",
}


class Connection(SessionActions):
    """The FSM and timers of one peering; `negotiated` is set once the peer's OPEN is accepted
    and kept after the session ends, until the next start."""

    # -- what the owner calls ---------------------------------------------------------------

    def start(self, now: float, passive: bool = False) -> list[Event]:
        """ManualStart (RFC 4271 §8.1.2 event 1, or 4 when passive); also enables automatic
        restarts after failures."""
        self._tick(now)
        if self.state is S.IDLE:
            self._passive = passive or self.config.passive
            self._backoff.reset()
        self._auto_restart, self._restart_delay = True, None
        return self._run(E.MANUAL_START_PASSIVE if self._passive else E.MANUAL_START)

    def stop(self, now: float, notification: Notification | None = None) -> list[Event]:
        """ManualStop: a Cease (default: Administrative Shutdown) when a session is up."""
        self._tick(now)
        self._auto_restart = False
        shutdown = notification or cease(CeaseSubcode.ADMIN_SHUTDOWN)
        return self._run(E.MANUAL_STOP, shutdown)

    @property
    def waiting_to_restart(self) -> bool:
        """Idle, between a failure and the automatic restart its back-off delays (not after
        a stop, nor while a max-prefix restart delay runs)."""
        return self.state is S.IDLE and self._auto_restart and self._restart_delay is None

    def connection_made(self, now: float) -> list[Event]:
        """The TCP connection is up: ours (Tcp_CR_Acked) in Connect, else the peer's."""
        self._tick(now)
        if self.state in (S.CONNECT, S.ACTIVE):
            self.outgoing = self.state is S.CONNECT
        return self._run(E.TCP_CR_ACKED if self.state is S.CONNECT else E.TCP_CONNECTION_CONFIRMED)

    def connection_lost(self, now: float) -> list[Event]:
        """The TCP connection closed, or the attempt to open one failed."""
        self._tick(now)
        return self._run(E.TCP_CONNECTION_FAILS)

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        self._tick(now)
        if self.state not in _TCP_UP:
            return []
        self._inbuf += data
        updates = False
        while self.state in _TCP_UP:
            frames, error = take_frames(self._inbuf, self._ctx, self.state is S.ESTABLISHED)
            for frame in frames:
                if self.state not in _TCP_UP:
                    break
                if frame[0] == MessageType.UPDATE and self._update_fast(frame[1]):
                    updates = True
                else:
                    self._receive(frame)
            if error is not None and self.state in _TCP_UP:
                if error.event is E.NOTIF_MSG:
                    self._emit(NotificationReceived(notification=None))
                self._fire(error)
            if not frames or error is not None:
                break
        if updates and self.state is S.ESTABLISHED:
            self._start_hold_timer()  # for the UPDATEs taken by _update_fast
        return self._take()

    def data_to_send(self) -> bytes:
        return b"".join(self.chunks_to_send())

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def chunks_to_send(self) -> list[bytes | memoryview]:
        """What data_to_send() would return, as the pieces queued: an UPDATE packed once
        for many peers is shared by their connections, not copied into each."""
        chunks, self._out = self._out, []
        return chunks

    def data_sent(self, now: float) -> None:
        """The transport wrote what data_to_send() returned: progress (RFC 9687 §3)."""
        self._tick(now)
        if self._timers.running(Timer.SEND_HOLD):
            if self._out:
                self._timers.start(Timer.SEND_HOLD, now + self._send_hold_time())
            else:
                self._timers.stop(Timer.SEND_HOLD)

    def next_deadline(self) -> float | None:
        """The earliest of the ConnectRetry, Hold, Keepalive, IdleHold and SendHold timers."""
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at `now`, earliest first."""
        self._tick(now)
        while (timer := self._timers.due(now)) is not None:
            self._timers.stop(timer)
            self._fire(Received(event=timer.event))
        return self._take()

    def send_update(self, raw: bytes | memoryview, now: float) -> None:
        """Queue one or more encoded UPDATE messages; restarts the KeepaliveTimer (§8.2.2)."""
        self._tick(now)
        if self.state is not S.ESTABLISHED:
            raise LocalProtocolError(f"cannot send an UPDATE in {self.state.value}")
        if len(raw) < 23 or raw[18] != MessageType.UPDATE:
            raise ValueError("raw: not an encoded UPDATE message")
        self._send(raw)
        self._start_keepalive_timer()

    def send_route_refresh(
        self, family: Family, now: float, subtype: int = RefreshSubtype.NORMAL
    ) -> None:
        """Ask the peer to resend `family` (RFC 2918 §3); BoRR/EoRR need RFC 7313."""
        self._tick(now)
        n = self.negotiated
        if self.state is not S.ESTABLISHED or n is None:
            raise LocalProtocolError(f"cannot send a ROUTE-REFRESH in {self.state.value}")
        if not n.route_refresh or (
            subtype != RefreshSubtype.NORMAL and not n.enhanced_route_refresh
        ):
            raise LocalProtocolError("route refresh was not negotiated (RFC 2918 §4, RFC 7313)")
        if family not in n.families:
            raise LocalProtocolError(f"{family} was not negotiated")
        self._send(RouteRefresh(family=family, subtype=subtype).encode(self._ctx))

    def prefix_limit_exceeded(self, family: Family, limit: int, now: float) -> list[Event]:
        """Cease subcode 1 with AFI, SAFI and the limit (RFC 4486 §4), as AutomaticStop; the
        next automatic start waits `config.restart_after`, or never happens when it is None."""
        self._tick(now)
        if self.state is not S.IDLE:
            self._auto_restart = self._auto_restart and self.config.restart_after is not None
            self._restart_delay = self.config.restart_after
        data = family.afi.to_bytes(2, "big") + bytes((family.safi,)) + limit.to_bytes(4, "big")
        reason = f"maximum prefixes reached: {limit} for {family}"
        return self._run(E.AUTOMATIC_STOP, cease(CeaseSubcode.MAX_PREFIXES, data), reason)

    def collision_dump(self, now: float) -> list[Event]:
        """Close this connection, the loser of a collision (§6.8), with Cease subcode 7."""
        self._tick(now)
        collision = cease(CeaseSubcode.CONNECTION_COLLISION)
        return self._run(E.OPEN_COLLISION_DUMP, collision, "connection collision resolution")

    @property
    def peer_open(self) -> Open | None:
        return None if self.negotiated is None else self.negotiated.peer_open

    # -- running the table -------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        if now < self._now:
            raise ValueError(f"now: time went backwards ({now} < {self._now})")
        self._now = now

    def _run(
        self, event: FsmEvent, error: Notification | None = None, reason: str = ""
    ) -> list[Event]:
        self._fire(Received(event=event, error=error, reason=reason))
        return self._take()

    def _update_fast(self, body: bytes) -> bool:
        """The (Established, UpdateMsg) row, PROCESS_UPDATE then START_HOLD_TIMER, inlined for
        the hot path (a test pins the row); anything else takes the table path. The hold
        timer is restarted once per read (`receive_data`): every message of a read arrives
        at the same `now`, so one restart sets the same deadline."""
        if self.state is not S.ESTABLISHED:
            return False
        try:
            update = Update.decode(body, self._ctx)
        except BGPError:
            return False  # decoded again by classify, which names the error
        self._events.append(UpdateReceived(update=update))
        return True

    def _receive(self, frame: Frame) -> None:
        received = classify(frame, self.state, self._ctx, self.config, self.local_open)
        if isinstance(received.message, Notification):
            self._emit(NotificationReceived(notification=received.message))
        self._fire(received)

    def _fire(self, received: Received) -> None:
        """Execute the table entry for the event, then any event an action generated."""
        while True:
            self._input, self._sent = received, None
            old = self.state
            step = transition(old, received.event)
            for action in step.actions:
                ACTIONS[action](self)
            self.state = step.next_state
            if self.state is not old:
                self._entered(old)
            follow_up = self._take_follow_up()
            if follow_up is None:
                return
            received = Received(event=follow_up)

    def _entered(self, old: State) -> None:
        self._emit(StateChanged(old=old, new=self.state))
        if self.state is S.ESTABLISHED and self.negotiated is not None:
            self._backoff.session_up(self._now)
            self._emit(Established(negotiated=self.negotiated))
        elif self.state is S.IDLE:
            received = (
                self._input.message if isinstance(self._input.message, Notification) else None
            )
            self._emit(
                SessionDown(reason=self._down_reason(old), notification=self._sent or received)
            )

    def _down_reason(self, old: State) -> str:
        event = self._input.event
        return self._input.reason or _REASONS.get(event, f"{event.value} in {old.value}")

    def _take(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _take_follow_up(self) -> FsmEvent | None:
        event, self._follow_up = self._follow_up, None
        return event
