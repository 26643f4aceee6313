"""The BGP finite state machine of RFC 4271 §8 as one table: (State, FsmEvent) -> Transition.

Rules of the table:

1. Every (state, event) pair has exactly one entry. Each state lists the events §8.2.2 names
   for it, then `OTHER`: the RFC's "in response to any other event". `TRANSITIONS` expands
   `OTHER` so a lookup never fails; a test checks that the table covers every pair.
2. An entry is what the RFC says the local system does, as `Action`s executed in order, and
   the state it changes to. The table never reads a clock or a socket: the connection
   (`pybgp.session.connection`) executes the actions, with time passed in as `now`.
3. A NOTIFICATION is never sent in answer to a NOTIFICATION (§6.4): the NotifMsg and
   NotifMsgVerErr rows send nothing, in every state (RFC 4271 lists NotifMsg among
   OpenSent's "other" events, which would answer it with an FSM Error; we do not).
4. An unexpected event in OpenSent, OpenConfirm or Established sends an FSM Error NOTIFICATION
   (code 5) whose subcode names the state (RFC 6608 §3); in Idle it is ignored (§8.2.2).
   BGPHeaderErr sends its own error (§6.1) also in Established, where §8.2.2 says FSM Error.
5. Optional attributes (§8.1.1): no DelayOpen, no TCP connection validation (events 12, 14,
   15, 20); the events that need them are absent. Collision detection in Established is on:
   the owner decides (§6.8), and OpenCollisionDump closes a connection in any state, with a
   Cease once an OPEN went out; the loser does not restart, the winner carries the session.
6. Automatic restart and peer oscillation damping (§8.1.1 leaves the method open): every row
   that ends a session because of a failure starts the IdleHoldTimer (its value backs off
   exponentially, see `pybgp.session.timers.Backoff`); when it expires in Idle, the connection
   generates AutomaticStart, or AutomaticStart_with_PassiveTcpEstablishment for a passive peer.
   Deviations from §8.2.2 that follow from this, so that a passive peer never dials out and a
   failing peer always backs off: a passive start runs no ConnectRetryTimer (whose expiry in
   Active would initiate a connection), and a TCP failure in OpenSent goes to Idle, not Active.
7. Received messages restart the HoldTimer (§4.4); sent UPDATEs and KEEPALIVEs restart the
   KeepaliveTimer (§8.2.2, Established), which the connection does when it sends an UPDATE.
8. The SendHoldTimer of RFC 9687 runs in OpenSent, OpenConfirm and Established while data waits
   to be written; its expiry ends the session like the HoldTimer's, with error code 8.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = [
    "OTHER",
    "TABLE",
    "TRANSITIONS",
    "Action",
    "FsmEvent",
    "State",
    "Transition",
    "transition",
]


class State(enum.Enum):
    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class FsmEvent(enum.Enum):
    """RFC 4271 §8.1 events (their numbers in comments), RFC 9687's, and ROUTE-REFRESH."""

    MANUAL_START = "ManualStart"  # 1
    MANUAL_STOP = "ManualStop"  # 2
    AUTOMATIC_START = "AutomaticStart"  # 3
    MANUAL_START_PASSIVE = "ManualStart_with_PassiveTcpEstablishment"  # 4
    AUTOMATIC_START_PASSIVE = "AutomaticStart_with_PassiveTcpEstablishment"  # 5
    AUTOMATIC_STOP = "AutomaticStop"  # 8
    CONNECT_RETRY_TIMER_EXPIRES = "ConnectRetryTimer_Expires"  # 9
    HOLD_TIMER_EXPIRES = "HoldTimer_Expires"  # 10
    KEEPALIVE_TIMER_EXPIRES = "KeepaliveTimer_Expires"  # 11
    IDLE_HOLD_TIMER_EXPIRES = "IdleHoldTimer_Expires"  # 13
    TCP_CR_ACKED = "Tcp_CR_Acked"  # 16: our connection attempt succeeded
    TCP_CONNECTION_CONFIRMED = "TcpConnectionConfirmed"  # 17: the peer's connection arrived
    TCP_CONNECTION_FAILS = "TcpConnectionFails"  # 18
    BGP_OPEN = "BGPOpen"  # 19
    BGP_HEADER_ERR = "BGPHeaderErr"  # 21
    BGP_OPEN_MSG_ERR = "BGPOpenMsgErr"  # 22
    OPEN_COLLISION_DUMP = "OpenCollisionDump"  # 23
    NOTIF_MSG_VER_ERR = "NotifMsgVerErr"  # 24
    NOTIF_MSG = "NotifMsg"  # 25
    KEEPALIVE_MSG = "KeepAliveMsg"  # 26
    UPDATE_MSG = "UpdateMsg"  # 27
    UPDATE_MSG_ERR = "UpdateMsgErr"  # 28
    SEND_HOLD_TIMER_EXPIRES = "SendHoldTimer_Expires"  # RFC 9687 §4 (event 29)
    ROUTE_REFRESH_MSG = "RouteRefreshMsg"  # RFC 2918 §4
    ROUTE_REFRESH_MSG_ERR = "RouteRefreshMsgErr"  # RFC 7313 §5


class Action(enum.StrEnum):
    """What the local system does, in §8.2.2's words."""

    INITIALIZE_RESOURCES = "initialize-resources"
    RELEASE_RESOURCES = "release-resources"  # stops the Hold, Keepalive and SendHold timers
    START_CONNECT_RETRY_TIMER = "start-connect-retry-timer"
    STOP_CONNECT_RETRY_TIMER = "stop-connect-retry-timer"  # "sets ConnectRetryTimer to zero"
    RESET_CONNECT_RETRY_COUNTER = "reset-connect-retry-counter"
    INCREMENT_CONNECT_RETRY_COUNTER = "increment-connect-retry-counter"
    INITIATE_TCP = "initiate-tcp"
    DROP_TCP = "drop-tcp"
    SEND_OPEN = "send-open"
    SEND_KEEPALIVE = "send-keepalive"
    SEND_NOTIFICATION = "send-notification"  # the one the event carries (an error, a Cease)
    SEND_FSM_ERROR = "send-fsm-error"  # code 5, subcode by state (RFC 6608)
    SEND_HOLD_TIMER_EXPIRED = "send-hold-timer-expired"  # code 4
    SEND_SEND_HOLD_TIMER_EXPIRED = "send-send-hold-timer-expired"  # code 8 (RFC 9687)
    ACCEPT_OPEN = "accept-open"  # the negotiated values take effect
    START_LARGE_HOLD_TIMER = "start-large-hold-timer"  # "a large value", 4 minutes
    START_HOLD_TIMER = "start-hold-timer"  # negotiated HoldTime; none when it is 0
    START_KEEPALIVE_TIMER = "start-keepalive-timer"  # none when the HoldTime is 0
    START_IDLE_HOLD_TIMER = "start-idle-hold-timer"  # schedules the automatic restart
    STOP_IDLE_HOLD_TIMER = "stop-idle-hold-timer"
    GENERATE_AUTOMATIC_START = "generate-automatic-start"
    PROCESS_UPDATE = "process-update"
    PROCESS_ROUTE_REFRESH = "process-route-refresh"


class Transition(NamedTuple):
    actions: tuple[Action, ...]
    next_state: State


OTHER = "any other event"
A = Action
S = State
E = FsmEvent

# "sets the ConnectRetryTimer to zero, releases all BGP resources, drops the TCP connection"
_CLOSE = (A.STOP_CONNECT_RETRY_TIMER, A.RELEASE_RESOURCES, A.DROP_TCP)
# ... then "increments the ConnectRetryCounter by 1, (optionally) performs peer oscillation damping"
_FAIL = (*_CLOSE, A.INCREMENT_CONNECT_RETRY_COUNTER, A.START_IDLE_HOLD_TIMER)
_STOP = (*_CLOSE, A.RESET_CONNECT_RETRY_COUNTER)  # ManualStop: "sets ConnectRetryCounter to zero"
_CONNECTED = (A.STOP_CONNECT_RETRY_TIMER, A.SEND_OPEN, A.START_LARGE_HOLD_TIMER)  # -> OpenSent
_START = (A.STOP_IDLE_HOLD_TIMER, A.INITIALIZE_RESOURCES, A.RESET_CONNECT_RETRY_COUNTER)
# OpenCollisionDump: the loser stays down, the winning connection carries the session (§6.8).
_DUMP = (*_CLOSE, A.INCREMENT_CONNECT_RETRY_COUNTER)
_IGNORE: tuple[Action, ...] = ()
_STARTS = (E.MANUAL_START, E.AUTOMATIC_START, E.MANUAL_START_PASSIVE, E.AUTOMATIC_START_PASSIVE)


def _t(actions: tuple[Action, ...], next_state: State) -> Transition:
    return Transition(actions, next_state)


def _session_rows(state: State) -> dict[FsmEvent | str, Transition]:
    """The rows OpenSent, OpenConfirm and Established share (§8.2.2)."""
    return {
        **{event: _t(_IGNORE, state) for event in _STARTS},
        E.MANUAL_STOP: _t((A.SEND_NOTIFICATION, *_STOP), S.IDLE),  # a Cease
        E.AUTOMATIC_STOP: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),  # a Cease
        E.HOLD_TIMER_EXPIRES: _t((A.SEND_HOLD_TIMER_EXPIRED, *_FAIL), S.IDLE),
        E.SEND_HOLD_TIMER_EXPIRES: _t((A.SEND_SEND_HOLD_TIMER_EXPIRED, *_FAIL), S.IDLE),
        # A second TCP connection is another Connection's business (§6.8).
        E.TCP_CR_ACKED: _t(_IGNORE, state),
        E.TCP_CONNECTION_CONFIRMED: _t(_IGNORE, state),
        E.TCP_CONNECTION_FAILS: _t(_FAIL, S.IDLE),
        E.BGP_HEADER_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),  # §6.1
        E.BGP_OPEN_MSG_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),
        E.OPEN_COLLISION_DUMP: _t((A.SEND_NOTIFICATION, *_DUMP), S.IDLE),  # a Cease, subcode 7
        E.NOTIF_MSG_VER_ERR: _t((*_CLOSE, A.START_IDLE_HOLD_TIMER), S.IDLE),  # no count
        E.NOTIF_MSG: _t(_FAIL, S.IDLE),
        OTHER: _t((A.SEND_FSM_ERROR, *_FAIL), S.IDLE),
    }


TABLE: dict[State, dict[FsmEvent | str, Transition]] = {
    S.IDLE: {
        E.MANUAL_START: _t((*_START, A.START_CONNECT_RETRY_TIMER, A.INITIATE_TCP), S.CONNECT),
        E.AUTOMATIC_START: _t((*_START, A.START_CONNECT_RETRY_TIMER, A.INITIATE_TCP), S.CONNECT),
        E.MANUAL_START_PASSIVE: _t(_START, S.ACTIVE),  # rule 6: no ConnectRetryTimer
        E.AUTOMATIC_START_PASSIVE: _t(_START, S.ACTIVE),
        E.MANUAL_STOP: _t((A.STOP_IDLE_HOLD_TIMER,), S.IDLE),  # cancels the automatic restart
        E.IDLE_HOLD_TIMER_EXPIRES: _t((A.GENERATE_AUTOMATIC_START,), S.IDLE),
        # "In this state, BGP FSM refuses all incoming BGP connections".
        E.TCP_CR_ACKED: _t((A.DROP_TCP,), S.IDLE),
        E.TCP_CONNECTION_CONFIRMED: _t((A.DROP_TCP,), S.IDLE),
        OTHER: _t(_IGNORE, S.IDLE),
    },
    S.CONNECT: {
        **{event: _t(_IGNORE, S.CONNECT) for event in _STARTS},
        E.MANUAL_STOP: _t(_STOP, S.IDLE),
        E.OPEN_COLLISION_DUMP: _t(_DUMP, S.IDLE),  # no OPEN was sent: no Cease
        E.CONNECT_RETRY_TIMER_EXPIRES: _t(
            (A.DROP_TCP, A.START_CONNECT_RETRY_TIMER, A.INITIATE_TCP), S.CONNECT
        ),
        E.TCP_CR_ACKED: _t(_CONNECTED, S.OPEN_SENT),
        E.TCP_CONNECTION_CONFIRMED: _t(_CONNECTED, S.OPEN_SENT),
        E.TCP_CONNECTION_FAILS: _t((*_CLOSE, A.START_IDLE_HOLD_TIMER), S.IDLE),
        E.BGP_HEADER_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),
        E.BGP_OPEN_MSG_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),
        E.NOTIF_MSG_VER_ERR: _t((*_CLOSE, A.START_IDLE_HOLD_TIMER), S.IDLE),
        OTHER: _t(_FAIL, S.IDLE),
    },
    S.ACTIVE: {
        **{event: _t(_IGNORE, S.ACTIVE) for event in _STARTS},
        E.MANUAL_STOP: _t(_STOP, S.IDLE),
        E.OPEN_COLLISION_DUMP: _t(_DUMP, S.IDLE),  # no OPEN was sent: no Cease
        # §8.2.2's row, though rule 6 keeps the timer off in Active.
        E.CONNECT_RETRY_TIMER_EXPIRES: _t((A.START_CONNECT_RETRY_TIMER, A.INITIATE_TCP), S.CONNECT),
        E.TCP_CR_ACKED: _t(_CONNECTED, S.OPEN_SENT),
        E.TCP_CONNECTION_CONFIRMED: _t(_CONNECTED, S.OPEN_SENT),
        E.TCP_CONNECTION_FAILS: _t(_FAIL, S.IDLE),
        E.BGP_HEADER_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),
        E.BGP_OPEN_MSG_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),
        E.NOTIF_MSG_VER_ERR: _t((*_CLOSE, A.START_IDLE_HOLD_TIMER), S.IDLE),
        OTHER: _t(_FAIL, S.IDLE),
    },
    S.OPEN_SENT: {
        **_session_rows(S.OPEN_SENT),
        E.BGP_OPEN: _t(
            (
                A.STOP_CONNECT_RETRY_TIMER,
                A.ACCEPT_OPEN,
                A.SEND_KEEPALIVE,
                A.START_KEEPALIVE_TIMER,
                A.START_HOLD_TIMER,
            ),
            S.OPEN_CONFIRM,
        ),
    },
    S.OPEN_CONFIRM: {
        **_session_rows(S.OPEN_CONFIRM),
        E.KEEPALIVE_TIMER_EXPIRES: _t((A.SEND_KEEPALIVE, A.START_KEEPALIVE_TIMER), S.OPEN_CONFIRM),
        E.KEEPALIVE_MSG: _t((A.START_HOLD_TIMER,), S.ESTABLISHED),
        # A second OPEN on this connection: unexpected (a collision involves two connections).
    },
    S.ESTABLISHED: {
        **_session_rows(S.ESTABLISHED),
        E.KEEPALIVE_TIMER_EXPIRES: _t((A.SEND_KEEPALIVE, A.START_KEEPALIVE_TIMER), S.ESTABLISHED),
        E.KEEPALIVE_MSG: _t((A.START_HOLD_TIMER,), S.ESTABLISHED),
        E.UPDATE_MSG: _t((A.PROCESS_UPDATE, A.START_HOLD_TIMER), S.ESTABLISHED),
        E.UPDATE_MSG_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),
        E.ROUTE_REFRESH_MSG: _t((A.PROCESS_ROUTE_REFRESH, A.START_HOLD_TIMER), S.ESTABLISHED),
        E.ROUTE_REFRESH_MSG_ERR: _t((A.SEND_NOTIFICATION, *_FAIL), S.IDLE),
        # RFC 4271 answers BGPOpenMsgErr here with an FSM Error: an OPEN is unexpected.
        E.BGP_OPEN_MSG_ERR: _t((A.SEND_FSM_ERROR, *_FAIL), S.IDLE),
    },
}


def _expand() -> dict[tuple[State, FsmEvent], Transition]:
    out: dict[tuple[State, FsmEvent], Transition] = {}
    for state, rows in TABLE.items():
        for event in FsmEvent:
            out[state, event] = rows.get(event, rows[OTHER])
    return out


TRANSITIONS = _expand()


def transition(state: State, event: FsmEvent) -> Transition:
    """What `event` does in `state`: the actions to execute, in order, and the next state."""
    return TRANSITIONS[state, event]
