"""One peering's state and what each RFC 4271 §8.2.2 action does to it.

`pybgp.session.connection.Connection` decides when (through the table of
`pybgp.session.fsm`); this module says how: queue bytes, start and stop timers, count, and
report events. Time is `self._now`, set by the Connection from the `now` of the call being
handled.
"""

from __future__ import annotations

from collections.abc import Callable

from pybgp.restart import hard_reset
from pybgp.session.config import LARGE_HOLD_TIME, SessionConfig
from pybgp.session.events import (
    Event,
    NotificationSent,
    OpenReceived,
    RouteRefreshReceived,
    TcpCloseRequested,
    TcpConnectRequested,
    UpdateReceived,
)
from pybgp.session.fsm import Action, FsmEvent, State
from pybgp.session.inbound import Received
from pybgp.session.negotiation import Negotiated
from pybgp.session.timers import Backoff, Timer, Timers
from pybgp.wire.constants import ErrorCode, FsmSubcode
from pybgp.wire.context import CodecContext
from pybgp.wire.keepalive import KEEPALIVE_MESSAGE
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RouteRefresh
from pybgp.wire.update import Update

_FSM_SUBCODE = {  # RFC 6608 §3
    State.OPEN_SENT: FsmSubcode.UNEXPECTED_IN_OPENSENT,
    State.OPEN_CONFIRM: FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
}


def cease(subcode: int, data: bytes = b"") -> Notification:
    return Notification(code=ErrorCode.CEASE, subcode=subcode, data=data)


class SessionActions:
    """The FSM's variables (§8.1 session attributes) and its actions, one method each."""

    def __init__(self, config: SessionConfig, now: float) -> None:
        self.config = config
        self.state = State.IDLE
        self.negotiated: Negotiated | None = None
        self.connect_retry_counter = 0
        self.outgoing: bool | None = None  # whether we opened the current TCP connection
        self.local_open: Open = config.open_message()
        self._open_bytes = self.local_open.encode(CodecContext())
        self._now = now
        self._ctx = CodecContext()
        self._inbuf = bytearray()
        self._out: list[bytes | memoryview] = []  # queued pieces, shared (not copied)
        self._timers = Timers()
        self._backoff = Backoff(config.idle_hold_time, config.idle_hold_max, config.idle_hold_reset)
        self._passive = config.passive
        self._auto_restart = False  # started and not stopped: restart after failures
        self._restart_delay: float | None = None  # replaces the back-off once (max-prefix)
        self._events: list[Event] = []
        self._input = Received(event=FsmEvent.MANUAL_START)  # the event being handled
        self._sent: Notification | None = None  # sent while handling it
        self._follow_up: FsmEvent | None = None  # an event an action generated

    def use_config(self, config: SessionConfig) -> None:
        """Announce `config`'s OPEN from the next connection on (a connection under way keeps
        its own): e.g. graceful restart's Restart State bit once our restart is complete."""
        self.config = config
        self.local_open = config.open_message()
        self._open_bytes = self.local_open.encode(CodecContext())

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _send(self, raw: bytes | memoryview) -> None:
        """Queue bytes for the peer; the SendHoldTimer runs while any wait (RFC 9687 §3)."""
        self._out.append(raw)
        if not self._timers.running(Timer.SEND_HOLD):
            self._timers.start(Timer.SEND_HOLD, self._now + self._send_hold_time())

    def _send_hold_time(self) -> float:
        if self.negotiated is not None:
            return self.negotiated.send_hold_time
        return self.config.send_hold_for(self.config.hold_time)

    def _notify(self, notification: Notification) -> None:
        if self.negotiated is not None and self.negotiated.notification_restart:
            notification = hard_reset(notification)  # RFC 8538 §5
        self._send(notification.encode(self._ctx))
        self._sent = notification
        self._emit(NotificationSent(notification=notification))

    def _initialize_resources(self) -> None:
        self._inbuf.clear()
        self._out.clear()
        self._ctx, self.negotiated, self.outgoing = CodecContext(), None, None

    def _release_resources(self) -> None:
        self._timers.stop(Timer.HOLD, Timer.KEEPALIVE, Timer.SEND_HOLD)
        self._inbuf.clear()
        self._ctx = CodecContext()

    def _start_connect_retry_timer(self) -> None:
        self._timers.start(Timer.CONNECT_RETRY, self._now + self.config.connect_retry_time)

    def _stop_connect_retry_timer(self) -> None:
        self._timers.stop(Timer.CONNECT_RETRY)

    def _reset_connect_retry_counter(self) -> None:
        self.connect_retry_counter = 0

    def _increment_connect_retry_counter(self) -> None:
        self.connect_retry_counter += 1

    def _initiate_tcp(self) -> None:
        self._emit(TcpConnectRequested())

    def _drop_tcp(self) -> None:
        self._emit(TcpCloseRequested())

    def _send_open(self) -> None:
        self._send(self._open_bytes)

    def _send_keepalive(self) -> None:
        self._send(KEEPALIVE_MESSAGE)

    def _send_notification(self) -> None:
        self._notify(self._input.error or cease(0))

    def _send_fsm_error(self) -> None:
        subcode = _FSM_SUBCODE.get(self.state, FsmSubcode.UNSPECIFIED)
        self._notify(Notification(code=ErrorCode.FSM, subcode=subcode))

    def _send_hold_timer_expired(self) -> None:
        self._notify(Notification(code=ErrorCode.HOLD_TIMER_EXPIRED, subcode=0))

    def _send_send_hold_timer_expired(self) -> None:
        self._notify(Notification(code=ErrorCode.SEND_HOLD_TIMER_EXPIRED, subcode=0))

    def _accept_open(self) -> None:
        negotiated = self._input.negotiated
        if negotiated is None:
            raise AssertionError("BGPOpen without a negotiated session")
        self.negotiated, self._ctx = negotiated, negotiated.context
        self._emit(OpenReceived(open=negotiated.peer_open))

    def _start_large_hold_timer(self) -> None:
        self._timers.start(Timer.HOLD, self._now + LARGE_HOLD_TIME)

    def _start_hold_timer(self) -> None:
        hold = self.negotiated.hold_time if self.negotiated is not None else 0
        if hold:
            self._timers.start(Timer.HOLD, self._now + hold)
        else:  # RFC 4271 §4.4: a HoldTime of zero means no HoldTimer
            self._timers.stop(Timer.HOLD)

    def _start_keepalive_timer(self) -> None:
        interval = self.negotiated.keepalive_time if self.negotiated is not None else 0
        if interval:
            self._timers.start(Timer.KEEPALIVE, self._now + interval)

    def _start_idle_hold_timer(self) -> None:
        if not self._auto_restart:
            return
        delay = self._backoff.next_delay(self._now)
        if self._restart_delay is not None:
            delay, self._restart_delay = self._restart_delay, None
        self._timers.start(Timer.IDLE_HOLD, self._now + delay)

    def _stop_idle_hold_timer(self) -> None:
        self._timers.stop(Timer.IDLE_HOLD)

    def _generate_automatic_start(self) -> None:
        self._follow_up = (
            FsmEvent.AUTOMATIC_START_PASSIVE if self._passive else FsmEvent.AUTOMATIC_START
        )

    def _process_update(self) -> None:
        if isinstance(self._input.message, Update):
            self._emit(UpdateReceived(update=self._input.message))

    def _process_route_refresh(self) -> None:
        """RFC 2918 §4 and RFC 7313 §5: ignore a family not negotiated or an unknown subtype."""
        message = self._input.message
        if not isinstance(message, RouteRefresh) or self.negotiated is None:
            return
        if message.family in self.negotiated.families and message.subtype_name is not None:
            self._emit(RouteRefreshReceived(message=message))


ACTIONS: dict[Action, Callable[[SessionActions], None]] = {
    action: getattr(SessionActions, "_" + action.name.lower()) for action in Action
}
