"""The trio session driver's timers, exact under trio's MockClock: a peer that stops
talking is dropped with Hold Timer Expired exactly one hold time after its last message,
and keepalives go out every hold time / 3 meanwhile."""

from __future__ import annotations

import itertools

import trio
import trio.testing

from pybgp.net.session import Dial, PeerSession
from pybgp.session.config import SessionConfig
from pybgp.session.events import Established, Event, StateChanged
from pybgp.wire.capabilities import FourOctetAS, Multiprotocol
from pybgp.wire.constants import IPV4_UNICAST, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.keepalive import Keepalive
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open

HOLD = 9
CTX = CodecContext()
# A passive session of ours, AS 65000, and the OPEN its peer (AS 65001) sends.
CONFIG = SessionConfig(
    local_asn=65000,
    router_id="10.255.0.1",
    peer_asn=65001,
    hold_time=HOLD,
    passive=True,
    families=(IPV4_UNICAST,),
)
PEER_OPEN = Open.build(
    asn=65001,
    hold_time=HOLD,
    bgp_id="10.255.0.2",
    capabilities=(Multiprotocol(family=IPV4_UNICAST), FourOctetAS(asn=65001)),
)


async def read_messages(stream: trio.abc.Stream, buf: bytearray) -> list[tuple[int, bytes]]:
    while True:
        messages = split_messages(buf, CTX)
        if messages:
            return messages
        data = await stream.receive_some(65536)
        assert data, "the session closed the connection"
        buf += data


async def test_hold_timer_and_keepalives_exact(autojump_clock: trio.testing.MockClock) -> None:
    states: list[str] = []

    def on_event(_session: PeerSession, event: Event) -> None:
        if isinstance(event, StateChanged):
            states.append(event.new.value)

    session = PeerSession(CONFIG, Dial(address="10.0.0.2"), on_event)
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        session.accept(ours)
        await theirs.send_all(PEER_OPEN.encode(CTX) + Keepalive().encode(CTX))
        last_heard_from_peer = trio.current_time()
        buf = bytearray()
        keepalives: list[float] = []
        while True:
            for msg_type, body in await read_messages(theirs, buf):
                if msg_type == MessageType.KEEPALIVE:
                    keepalives.append(trio.current_time())
                if msg_type == MessageType.NOTIFICATION:
                    notification = Notification.decode(body, CTX)
                    dropped_at = trio.current_time()
                    break
            else:
                continue
            break
        nursery.cancel_scope.cancel()
    assert "Established" in states
    assert (notification.code, notification.subcode) == (4, 0)  # Hold Timer Expired
    assert dropped_at - last_heard_from_peer == HOLD
    # Our keepalives after the OPEN exchange come every HOLD / 3 seconds, exactly.
    gaps = [b - a for a, b in itertools.pairwise(keepalives)]
    assert len(gaps) >= 1 and all(gap == HOLD // 3 for gap in gaps), keepalives


async def test_established_and_notification_in_one_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The peer's KEEPALIVE and a NOTIFICATION arrive in one segment: by the time the
    Established event is handled the session is down again, and sending our table then
    must not crash the session (it happened with FRR abandoning a collided connection)."""
    states: list[str] = []
    end_of_rib = bytes.fromhex("ff" * 16 + "0017" + "02" + "0000" + "0000")

    def on_event(session: PeerSession, event: Event) -> None:
        if isinstance(event, StateChanged):
            states.append(event.new.value)
        if isinstance(event, Established):
            session.send([end_of_rib])

    session = PeerSession(CONFIG, Dial(address="10.0.0.2"), on_event)
    ours, theirs = trio.testing.memory_stream_pair()
    cease = Notification(code=6, subcode=7, data=b"")  # Connection Collision Resolution
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        session.accept(ours)
        await theirs.send_all(PEER_OPEN.encode(CTX) + Keepalive().encode(CTX) + cease.encode(CTX))
        with trio.move_on_after(HOLD):
            while states[-1:] != ["Idle"] or "Established" not in states:
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert "Established" in states and states[-1] in ("Idle", "Active", "Connect"), states


async def test_an_error_of_ours_resets_only_that_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The owner's handler raising (a bug of ours) must not end the session's task or the
    daemon: the peer gets Cease / Out of Resources and the session starts again."""
    states: list[str] = []

    def on_event(_session: PeerSession, event: Event) -> None:
        if isinstance(event, StateChanged):
            states.append(event.new.value)
        if isinstance(event, Established):
            raise RuntimeError("a bug in the owner")

    session = PeerSession(CONFIG, Dial(address="10.0.0.2"), on_event)
    ours, theirs = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        session.accept(ours)
        await theirs.send_all(PEER_OPEN.encode(CTX) + Keepalive().encode(CTX))
        buf = bytearray()
        notification = None
        while notification is None:
            for msg_type, body in await read_messages(theirs, buf):
                if msg_type == MessageType.NOTIFICATION:
                    notification = Notification.decode(body, CTX)
        nursery.cancel_scope.cancel()
    assert (notification.code, notification.subcode) == (6, 8)
    assert "Established" in states and states[-1] != "Established"
    assert "internal error" in session.last_error


async def test_one_writer_when_the_session_ends_mid_write(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A write is under way (the peer reads slowly) when the peer's bad message makes us
    close with a NOTIFICATION: the NOTIFICATION goes out after what was being written, from
    the same writer, and the connection then closes. (Two writers on one stream made trio
    raise BusyResourceError and ended the daemon.)"""
    end_of_rib = bytes.fromhex("ff" * 16 + "0017" + "02" + "0000" + "0000")
    table = [end_of_rib] * 5000  # more than one lockstep read takes

    def on_event(session: PeerSession, event: Event) -> None:
        if isinstance(event, Established):
            session.send(table)

    session = PeerSession(CONFIG, Dial(address="10.0.0.2"), on_event)
    ours, theirs = trio.testing.lockstep_stream_pair()
    received = bytearray()
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        session.accept(ours)
        await theirs.send_all(PEER_OPEN.encode(CTX) + Keepalive().encode(CTX))
        received += await theirs.receive_some(100)  # our OPEN: then the table's write blocks
        await trio.sleep(1)
        await theirs.send_all(b"\x00" * 19)  # a header without the marker (RFC 4271 §6.1)
        while data := await theirs.receive_some(65536):
            received += data
        nursery.cancel_scope.cancel()
    messages = split_messages(received, CTX)
    kinds = [kind for kind, _ in messages]
    assert kinds.count(MessageType.UPDATE) == len(table), "the write under way was cut short"
    assert kinds[-1] == MessageType.NOTIFICATION and not received  # then nothing: closed
    notification = Notification.decode(messages[-1][1], CTX)
    assert (notification.code, notification.subcode) == (1, 1)  # Connection Not Synchronized
