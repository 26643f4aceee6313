"""The sans-IO session (pybgp.session.connection): two Connections wired back to back in memory, time
advanced by hand, every deadline asserted exactly (RFC 4271 §4.4, §6, §8; RFC 9687; RFC 4486;
RFC 6286; RFC 7606; RFC 9234)."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from pybgp.session.connection import (
    Connection,
    Established,
    Event,
    Initiator,
    LocalProtocolError,
    NotificationReceived,
    NotificationSent,
    RouteRefreshReceived,
    SessionConfig,
    SessionDown,
    State,
    StateChanged,
    TcpCloseRequested,
    TcpConnectRequested,
    UpdateReceived,
    collision_winner,
)
from pybgp.wire.capabilities import (
    AddPathMode,
    BGPRole,
    Capability,
    ExtendedMessage,
    FourOctetAS,
    Multiprotocol,
    Role,
    RouteRefresh,
    UnknownCapability,
)
from pybgp.wire.constants import AS_TRANS, IPV4_UNICAST, IPV6_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import Action
from pybgp.wire.header import frame
from pybgp.wire.keepalive import KEEPALIVE_MESSAGE
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from pybgp.wire.route_refresh import RouteRefresh as RouteRefreshMessage

CTX = CodecContext()
A_CFG = SessionConfig(
    local_asn=65001,
    router_id="10.0.0.1",
    peer_asn=65002,
    connect_retry_time=10,
    idle_hold_time=1,
    idle_hold_max=8,
    idle_hold_reset=60,
)
B_CFG = attrs.evolve(A_CFG, local_asn=65002, router_id="10.0.0.2", peer_asn=65001)


# -- helpers ---------------------------------------------------------------------------------


def notification_bytes(code: int, subcode: int, data: bytes = b"") -> bytes:
    return Notification(code=code, subcode=subcode, data=data).encode(CTX)


def sent(events: list[Event]) -> list[tuple[int, int, bytes]]:
    return [
        (e.notification.code, e.notification.subcode, e.notification.data)
        for e in events
        if isinstance(e, NotificationSent)
    ]


def states(events: list[Event]) -> list[State]:
    return [e.new for e in events if isinstance(e, StateChanged)]


def down(events: list[Event]) -> SessionDown:
    (event,) = [e for e in events if isinstance(e, SessionDown)]
    return event


def attr(flags: int, code: int, value: bytes) -> bytes:
    return bytes((flags, code, len(value))) + value


def update(attributes: bytes, nlri: bytes = bytes((24, 10, 0, 1))) -> bytes:
    body = b"\0\0" + len(attributes).to_bytes(2, "big") + attributes + nlri
    return frame(2, body)


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH_B = attr(0x40, 2, b"\x02\x01" + (65002).to_bytes(4, "big"))  # from B, first AS 65002
NEXT_HOP = attr(0x40, 3, bytes((192, 0, 2, 1)))
GOOD_UPDATE = update(ORIGIN + AS_PATH_B + NEXT_HOP)


class Link:
    """Two speakers A and B on one TCP connection. A connects, B listens. Bytes move only in
    pump(); a side in `not_reading` takes nothing, so the other side's writes never finish."""

    def __init__(self, a: SessionConfig = A_CFG, b: SessionConfig = B_CFG, now: float = 0.0):
        self.now = now
        self.a, self.b = Connection(a, now), Connection(b, now)
        self.log: dict[str, list[Event]] = {"a": [], "b": []}
        self.not_reading: set[str] = set()

    def side(self, name: str) -> Connection:
        return self.a if name == "a" else self.b

    def record(self, name: str, events: list[Event]) -> list[Event]:
        self.log[name] += events
        return events

    def establish(self) -> None:
        self.record("a", self.a.start(self.now))
        self.record("b", self.b.start(self.now, passive=True))
        self.record("a", self.a.connection_made(self.now))
        self.record("b", self.b.connection_made(self.now))
        self.pump()
        assert self.a.state is State.ESTABLISHED and self.b.state is State.ESTABLISHED

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for src, dst in (("a", "b"), ("b", "a")):
                if dst in self.not_reading:
                    continue
                data = self.side(src).data_to_send()
                self.side(src).data_sent(self.now)
                if data:
                    self.record(dst, self.side(dst).receive_data(data, self.now))
                    moved = True

    def deadline(self) -> float | None:
        deadlines = [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d is not None]
        return min(deadlines, default=None)

    def advance(self, until: float) -> None:
        """Run every timer of both sides, in time order, up to and including `until`."""
        while (deadline := self.deadline()) is not None and deadline <= until:
            self.now = deadline
            for name in ("a", "b"):
                self.record(name, self.side(name).handle_timer(self.now))
            self.pump()
        self.now = until


def open_sent(config: SessionConfig = A_CFG, now: float = 0.0) -> Connection:
    conn = Connection(config, now)
    conn.start(now)
    conn.connection_made(now)
    conn.data_to_send()
    conn.data_sent(now)
    assert conn.state is State.OPEN_SENT
    return conn


def peer_open(
    asn: int = 65002,
    bgp_id: str = "10.0.0.2",
    hold_time: int = 90,
    caps: tuple[Capability, ...] | None = None,
    my_as: int | None = None,
) -> bytes:
    if caps is None:
        caps = (Multiprotocol(family=IPV4_UNICAST), RouteRefresh(), FourOctetAS(asn=asn))
    my = my_as if my_as is not None else (asn if asn <= 0xFFFF else AS_TRANS)
    message = Open(my_as=my, hold_time=hold_time, bgp_id=bgp_id, parameters=(caps,))
    return message.encode(CTX)


def open_confirm(config: SessionConfig = A_CFG) -> Connection:
    conn = open_sent(config)
    conn.receive_data(peer_open(), 0.0)
    assert conn.state is State.OPEN_CONFIRM
    assert conn.data_to_send() == KEEPALIVE_MESSAGE
    conn.data_sent(0.0)
    return conn


# -- establishing ----------------------------------------------------------------------------


def test_session_establishes() -> None:
    link = Link()
    link.establish()
    assert states(link.log["a"]) == [
        State.CONNECT,
        State.OPEN_SENT,
        State.OPEN_CONFIRM,
        State.ESTABLISHED,
    ]
    assert states(link.log["b"]) == [
        State.ACTIVE,
        State.OPEN_SENT,
        State.OPEN_CONFIRM,
        State.ESTABLISHED,
    ]
    assert isinstance(link.log["a"][0], TcpConnectRequested)
    assert link.a.outgoing is True and link.b.outgoing is False
    (est,) = [e for e in link.log["a"] if isinstance(e, Established)]
    n = est.negotiated
    assert n.families == (IPV4_UNICAST,)
    assert n.context == CodecContext(asn4=True, ibgp=False, peer_asn=65002)
    assert (n.hold_time, n.keepalive_time, n.send_hold_time) == (90, 30, 480.0)
    assert n.route_refresh and n.peer_bgp_id == "10.0.0.2" and n.peer_asn == 65002
    assert link.a.negotiated is n and link.a.peer_open == n.peer_open


def test_established_needs_open_and_keepalive_both_ways() -> None:
    a = open_sent()
    events = a.receive_data(peer_open(), 1.0)
    assert a.state is State.OPEN_CONFIRM and states(events) == [State.OPEN_CONFIRM]
    assert a.data_to_send() == KEEPALIVE_MESSAGE
    events = a.receive_data(KEEPALIVE_MESSAGE, 2.0)
    assert states(events) == [State.ESTABLISHED]


def test_open_and_keepalive_in_one_segment() -> None:
    a = open_sent()
    events = a.receive_data(peer_open() + KEEPALIVE_MESSAGE + GOOD_UPDATE, 1.0)
    assert states(events) == [State.OPEN_CONFIRM, State.ESTABLISHED]
    assert isinstance(events[-1], UpdateReceived)


def test_passive_peer_never_connects() -> None:
    b = Connection(attrs.evolve(B_CFG, passive=True), 0.0)
    assert b.start(0.0) == [StateChanged(old=State.IDLE, new=State.ACTIVE)]
    assert b.next_deadline() is None  # no ConnectRetryTimer that would dial out


def test_connect_retry_timer() -> None:
    a = Connection(A_CFG, 0.0)
    a.start(0.0)
    assert a.next_deadline() == 10.0
    assert a.handle_timer(9.999) == []
    assert a.handle_timer(10.0) == [TcpCloseRequested(), TcpConnectRequested()]
    assert a.state is State.CONNECT and a.next_deadline() == 20.0


# -- hold time and keepalives (RFC 4271 §4.2, §4.4, §10) --------------------------------------


def test_hold_time_is_the_smaller_one_and_keepalive_a_third() -> None:
    link = Link(b=attrs.evolve(B_CFG, hold_time=30))
    link.now = 5.0
    link.establish()
    for side in (link.a, link.b):
        assert side.negotiated is not None
        assert (side.negotiated.hold_time, side.negotiated.keepalive_time) == (30, 10)
        assert side.next_deadline() == 15.0  # keepalive; hold timer at 35
    link.advance(14.999)
    assert link.a.data_to_send() == b""
    link.not_reading = {"b"}  # look at what A sends at 15
    link.advance(15.0)
    assert link.a.data_to_send() == KEEPALIVE_MESSAGE
    assert link.a.next_deadline() == 25.0


def test_keepalives_every_interval_keep_the_session_up() -> None:
    link = Link()
    link.establish()
    link.advance(1000.0)
    assert link.a.state is State.ESTABLISHED and link.b.state is State.ESTABLISHED
    assert link.a.next_deadline() == 1020.0  # keepalives at 30, 60, ... 990, 1020


def test_hold_time_zero_means_no_keepalives_and_no_hold_timer() -> None:
    link = Link(a=attrs.evolve(A_CFG, hold_time=0))
    link.establish()
    for side in (link.a, link.b):
        assert side.negotiated is not None and side.negotiated.hold_time == 0
        assert side.negotiated.keepalive_time == 0
        assert side.next_deadline() is None
    link.advance(100_000.0)
    assert link.a.state is State.ESTABLISHED and link.a.data_to_send() == b""


def test_hold_timer_expires_exactly_hold_time_after_the_last_message() -> None:
    link = Link()
    link.establish()  # at 0
    link.not_reading = {"a"}  # A hears nothing more from B
    link.advance(50.0)
    link.record("a", link.a.receive_data(KEEPALIVE_MESSAGE, 50.0))  # restarts A's hold timer
    link.not_reading = {"a", "b"}
    link.advance(139.999)
    assert link.a.state is State.ESTABLISHED
    events = link.a.handle_timer(140.0)
    assert sent(events) == [(4, 0, b"")]
    assert link.a.data_to_send().endswith(notification_bytes(4, 0))
    assert [type(e) for e in events] == [
        NotificationSent,
        TcpCloseRequested,
        StateChanged,
        SessionDown,
    ]
    assert down(events) == SessionDown(
        reason="hold timer expired", notification=Notification(code=4, subcode=0)
    )


def test_any_message_restarts_the_hold_timer() -> None:
    a = open_confirm()
    a.receive_data(KEEPALIVE_MESSAGE, 10.0)
    assert a.next_deadline() == 30.0  # keepalive 0 + 30; hold 10 + 90
    a.receive_data(GOOD_UPDATE, 20.0)
    a.handle_timer(30.0)
    a.receive_data(KEEPALIVE_MESSAGE, 70.0)
    a.handle_timer(90.0)
    a.handle_timer(120.0)
    a.handle_timer(150.0)
    assert a.state is State.ESTABLISHED
    assert sent(a.handle_timer(160.0)) == [(4, 0, b"")]  # 70 + 90


def test_hold_timer_in_opensent_is_four_minutes() -> None:
    a = open_sent(now=3.0)
    assert a.next_deadline() == 243.0
    assert sent(a.handle_timer(243.0)) == [(4, 0, b"")]


def test_sending_an_update_restarts_the_keepalive_timer() -> None:
    link = Link()
    link.establish()
    link.advance(20.0)
    link.a.send_update(
        GOOD_UPDATE.replace((65002).to_bytes(4, "big"), (65001).to_bytes(4, "big")), 20.0
    )
    assert link.a.next_deadline() == 50.0  # keepalive 20 + 30; hold timer at 90
    link.pump()
    assert isinstance(link.log["b"][-1], UpdateReceived)
    link.not_reading = {"b"}
    link.advance(49.999)
    assert link.a.data_to_send() == b""  # no keepalive at 30: the UPDATE at 20 counts
    link.advance(50.0)
    assert link.a.data_to_send() == KEEPALIVE_MESSAGE


def test_send_hold_timer_fires_when_the_peer_stops_reading() -> None:
    link = Link()
    link.establish()  # at 0
    a = link.a  # from now on B sends KEEPALIVEs but reads nothing: A's writes never finish
    assert a.negotiated is not None and a.negotiated.send_hold_time == 480.0
    for t in range(30, 510, 30):
        a.handle_timer(float(t))  # A queues a KEEPALIVE; the first waits from 30
        a.receive_data(KEEPALIVE_MESSAGE, float(t))
    assert a.data_to_send() == KEEPALIVE_MESSAGE * 16
    assert a.next_deadline() == 510.0
    assert a.handle_timer(509.999) == [] and a.state is State.ESTABLISHED
    events = a.handle_timer(510.0)
    assert sent(events) == [(8, 0, b"")]
    assert down(events).reason == "send hold timer expired: the peer is not reading"
    assert states(events) == [State.IDLE]


def test_send_hold_timer_restarts_on_progress() -> None:
    link = Link()
    link.establish()
    a = link.a
    a.handle_timer(30.0)
    a.receive_data(KEEPALIVE_MESSAGE, 30.0)
    a.data_to_send()  # handed to the transport at 30 ...
    a.handle_timer(60.0)
    a.receive_data(KEEPALIVE_MESSAGE, 60.0)
    a.data_sent(75.0)  # ... which finished writing it at 75; the keepalive of 60 still waits
    assert a.next_deadline() == 90.0  # keepalive; SendHoldTimer at 75 + 480
    for t in range(90, 555, 30):
        a.handle_timer(float(t))
        a.receive_data(KEEPALIVE_MESSAGE, float(t))
    assert a.handle_timer(554.999) == []
    assert sent(a.handle_timer(555.0)) == [(8, 0, b"")]


def test_send_hold_timer_stops_when_data_is_written() -> None:
    link = Link(a=attrs.evolve(A_CFG, send_hold_time=5.0))
    link.establish()
    link.advance(30.0)
    assert link.a.next_deadline() == 60.0  # the keepalive was written: no SendHoldTimer


# -- OPEN errors (RFC 4271 §6.2, RFC 6286, RFC 6793, RFC 5492, RFC 9234) -------------------------

ROLE_A = attrs.evolve(A_CFG, role=Role.PROVIDER)
FOUR = FourOctetAS


def version(n: int) -> bytes:
    raw = bytearray(peer_open())
    raw[19] = n
    return bytes(raw)


OPEN_ERRORS = [
    ("version 3", A_CFG, version(3), (2, 1, b"\x00\x04")),
    ("wrong peer AS", A_CFG, peer_open(asn=65003), (2, 2, b"")),
    ("AS 0", A_CFG, peer_open(my_as=0, caps=(Multiprotocol(family=IPV4_UNICAST),)), (2, 2, b"")),
    (
        "AS_TRANS without 4-octet AS",
        A_CFG,
        peer_open(my_as=AS_TRANS, caps=(Multiprotocol(family=IPV4_UNICAST),)),
        (2, 2, b""),
    ),
    (
        "AS_TRANS in the capability",
        attrs.evolve(A_CFG, peer_asn=AS_TRANS),
        peer_open(asn=AS_TRANS),
        (2, 2, b""),
    ),
    (
        "My AS disagrees with the 4-octet AS",
        A_CFG,
        peer_open(my_as=65009, caps=(FOUR(asn=65002),)),
        (2, 2, b""),
    ),
    (
        "4-octet AS without AS_TRANS in My AS",
        attrs.evolve(A_CFG, peer_asn=4_200_000_000),
        peer_open(asn=4_200_000_000, my_as=65002),
        (2, 2, b""),
    ),
    ("hold time 1", A_CFG, peer_open(hold_time=1), (2, 6, b"")),
    ("hold time 2", A_CFG, peer_open(hold_time=2), (2, 6, b"")),
    ("BGP ID 0", A_CFG, peer_open(bgp_id="0.0.0.0"), (2, 3, b"")),
    (
        "iBGP peer with our BGP ID",
        attrs.evolve(A_CFG, peer_asn=65001),
        peer_open(asn=65001, bgp_id="10.0.0.1"),
        (2, 3, b""),
    ),
    (
        "no family in common",
        attrs.evolve(A_CFG, families=(IPV6_UNICAST,)),
        peer_open(),
        (2, 7, bytes.fromhex("0104 0002 0001")),
    ),
    (
        "role mismatch",
        ROLE_A,
        peer_open(caps=(BGPRole(role=Role.PROVIDER), FOUR(asn=65002))),
        (2, 11, b""),
    ),
    (
        "strict role, none announced",
        attrs.evolve(ROLE_A, role_strict=True),
        peer_open(),
        (2, 11, b""),
    ),
    (
        "malformed capability",
        A_CFG,
        Open(
            my_as=65002,
            hold_time=90,
            bgp_id="10.0.0.2",
            parameters=((UnknownCapability(code=65, value=b"\0\xfd\xea"),),),  # 3-octet AS
        ).encode(CTX),
        (2, 0, b""),
    ),
    ("OPEN too short", A_CFG, frame(1, bytes(9)), (1, 2, (28).to_bytes(2, "big"))),
]


@pytest.mark.parametrize(
    ("config", "message", "expected"), [c[1:] for c in OPEN_ERRORS], ids=[c[0] for c in OPEN_ERRORS]
)
def test_open_errors(
    config: SessionConfig, message: bytes, expected: tuple[int, int, bytes]
) -> None:
    a = open_sent(config)
    events = a.receive_data(message, 1.0)
    assert sent(events) == [expected]
    assert a.data_to_send() == notification_bytes(*expected)  # queued before it is reported
    assert events[-2:] == [StateChanged(old=State.OPEN_SENT, new=State.IDLE), down(events)]
    assert a.state is State.IDLE and a.connect_retry_counter == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (A_CFG, peer_open(bgp_id="10.0.0.1")),  # equal BGP IDs between ASes (RFC 6286 §2.2)
        (ROLE_A, peer_open(caps=(BGPRole(role=Role.CUSTOMER), FOUR(asn=65002)))),
        (ROLE_A, peer_open()),  # not strict: a peer without a role is accepted
        (A_CFG, peer_open(caps=(), my_as=65002)),  # no capabilities: IPv4 unicast, 2-octet AS
        (
            attrs.evolve(A_CFG, peer_asn=4_200_000_000),
            peer_open(asn=4_200_000_000),  # AS_TRANS in My AS, the AS in the capability
        ),
    ],
)
def test_acceptable_opens(config: SessionConfig, message: bytes) -> None:
    a = open_sent(config)
    a.receive_data(message, 1.0)
    assert a.state is State.OPEN_CONFIRM


# -- capability negotiation into the codec context ---------------------------------------------


def test_negotiated_context() -> None:
    a_cfg = attrs.evolve(
        A_CFG,
        families=(IPV4_UNICAST, IPV6_UNICAST),
        extended_message=True,
        add_path={IPV4_UNICAST: AddPathMode.BOTH, IPV6_UNICAST: AddPathMode.RECEIVE},
        enhanced_route_refresh=True,
    )
    b_cfg = attrs.evolve(
        B_CFG,
        families=(IPV6_UNICAST, IPV4_UNICAST),
        extended_message=True,
        add_path={IPV4_UNICAST: AddPathMode.SEND, IPV6_UNICAST: AddPathMode.SEND},
    )
    link = Link(a_cfg, b_cfg)
    link.establish()
    assert link.a.negotiated is not None and link.b.negotiated is not None
    a, b = link.a.negotiated, link.b.negotiated
    assert a.families == (IPV4_UNICAST, IPV6_UNICAST)
    assert b.families == (IPV6_UNICAST, IPV4_UNICAST)
    assert a.context.addpath_rx == {IPV4_UNICAST, IPV6_UNICAST} and a.context.addpath_tx == set()
    assert b.context == attrs.evolve(a.context.reversed(), peer_asn=65001)
    assert b.context.addpath_tx == {IPV4_UNICAST, IPV6_UNICAST} and b.context.addpath_rx == set()
    assert a.context.extended_message and b.context.extended_message
    assert not a.enhanced_route_refresh  # only A announced it


def test_two_octet_peer_and_four_octet_local_as() -> None:
    a = open_sent(attrs.evolve(A_CFG, local_asn=4_200_000_000))
    assert a.local_open.my_as == AS_TRANS and a.local_open.asn == 4_200_000_000
    a.receive_data(peer_open(caps=(Multiprotocol(family=IPV4_UNICAST),), my_as=65002), 1.0)
    assert a.negotiated is not None and not a.negotiated.context.asn4


def test_ibgp_context() -> None:
    link = Link(attrs.evolve(A_CFG, peer_asn=65001), attrs.evolve(B_CFG, local_asn=65001))
    link.establish()
    assert link.a.negotiated is not None
    assert link.a.negotiated.context == CodecContext(ibgp=True, peer_asn=None)


def test_extended_message_needs_both() -> None:
    link = Link(attrs.evolve(A_CFG, extended_message=True))
    link.establish()
    assert link.a.negotiated is not None and not link.a.negotiated.context.extended_message
    assert ExtendedMessage() in link.a.local_open.capabilities


# -- UPDATE errors (RFC 7606) -------------------------------------------------------------------


def test_update_error_sends_its_notification() -> None:
    link = Link()
    link.establish()
    bad = update(ORIGIN + AS_PATH_B + NEXT_HOP)
    bad = bad[:21] + b"\x00\x50" + bad[23:]  # total path attribute length overruns: 3/1
    events = link.a.receive_data(bad, 1.0)
    assert sent(events) == [(3, 1, b"")]
    assert link.a.data_to_send() == notification_bytes(3, 1)
    assert link.a.state is State.IDLE


def test_afi_safi_disable_resets_the_session() -> None:
    link = Link()
    link.establish()
    bad_nh = attr(0x80, 14, b"\x00\x02\x01\x05" + bytes(5) + b"\x00")
    events = link.a.receive_data(update(ORIGIN + AS_PATH_B + bad_nh, nlri=b""), 1.0)
    assert sent(events) == [(3, 9, bad_nh)]  # RFC 4271 §6.3: the data is the attribute
    assert link.a.state is State.IDLE


def test_treat_as_withdraw_keeps_the_session() -> None:
    link = Link()
    link.establish()
    events = link.a.receive_data(update(attr(0x40, 1, b"\x03") + AS_PATH_B + NEXT_HOP), 1.0)
    (received,) = events
    assert isinstance(received, UpdateReceived) and received.update.problem is not None
    assert received.update.problem.action == Action.TREAT_AS_WITHDRAW
    assert received.update.withdrawn == (bytes((24, 10, 0, 1)),) and not received.update.nlri
    assert link.a.state is State.ESTABLISHED and link.a.data_to_send() == b""


def test_attribute_discard_keeps_the_session() -> None:
    link = Link()
    link.establish()
    bad_aggregator = attr(0xC0, 7, b"\0\1\2")
    (received,) = link.a.receive_data(update(ORIGIN + AS_PATH_B + NEXT_HOP + bad_aggregator), 1.0)
    assert isinstance(received, UpdateReceived) and received.update.problem is not None
    assert received.update.problem.action == Action.ATTRIBUTE_DISCARD
    assert received.update.nlri and received.update.attributes is not None
    assert 7 not in received.update.attributes
    assert link.a.state is State.ESTABLISHED and link.a.data_to_send() == b""


def test_messages_before_a_bad_header_are_processed() -> None:
    link = Link()
    link.establish()
    events = link.a.receive_data(GOOD_UPDATE + b"\x00" * 19, 1.0)
    assert isinstance(events[0], UpdateReceived)
    assert sent(events) == [(1, 1, b"")]


# -- NOTIFICATIONs (RFC 4271 §6.4) and FSM errors (RFC 6608) ------------------------------------


def established_a() -> Connection:
    link = Link()
    link.establish()
    link.a.data_to_send()
    return link.a


@pytest.mark.parametrize("state", [State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED])
def test_notification_is_never_answered(state: State) -> None:
    a = {State.OPEN_SENT: open_sent, State.OPEN_CONFIRM: open_confirm}.get(state, established_a)()
    cease = notification_bytes(6, 2, b"\x03bye")
    events = a.receive_data(cease, 5.0)
    assert events[0] == NotificationReceived(
        notification=Notification(code=6, subcode=2, data=b"\x03bye")
    )
    assert sent(events) == [] and a.data_to_send() == b""
    assert down(events).notification == Notification(code=6, subcode=2, data=b"\x03bye")
    assert a.state is State.IDLE


def test_malformed_notification_is_not_answered() -> None:
    a = established_a()
    short = b"\xff" * 16 + b"\x00\x14\x03\x06"  # a NOTIFICATION of 20 octets
    events = a.receive_data(short, 5.0)
    assert NotificationReceived(notification=None) in events
    assert sent(events) == [] and a.data_to_send() == b"" and a.state is State.IDLE


def test_version_notification_in_opensent_does_not_count() -> None:
    a = open_sent()
    a.receive_data(notification_bytes(2, 1, b"\x00\x03"), 1.0)
    assert a.state is State.IDLE and a.connect_retry_counter == 0


@pytest.mark.parametrize(
    ("make", "message", "subcode"),
    [
        (open_sent, KEEPALIVE_MESSAGE, 1),
        (open_sent, GOOD_UPDATE, 1),
        (open_confirm, GOOD_UPDATE, 2),
        (open_confirm, peer_open(), 2),
        (established_a, peer_open(), 3),
    ],
)
def test_unexpected_messages_are_fsm_errors(
    make: Callable[[], Connection], message: bytes, subcode: int
) -> None:
    a = make()
    assert sent(a.receive_data(message, 1.0)) == [(5, subcode, b"")]


# -- route refresh (RFC 2918, RFC 7313) -------------------------------------------------------


def test_route_refresh_round_trip() -> None:
    link = Link()
    link.establish()
    link.now = 1.0
    link.a.send_route_refresh(IPV4_UNICAST, 1.0)
    link.pump()
    assert link.log["b"][-1] == RouteRefreshReceived(
        message=RouteRefreshMessage(family=IPV4_UNICAST)
    )
    with pytest.raises(LocalProtocolError):
        link.a.send_route_refresh(IPV6_UNICAST, 1.0)  # not negotiated
    with pytest.raises(LocalProtocolError):
        link.a.send_route_refresh(IPV4_UNICAST, 1.0, subtype=1)  # no enhanced route refresh


def test_route_refresh_needs_the_capability() -> None:
    link = Link(attrs.evolve(A_CFG, route_refresh=False))
    link.establish()
    with pytest.raises(LocalProtocolError):
        link.b.send_route_refresh(IPV4_UNICAST, 1.0)


def test_send_update_needs_established() -> None:
    a = open_sent()
    with pytest.raises(LocalProtocolError):
        a.send_update(GOOD_UPDATE, 1.0)


def test_updates_queued_as_shared_pieces() -> None:
    """An UPDATE packed once for many peers is queued by reference (a slice of a buffer
    shared with other sessions), and the bytes are the same as when copied."""
    a = established_a()
    shared = GOOD_UPDATE * 3
    piece = memoryview(shared)[len(GOOD_UPDATE) :]
    a.send_update(piece, 1.0)
    a.send_update(GOOD_UPDATE, 1.0)
    chunks = a.chunks_to_send()
    assert chunks[0] is piece and chunks[1] is GOOD_UPDATE
    assert a.chunks_to_send() == [] and a.data_to_send() == b""
    a.send_update(piece, 2.0)
    assert a.data_to_send() == GOOD_UPDATE * 2


# -- connection collision (RFC 4271 §6.8, RFC 6286 §2.3) ---------------------------------------


def test_collision_winner_compares_unsigned_ids() -> None:
    assert collision_winner("10.0.0.1", "10.0.0.2") is Initiator.REMOTE
    assert collision_winner("10.0.0.2", "10.0.0.1") is Initiator.LOCAL
    assert collision_winner("128.0.0.1", "127.255.255.255") is Initiator.LOCAL  # not signed
    assert collision_winner("1.1.1.1", "1.1.1.1", 65002, 65001) is Initiator.LOCAL
    assert collision_winner("1.1.1.1", "1.1.1.1", 65001, 65002) is Initiator.REMOTE
    with pytest.raises(ValueError, match="no collision rule"):
        collision_winner("1.1.1.1", "1.1.1.1", 65001, 65001)


def test_collision_keeps_the_connection_of_the_higher_id() -> None:
    ab = Link()  # A connected to B
    ba = Link(B_CFG, A_CFG)  # B connected to A
    ab.record("a", ab.a.start(0.0))
    ba.record("a", ba.a.start(0.0))
    for link in (ab, ba):
        link.record("b", link.b.start(0.0, passive=True))
        link.record("a", link.a.connection_made(0.0))
        link.record("b", link.b.connection_made(0.0))
    ab.not_reading = ba.not_reading = {"a"}  # stop before the KEEPALIVEs reach the initiators
    ab.pump()
    ba.pump()
    # Speaker A holds ab.a (it opened) and ba.b; speaker B holds ba.a (it opened) and ab.b.
    a_out, a_in, b_out, b_in = ab.a, ba.b, ba.a, ab.b
    for out, inc, local_id, remote_id in (
        (a_out, a_in, "10.0.0.1", "10.0.0.2"),
        (b_out, b_in, "10.0.0.2", "10.0.0.1"),
    ):
        keep = collision_winner(local_id, remote_id)
        loser = inc if keep is Initiator.LOCAL else out
        assert sent(loser.collision_dump(1.0)) == [(6, 7, b"")]
    ab.not_reading = ba.not_reading = set()
    ab.now = ba.now = 1.0
    ab.pump()
    ba.pump()
    assert (a_out.state, b_in.state) == (State.IDLE, State.IDLE)  # B's ID is higher: B's wins
    assert (b_out.state, a_in.state) == (State.ESTABLISHED, State.ESTABLISHED)
    assert a_out.next_deadline() is None  # the loser does not restart on its own


# -- automatic restart: IdleHoldTimer back-off (RFC 4271 §8.1.1) --------------------------------


def fail_in_connect(a: Connection, now: float) -> None:
    assert a.state is State.CONNECT
    assert states(a.connection_lost(now)) == [State.IDLE]


def test_idle_hold_backoff_doubles_up_to_the_cap_and_resets() -> None:
    a = Connection(A_CFG, 0.0)
    a.start(0.0)
    now, waits = 0.0, []
    for _ in range(6):
        fail_in_connect(a, now)
        deadline = a.next_deadline()
        assert deadline is not None
        waits.append(deadline - now)
        now = deadline
        assert a.handle_timer(now)[0] == TcpConnectRequested()
    assert waits == [1, 2, 4, 8, 8, 8]
    # A session that stays up idle_hold_reset (60 s) clears the count.
    a.connection_made(now)
    a.receive_data(peer_open() + KEEPALIVE_MESSAGE, now)
    assert a.state is State.ESTABLISHED
    for t in range(30, 61, 30):
        a.handle_timer(now + t)
        a.receive_data(KEEPALIVE_MESSAGE, now + t)
    a.connection_lost(now + 60)
    assert a.next_deadline() == now + 61


def test_short_sessions_keep_backing_off() -> None:
    a = Connection(A_CFG, 0.0)
    a.start(0.0)
    fail_in_connect(a, 0.0)  # waits 1
    a.handle_timer(1.0)
    a.connection_made(1.0)
    a.receive_data(peer_open() + KEEPALIVE_MESSAGE, 1.0)
    a.connection_lost(2.0)  # up for 1 s only
    assert a.next_deadline() == 4.0  # waits 2


def test_passive_restart_stays_passive() -> None:
    b = Connection(B_CFG, 0.0)
    b.start(0.0, passive=True)
    b.connection_made(0.0)
    b.connection_lost(0.0)
    assert b.handle_timer(1.0) == [StateChanged(old=State.IDLE, new=State.ACTIVE)]


def test_manual_stop_sends_cease_and_does_not_restart() -> None:
    link = Link()
    link.establish()
    link.now = 1.0
    events = link.a.stop(1.0)
    assert sent(events) == [(6, 2, b"")]
    assert link.a.next_deadline() is None
    link.pump()
    assert link.b.state is State.IDLE and link.b.next_deadline() == 2.0  # B restarts after 1 s


def test_stop_in_idle_cancels_the_pending_restart() -> None:
    a = Connection(A_CFG, 0.0)
    a.start(0.0)
    fail_in_connect(a, 0.0)
    assert a.next_deadline() == 1.0
    assert a.stop(0.5) == []
    assert a.next_deadline() is None


# -- maximum prefixes (RFC 4486 §4) -------------------------------------------------------------


def test_max_prefix_cease_with_restart() -> None:
    link = Link(attrs.evolve(A_CFG, restart_after=30.0))
    link.establish()
    link.now = 5.0
    events = link.a.prefix_limit_exceeded(IPV4_UNICAST, 100, 5.0)
    assert sent(events) == [(6, 1, bytes.fromhex("0001 01 00000064"))]
    assert down(events).reason == "maximum prefixes reached: 100 for ipv4-unicast"
    link.pump()  # the Cease reaches B
    assert link.b.state is State.IDLE
    assert link.a.next_deadline() == 35.0
    assert link.a.handle_timer(35.0)[0] == TcpConnectRequested()


def test_max_prefix_without_restart_stays_down() -> None:
    link = Link()
    link.establish()
    link.a.prefix_limit_exceeded(IPV6_UNICAST, 7, 5.0)
    assert link.a.data_to_send() == notification_bytes(6, 1, bytes.fromhex("0002 01 00000007"))
    assert link.a.next_deadline() is None and link.a.state is State.IDLE
    assert states(link.a.start(6.0)) == [State.CONNECT]  # until started again by hand


# -- misuse ----------------------------------------------------------------------------------


def test_time_must_not_go_backwards() -> None:
    a = Connection(A_CFG, 10.0)
    with pytest.raises(ValueError, match="backwards"):
        a.start(9.0)
