"""One peer's session on trio: dials or takes accepted streams, moves bytes between the
socket and the sans-IO `Connection`, runs its timers, and hands events to the owner.

Every call into the Connection happens on the trio thread between awaits, so no locks.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence

import attrs
import trio

from pybgp.net.transport import open_bgp_connection
from pybgp.session.actions import cease
from pybgp.session.config import SessionConfig
from pybgp.session.connection import Connection
from pybgp.session.events import (
    Event,
    OpenReceived,
    SessionDown,
    StateChanged,
    TcpCloseRequested,
    TcpConnectRequested,
)
from pybgp.session.fsm import State
from pybgp.session.negotiation import Initiator, collision_winner
from pybgp.wire.constants import CeaseSubcode, Family

log = logging.getLogger(__name__)
READ_SIZE = 32768
LARGE_WRITE = 16384  # a queued piece this long is written alone, as it is


@attrs.frozen(kw_only=True)
class Dial:
    """How to reach the peer (and how it reaches us)."""

    address: str
    port: int = 179
    local_address: str | None = None
    md5_key: bytes | None = attrs.field(default=None, repr=False)
    ttl: int | None = None
    gtsm: bool = False
    connect_timeout: float = 10.0


OnEvent = Callable[["PeerSession", Event], None]


class _Link:
    """One TCP connection of a session. Its writer task (`PeerSession._write`) is the only
    task that writes to the stream or closes it, so two writers never meet (trio refuses a
    second concurrent send_all). Detaching hands the writer the last bytes to send."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.last: bytes | None = None  # set when detached: sent, then the stream closes
        self._wake = trio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def idle(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()

    def detach(self, last: bytes = b"") -> None:
        if self.last is None:
            self.last = last
        self._wake.set()


class PeerSession:
    """Drives one `Connection`; `on_event` sees every event except the transport ones."""

    def __init__(self, config: SessionConfig, dial: Dial, on_event: OnEvent) -> None:
        self.config, self.dial, self.on_event = config, dial, on_event
        self.conn = Connection(config, trio.current_time())
        self.established_at: float | None = None
        self.last_error = ""
        self._link: _Link | None = None
        self._timer_wake = trio.Event()
        self._timer_due = math.inf  # the deadline the timer task sleeps until
        self._connecting: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self.running = trio.Event()  # set once run() can take connections
        self._recovering = False  # resetting after an error of ours (see _handle)

    @property
    def state(self) -> State:
        return self.conn.state

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._handle(self.conn.start(trio.current_time()))
            self.running.set()
            task_status.started()
            await self._timers()

    def stop(self) -> None:
        """Cease (administrative shutdown) and stay down; the run task keeps going idle."""
        self._handle(self.conn.stop(trio.current_time()))

    def use_config(self, config: SessionConfig) -> None:
        """New session settings for the connections to come (see Connection.use_config)."""
        self.config = config
        self.conn.use_config(config)

    def reset(self, subcode: CeaseSubcode = CeaseSubcode.ADMIN_RESET) -> None:
        """Hard reset: Cease (administrative reset, or `subcode`), then start again."""
        now = trio.current_time()
        self._handle(self.conn.stop(now, cease(subcode)))
        self._handle(self.conn.start(now))

    def prefix_limit_exceeded(self, family: Family, limit: int) -> None:
        self._handle(self.conn.prefix_limit_exceeded(family, limit, trio.current_time()))

    def local_address(self) -> str | None:
        """Our address on the current connection (the next hop we give eBGP peers)."""
        sock = getattr(self._link.stream, "socket", None) if self._link is not None else None
        if sock is None:
            return None
        try:
            return str(sock.getsockname()[0]).split("%")[0]
        except OSError:  # closed under us
            return None

    def send(self, messages: Sequence[bytes | memoryview]) -> None:
        """Queue encoded UPDATEs (each item one or more whole messages). Events of one read
        are handled after the whole read, so the session may have gone down behind an
        Established event (a NOTIFICATION in the same segment): then nothing is sent, and
        the table goes out again when it is back."""
        if self.conn.state is not State.ESTABLISHED:
            return
        now = trio.current_time()
        for raw in messages:
            self.conn.send_update(raw, now)
        self._kick()

    def accept(self, stream: trio.abc.Stream) -> None:
        """A connection the peer opened to us (the listener matched its address)."""
        assert self._nursery is not None
        if self._link is None and self.conn.waiting_to_restart:
            # The peer is back while our back-off runs: take its connection now (as FRR
            # does) rather than refuse it until our next attempt.
            self._handle(self.conn.start(trio.current_time()))
        if self._link is None and self.state in (State.CONNECT, State.ACTIVE):
            if self._connecting is not None:
                self._connecting.cancel()  # the peer's connection wins the race to us
            self._attach(stream)
            return
        if self.state is State.ESTABLISHED:
            # RFC 4271 §6.8: a new connection against an Established session is closed.
            self._nursery.start_soon(_close, stream)
            return
        self._nursery.start_soon(self._collision, stream)

    # -- plumbing ------------------------------------------------------------------------

    def _kick(self) -> None:
        # Only what the tasks must act on wakes them: a deadline earlier than the one the
        # timer task sleeps until (one that moved later is found when it wakes), bytes to
        # write. A thousand sessions each woken twice per message cost more than the rest.
        due = self.conn.next_deadline()
        if due is not None and due < self._timer_due:
            self._timer_wake.set()
        if self._link is not None and self.conn.has_data_to_send:
            self._link.wake()

    def _handle(self, events: list[Event]) -> None:
        failed = False
        for event in events:
            if isinstance(event, TcpConnectRequested):
                self._start_connect()
            elif isinstance(event, TcpCloseRequested):
                self._detach(self.conn.data_to_send())
            else:
                if isinstance(event, StateChanged):
                    self._note_state(event)
                elif isinstance(event, SessionDown):
                    self.last_error = event.reason
                failed = not self._delivered(event) or failed
        self._kick()
        if failed and not self._recovering:
            # A fault of ours while handling this peer: its session is reset (the owner
            # forgets what it had from it), the other sessions and the daemon go on.
            self._recovering = True
            try:
                self.reset(CeaseSubcode.OUT_OF_RESOURCES)
                self.last_error = "internal error (see the log): sent Cease/Out of Resources"
            finally:
                self._recovering = False

    def _delivered(self, event: Event) -> bool:
        try:
            self.on_event(self, event)
        except Exception:
            name = type(event).__name__
            log.exception("peer %s: internal error handling %s", self.dial.address, name)
            return False
        return True

    def _note_state(self, event: StateChanged) -> None:
        if event.new is State.ESTABLISHED:
            self.established_at = trio.current_time()
        elif event.old is State.ESTABLISHED:
            self.established_at = None
        log.debug("peer %s: %s -> %s", self.dial.address, event.old.name, event.new.name)

    def _start_connect(self) -> None:
        if self._connecting is not None or self._link is not None or self._nursery is None:
            return
        scope = trio.CancelScope()
        self._connecting = scope
        self._nursery.start_soon(self._connect, scope)

    async def _connect(self, scope: trio.CancelScope) -> None:
        with scope:
            try:
                stream = await open_bgp_connection(
                    self.dial.address,
                    self.dial.port,
                    local_address=self.dial.local_address,
                    md5_key=self.dial.md5_key,
                    ttl=self.dial.ttl,
                    gtsm=self.dial.gtsm,
                    timeout=self.dial.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                self._connecting = None
                log.debug("peer %s: connect failed: %s", self.dial.address, exc)
                self._handle(self.conn.connection_lost(trio.current_time()))
                return
            self._connecting = None
            if self._link is not None or self.state not in (State.CONNECT, State.ACTIVE):
                await _close(stream)  # an accepted connection got there first
                return
            self._attach(stream)
        if scope.cancelled_caught:
            self._connecting = None

    def _attach(self, stream: trio.abc.Stream, events: list[Event] | None = None) -> None:
        """Make `stream` the session's connection: its reader and its (only) writer start.
        `events`: what the connection's state already produced (a collision's rival)."""
        assert self._nursery is not None
        link = self._link = _Link(stream)
        self._nursery.start_soon(self._write, link)
        self._nursery.start_soon(self._read, link)
        self._handle(self.conn.connection_made(trio.current_time()) if events is None else events)

    def _detach(self, last: bytes = b"") -> None:
        """The connection ends: its writer sends `last` (a NOTIFICATION), then closes it."""
        link, self._link = self._link, None
        if link is not None:
            link.detach(last)

    def _lost(self, link: _Link) -> None:
        """The transport failed under `link`: tell the FSM, if it is still our connection."""
        if self._link is link:
            self._detach()
            self._handle(self.conn.connection_lost(trio.current_time()))

    async def _read(self, link: _Link) -> None:
        while self._link is link:
            try:
                # One read is decoded and taken into the RIBs before other tasks run; 32 KiB
                # keeps that a few ms, so timers and the control socket wait little.
                data = await link.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                self._lost(link)
                return
            if self._link is link:
                self._handle(self.conn.receive_data(bytes(data), trio.current_time()))

    async def _write(self, link: _Link) -> None:
        """The only writer of `link.stream`: what the connection queues, while attached;
        then the last bytes, then close."""
        try:
            while link.last is None:
                chunks = self.conn.chunks_to_send() if self._link is link else []
                if not chunks:
                    await link.idle()
                    continue
                try:
                    for data in _writes(chunks):
                        await link.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    self._lost(link)
                    return
                if self._link is link:
                    self.conn.data_sent(trio.current_time())
            if link.last:
                await _send_quietly(link.stream, link.last)
        finally:
            await _close(link.stream)

    async def _timers(self) -> None:
        while True:
            deadline = self.conn.next_deadline()
            self._timer_due = deadline if deadline is not None else math.inf
            self._timer_wake = trio.Event()
            with trio.move_on_at(self._timer_due):
                await self._timer_wake.wait()
            self._timer_due = -math.inf  # awake: nothing to wake it for meanwhile
            deadline, now = self.conn.next_deadline(), trio.current_time()
            if deadline is not None and now >= deadline:
                self._handle(self.conn.handle_timer(now))

    async def _collision(self, stream: trio.abc.Stream) -> None:
        """RFC 4271 §6.8: a second connection while ours is opening. Run it until its OPEN,
        then keep the connection opened by the side with the higher BGP Identifier. Until
        then this task is the stream's only reader and writer."""
        rival = Connection(self.config, trio.current_time())
        rival.start(trio.current_time(), passive=True)
        events = rival.connection_made(trio.current_time())
        peer_id = None
        with trio.move_on_after(self.config.hold_time or 90):
            try:
                while peer_id is None and rival.state is not State.IDLE:
                    await stream.send_all(rival.data_to_send())
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    events = rival.receive_data(bytes(data), trio.current_time())
                    peer_id = next(
                        (e.open.bgp_id for e in events if isinstance(e, OpenReceived)), None
                    )
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                peer_id = None  # the peer gave up on this connection: ours stays
        if peer_id is None or self.state not in (State.OPEN_SENT, State.OPEN_CONFIRM):
            await _send_quietly(stream, rival.data_to_send())  # e.g. its NOTIFICATION
            await _close(stream)
            return
        ours = self.conn.outgoing  # only our own dialled connection competes with the peer's
        winner = collision_winner(
            self.config.router_id, peer_id, self.config.local_asn, self.config.peer_asn
        )
        if not ours or winner is Initiator.LOCAL:
            rival.collision_dump(trio.current_time())
            await _send_quietly(stream, rival.data_to_send())
            await _close(stream)
            return
        # The peer's connection wins: drop ours and carry on with the rival's state.
        self._handle(self.conn.collision_dump(trio.current_time()))
        self.conn = rival
        self._attach(stream, events)


def _writes(chunks: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """The queued pieces as writes: small ones joined (fewer system calls), large ones as
    they are (shared with other sessions, so not copied)."""
    writes: list[bytes | memoryview] = []
    small: list[bytes | memoryview] = []
    for chunk in chunks:
        if len(chunk) < LARGE_WRITE:
            small.append(chunk)
            continue
        if small:
            writes.append(b"".join(small))
            small = []
        writes.append(chunk)
    if small:
        writes.append(b"".join(small))
    return writes


async def _send_quietly(stream: trio.abc.Stream, data: bytes) -> None:
    """Last words on a connection that is ending: a few seconds at most, errors ignored."""
    if not data:
        return
    with trio.move_on_after(5):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await stream.send_all(data)


async def _close(stream: trio.abc.Stream) -> None:
    quiet = contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError)
    with trio.CancelScope(shield=True), quiet:
        await stream.aclose()
