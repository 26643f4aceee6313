"""The RFC 4271 §8 table (pybgp.session.fsm): it covers every (state, event) pair, keeps its
rules, and, driven at random through a real Connection, never breaks the session invariants."""

from __future__ import annotations

import attrs
import hypothesis
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pybgp.session.connection import (
    Connection,
    Established,
    Event,
    LocalProtocolError,
    NotificationSent,
    SessionDown,
    StateChanged,
)
from pybgp.session.fsm import (
    OTHER,
    TABLE,
    TRANSITIONS,
    Action,
    FsmEvent,
    State,
    Transition,
    transition,
)
from pybgp.session.timers import Timer
from pybgp.wire.constants import IPV4_UNICAST, MARKER, MessageType
from pybgp.wire.header import frame
from pybgp.wire.keepalive import KEEPALIVE_MESSAGE
from tests.pybgp.test_connection import (
    A_CFG,
    AS_PATH_B,
    GOOD_UPDATE,
    NEXT_HOP,
    attr,
    notification_bytes,
    peer_open,
    update,
)

A, S, E = Action, State, FsmEvent
SENDS = {
    A.SEND_OPEN,
    A.SEND_KEEPALIVE,
    A.SEND_NOTIFICATION,
    A.SEND_FSM_ERROR,
    A.SEND_HOLD_TIMER_EXPIRED,
    A.SEND_SEND_HOLD_TIMER_EXPIRED,
}
NOTIFYING = SENDS - {A.SEND_OPEN, A.SEND_KEEPALIVE}
TCP_UP = (S.OPEN_SENT, S.OPEN_CONFIRM, S.ESTABLISHED)


# -- the table ---------------------------------------------------------------------------------


def test_every_state_event_pair_has_an_entry() -> None:
    assert set(TRANSITIONS) == {(s, e) for s in State for e in FsmEvent}
    assert all(OTHER in TABLE[state] for state in State)
    assert all(isinstance(t, Transition) for t in TRANSITIONS.values())


def test_rows_name_only_known_events() -> None:
    for rows in TABLE.values():
        assert set(rows) <= {*FsmEvent, OTHER}


@pytest.mark.parametrize("event", [E.NOTIF_MSG, E.NOTIF_MSG_VER_ERR])
def test_a_notification_is_never_answered(event: FsmEvent) -> None:
    for state in State:
        assert not set(transition(state, event).actions) & SENDS, state


def test_unexpected_events_are_fsm_errors_in_session_states_and_ignored_in_idle() -> None:
    for state in TCP_UP:
        assert TABLE[state][OTHER] == transition(state, E.IDLE_HOLD_TIMER_EXPIRES)
        assert TABLE[state][OTHER].actions[0] is A.SEND_FSM_ERROR
        assert TABLE[state][OTHER].next_state is S.IDLE
    assert TABLE[S.IDLE][OTHER] == Transition((), S.IDLE)
    for event in (E.BGP_OPEN, E.KEEPALIVE_MSG, E.UPDATE_MSG, E.HOLD_TIMER_EXPIRES, E.NOTIF_MSG):
        assert transition(S.IDLE, event) == Transition((), S.IDLE)


def test_established_only_from_openconfirm_on_keepalive() -> None:
    into = {(s, e) for (s, e), t in TRANSITIONS.items() if t.next_state is S.ESTABLISHED}
    assert {(s, e) for s, e in into if s is not S.ESTABLISHED} == {
        (S.OPEN_CONFIRM, E.KEEPALIVE_MSG)
    }
    into = {(s, e) for (s, e), t in TRANSITIONS.items() if t.next_state is S.OPEN_CONFIRM}
    assert {(s, e) for s, e in into if s is not S.OPEN_CONFIRM} == {(S.OPEN_SENT, E.BGP_OPEN)}


def test_leaving_a_session_closes_it_after_any_notification() -> None:
    for (state, event), (actions, next_state) in TRANSITIONS.items():
        if state in TCP_UP and next_state is S.IDLE:
            assert A.DROP_TCP in actions and A.RELEASE_RESOURCES in actions, (state, event)
            notes = [i for i, a in enumerate(actions) if a in NOTIFYING]
            assert all(i < actions.index(A.DROP_TCP) for i in notes), (state, event)
            assert len(notes) <= 1


def test_only_failures_restart_automatically() -> None:
    for (state, event), (actions, _) in TRANSITIONS.items():
        if event in (E.MANUAL_STOP, E.OPEN_COLLISION_DUMP):
            assert A.START_IDLE_HOLD_TIMER not in actions, (state, event)
    failures = (E.HOLD_TIMER_EXPIRES, E.TCP_CONNECTION_FAILS, E.NOTIF_MSG, E.UPDATE_MSG_ERR)
    for event in failures:
        assert A.START_IDLE_HOLD_TIMER in transition(S.ESTABLISHED, event).actions


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [
        (
            S.IDLE,
            E.MANUAL_START,
            Transition(
                (
                    A.STOP_IDLE_HOLD_TIMER,
                    A.INITIALIZE_RESOURCES,
                    A.RESET_CONNECT_RETRY_COUNTER,
                    A.START_CONNECT_RETRY_TIMER,
                    A.INITIATE_TCP,
                ),
                S.CONNECT,
            ),
        ),
        (
            S.CONNECT,
            E.TCP_CR_ACKED,
            Transition(
                (A.STOP_CONNECT_RETRY_TIMER, A.SEND_OPEN, A.START_LARGE_HOLD_TIMER), S.OPEN_SENT
            ),
        ),
        (
            S.OPEN_SENT,
            E.BGP_OPEN,
            Transition(
                (
                    A.STOP_CONNECT_RETRY_TIMER,
                    A.ACCEPT_OPEN,
                    A.SEND_KEEPALIVE,
                    A.START_KEEPALIVE_TIMER,
                    A.START_HOLD_TIMER,
                ),
                S.OPEN_CONFIRM,
            ),
        ),
        (S.OPEN_CONFIRM, E.KEEPALIVE_MSG, Transition((A.START_HOLD_TIMER,), S.ESTABLISHED)),
        # Connection._update_fast inlines exactly this row.
        (
            S.ESTABLISHED,
            E.UPDATE_MSG,
            Transition((A.PROCESS_UPDATE, A.START_HOLD_TIMER), S.ESTABLISHED),
        ),
        (
            S.ESTABLISHED,
            E.HOLD_TIMER_EXPIRES,
            Transition(
                (
                    A.SEND_HOLD_TIMER_EXPIRED,
                    A.STOP_CONNECT_RETRY_TIMER,
                    A.RELEASE_RESOURCES,
                    A.DROP_TCP,
                    A.INCREMENT_CONNECT_RETRY_COUNTER,
                    A.START_IDLE_HOLD_TIMER,
                ),
                S.IDLE,
            ),
        ),
        (S.IDLE, E.IDLE_HOLD_TIMER_EXPIRES, Transition((A.GENERATE_AUTOMATIC_START,), S.IDLE)),
        (S.IDLE, E.MANUAL_STOP, Transition((A.STOP_IDLE_HOLD_TIMER,), S.IDLE)),
    ],
)
def test_rfc_rows(state: State, event: FsmEvent, expected: Transition) -> None:
    assert transition(state, event) == expected


class TableMachine(RuleBasedStateMachine):
    """Any event in any state: a lookup always succeeds, and Established is reached only
    after our OPEN and KEEPALIVE went out and the peer's OPEN and KEEPALIVE came in."""

    def __init__(self) -> None:
        super().__init__()
        self.state = S.IDLE
        self.seen: set[str] = set()

    @rule(event=st.sampled_from(FsmEvent))
    def fire(self, event: FsmEvent) -> None:
        actions, next_state = transition(self.state, event)
        if A.INITIALIZE_RESOURCES in actions or A.RELEASE_RESOURCES in actions:
            self.seen = set()
        self.seen |= {"open out"} if A.SEND_OPEN in actions else set()
        self.seen |= {"keepalive out"} if A.SEND_KEEPALIVE in actions else set()
        self.seen |= {"open in"} if A.ACCEPT_OPEN in actions else set()
        if next_state is S.ESTABLISHED and self.state is not S.ESTABLISHED:
            assert event is E.KEEPALIVE_MSG
            assert self.seen == {"open out", "keepalive out", "open in"}
        if event in (E.NOTIF_MSG, E.NOTIF_MSG_VER_ERR):
            assert not set(actions) & SENDS
        self.state = next_state


TestTableMachine = TableMachine.TestCase
TestTableMachine.settings = settings(max_examples=1000, stateful_step_count=30, deadline=None)


# -- the same, through a real Connection --------------------------------------------------------

CFG = attrs.evolve(A_CFG, hold_time=9, connect_retry_time=5, restart_after=7.0)
INPUTS = {
    "open": peer_open(),
    "open, bad peer AS": peer_open(asn=65009),
    "keepalive": KEEPALIVE_MESSAGE,
    "update": GOOD_UPDATE,
    "update, treat-as-withdraw": update(attr(0x40, 1, b"\x03") + AS_PATH_B + NEXT_HOP),
    "update, reset": GOOD_UPDATE[:21] + b"\x00\x50" + GOOD_UPDATE[23:],
    "notification": notification_bytes(6, 2),
    "notification, version": notification_bytes(2, 1, b"\x00\x04"),
    "notification, malformed": MARKER + b"\x00\x14\x03\x06",
    "route refresh": frame(MessageType.ROUTE_REFRESH, b"\x00\x01\x00\x01"),
    "route refresh, bad BoRR": frame(MessageType.ROUTE_REFRESH, b"\x00\x01\x01\x01\x00"),
    "bad marker": b"\x00" * 19,
    "bad type": MARKER + b"\x00\x13\x09",
    "half a keepalive": KEEPALIVE_MESSAGE[:7],
}


def message_types(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        out.append(data[pos + 18])
        pos += int.from_bytes(data[pos + 16 : pos + 18], "big")
    return out


class ConnectionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.conn = Connection(CFG, self.now)
        self.state = S.IDLE
        self.since_tcp: set[str] = set()
        self.last_events: list[Event] = []
        self.answered_a_notification = False

    def apply(self, events: list[Event], notification_in: bool = False) -> None:
        """Check what one call did: events chain, NOTIFICATIONs, what went out."""
        out = message_types(self.conn.data_to_send())
        self.since_tcp |= {f"{MessageType(t).name} out" for t in out}
        if notification_in:
            assert MessageType.NOTIFICATION not in out
            assert not any(isinstance(e, NotificationSent) for e in events)
        for event in events:
            if isinstance(event, StateChanged):
                assert event.old is self.state
                self.state = event.new
                hypothesis.event(f"entered {event.new.value}")
            if isinstance(event, Established):
                assert {"OPEN out", "KEEPALIVE out", "OPEN in", "KEEPALIVE in"} <= self.since_tcp
        downs = [e for e in events if isinstance(e, SessionDown)]
        went_idle = [e for e in events if isinstance(e, StateChanged) and e.new is S.IDLE]
        assert len(downs) == len(went_idle)
        assert self.state is self.conn.state

    @initialize(where=st.sampled_from(State))
    def begin_in(self, where: State) -> None:
        """Reach `where` the ordinary way, so that every state meets every input."""
        if where is S.IDLE:
            return
        self.start(passive=where is S.ACTIVE)
        if where in TCP_UP:
            self.connection_made()
        if where in (S.OPEN_CONFIRM, S.ESTABLISHED):
            self.receive_open()
        if where is S.ESTABLISHED:
            self.receive_keepalive()
        assert self.conn.state is where

    @rule(passive=st.booleans())
    def start(self, passive: bool) -> None:
        self.apply(self.conn.start(self.now, passive=passive))

    @rule()
    def stop(self) -> None:
        self.apply(self.conn.stop(self.now))

    @rule()
    def connection_made(self) -> None:
        if self.conn.state in (S.CONNECT, S.ACTIVE):  # elsewhere it is another connection's
            self.since_tcp = set()
        self.apply(self.conn.connection_made(self.now))

    @rule()
    def connection_lost(self) -> None:
        self.apply(self.conn.connection_lost(self.now))

    @rule(name=st.sampled_from(sorted(INPUTS)))
    def receive(self, name: str) -> None:
        # After part of a message, the next bytes are a desynchronised stream: not a message.
        aligned = not self.conn._inbuf
        if aligned and self.conn.state in TCP_UP and name in ("open", "keepalive"):
            self.since_tcp.add(f"{name.upper()} in")
        events = self.conn.receive_data(INPUTS[name], self.now)
        self.apply(events, notification_in=aligned and name.startswith("notification"))

    @rule()
    def receive_open(self) -> None:
        self.receive("open")  # the handshake gets rules of its own, so runs reach Established

    @rule()
    def receive_keepalive(self) -> None:
        self.receive("keepalive")

    @rule(data=st.binary(max_size=64))
    def receive_anything(self, data: bytes) -> None:
        data = data.replace(b"\xff", b"\xfe")  # no marker: never a valid message by chance
        self.apply(self.conn.receive_data(data, self.now))  # never an untyped exception

    @rule(seconds=st.floats(min_value=0, max_value=20, allow_nan=False))
    def wait(self, seconds: float) -> None:
        self.now += seconds
        self.apply(self.conn.handle_timer(self.now))
        deadline = self.conn.next_deadline()
        assert deadline is None or deadline > self.now

    @precondition(lambda self: self.conn.next_deadline() is not None)
    @rule()
    def until_next_deadline(self) -> None:
        deadline = self.conn.next_deadline()
        assert deadline is not None and deadline >= self.now
        self.now = deadline
        self.apply(self.conn.handle_timer(self.now))
        later = self.conn.next_deadline()
        assert later is None or later > self.now

    @rule()
    def transport_wrote(self) -> None:
        self.conn.data_sent(self.now)

    @rule()
    def collision_dump(self) -> None:
        self.apply(self.conn.collision_dump(self.now))

    @rule()
    def prefix_limit(self) -> None:
        self.apply(self.conn.prefix_limit_exceeded(IPV4_UNICAST, 10, self.now))

    @rule()
    def send_update(self) -> None:
        try:
            self.conn.send_update(GOOD_UPDATE, self.now)
        except LocalProtocolError:
            assert self.conn.state is not S.ESTABLISHED
        self.apply([])

    @invariant()
    def timers_match_the_state(self) -> None:
        running = {t for t in Timer if self.conn._timers.running(t)}
        state = self.conn.state
        if state is S.IDLE:
            assert running <= {Timer.IDLE_HOLD}
        else:
            assert Timer.IDLE_HOLD not in running
        if state is S.CONNECT:
            assert Timer.CONNECT_RETRY in running
        if state is S.ACTIVE:
            assert Timer.CONNECT_RETRY not in running  # passive: never dials out
        if state in TCP_UP:
            assert Timer.HOLD in running and Timer.CONNECT_RETRY not in running
        if state in (S.OPEN_CONFIRM, S.ESTABLISHED):
            assert Timer.KEEPALIVE in running  # the negotiated hold time is 9, keepalive 3


TestConnectionMachine = ConnectionMachine.TestCase
TestConnectionMachine.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
