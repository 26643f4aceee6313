"""BFD on trio for single-hop IPv4 and IPv6 (RFC 5881): sockets, timers, and the
`BfdSession`s of one process, keyed by the peer's address.

- Packets go to UDP port 3784 from a source port in 49152-65535, one port per session for
  all its packets (RFC 5881 §4), with TTL / Hop Limit 255 (RFC 5881 §5).
- One receiving socket per local address (port 3784, shared by the sessions on that
  address); a packet that arrives with a TTL / Hop Limit below 255 is dropped (§5), read
  through IP_RECVTTL / IPV6_RECVHOPLIMIT.
- A packet is matched to its session by Your Discriminator, or by its source address when
  that is zero (RFC 5880 §6.8.6, RFC 5881 §3), and must come from the session's peer.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import random
import socket
import sys
from collections.abc import Callable

import trio

from pybgp.bfd.packet import BfdPacketError, ControlPacket
from pybgp.bfd.session import BfdConfig, BfdSession, BfdStateChanged
from pybgp.net import sockopts

log = logging.getLogger(__name__)

BFD_PORT = 3784  # RFC 5881 §4: single-hop Control packets
SOURCE_PORTS = (49152, 65535)  # RFC 5881 §4
TTL = 255  # RFC 5881 §5
IP_RECVTTL = 12  # <linux/in.h>; the socket module does not name it
READ_SIZE = 512
OnChange = Callable[[str, BfdStateChanged], None]
_CMSG_SPACE = socket.CMSG_SPACE(4) * 2
_LINGER = 1.0  # seconds a removed session keeps saying AdminDown (RFC 5880 §6.8.16)


def _normal(address: str) -> str:
    return str(ipaddress.ip_address(address.split("%", maxsplit=1)[0]))


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


class _Entry:
    """One session with its peer, its socket and its task."""

    def __init__(self, peer: str, local: str, session: BfdSession, on_change: OnChange) -> None:
        self.peer, self.local, self.session, self.on_change = peer, local, session, on_change
        self.scope = trio.CancelScope()
        self.wake = trio.Event()


class _Receiver:
    """The port-3784 socket of one local address, and how many sessions use it."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.users = 0


class BfdService:
    """Every BFD session of the process; start `run` in a nursery, then `add` sessions."""

    def __init__(self, *, port: int = BFD_PORT, rng: random.Random | None = None) -> None:
        self.port = port
        self.rng = rng or random.Random()
        self._sessions: dict[str, _Entry] = {}
        self._by_discriminator: dict[int, _Entry] = {}
        self._receivers: dict[str, _Receiver] = {}
        self._nursery: trio.Nursery | None = None
        self.dropped_ttl = 0  # received with TTL / Hop Limit below 255 (RFC 5881 §5)
        self.dropped_invalid = 0  # refused by the codec or matching no session

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    # -- sessions -----------------------------------------------------------------------

    def add(self, peer: str, local: str, config: BfdConfig, on_change: OnChange) -> BfdSession:
        """A session with `peer` from our address `local`; one that exists with the same
        local address and settings is kept, otherwise replaced."""
        assert self._nursery is not None, "BfdService.run is not running"
        peer, local = _normal(peer), _normal(local)
        entry = self._sessions.get(peer)
        if entry is not None and entry.local == local and entry.session.config == config:
            entry.on_change = on_change
            return entry.session
        if entry is not None:
            self.remove(peer)
        session = BfdSession(config, self._discriminator(), trio.current_time(), rng=self.rng)
        entry = _Entry(peer, local, session, on_change)
        self._sessions[peer] = entry
        self._by_discriminator[session.local_discriminator] = entry
        receiver = self._receivers.get(local)
        if receiver is None:
            receiver = self._receivers[local] = _Receiver()
            self._nursery.start_soon(self._receive, local, receiver)
        receiver.users += 1
        self._nursery.start_soon(self._run_session, entry)
        return session

    def remove(self, peer: str) -> None:
        """Say AdminDown for a moment, then stop (RFC 5880 §6.8.16)."""
        entry = self._sessions.pop(_normal(peer), None)
        if entry is None:
            return
        self._by_discriminator.pop(entry.session.local_discriminator, None)
        entry.session.admin_down(trio.current_time())
        entry.wake.set()
        entry.scope.deadline = trio.current_time() + _LINGER
        receiver = self._receivers.get(entry.local)
        if receiver is not None:
            receiver.users -= 1
            if receiver.users == 0:
                del self._receivers[entry.local]
                receiver.scope.cancel()

    def session(self, peer: str) -> BfdSession | None:
        entry = self._sessions.get(_normal(peer))
        return entry.session if entry else None

    def info(self, peer: str) -> dict[str, object] | None:
        entry = self._sessions.get(_normal(peer))
        if entry is None:
            return None
        return {"local_address": entry.local, **entry.session.info(trio.current_time())}

    def _discriminator(self) -> int:
        while True:
            value = self.rng.randrange(1, 1 << 32)
            if value not in self._by_discriminator:
                return value

    # -- one session's timers and packets ------------------------------------------------

    async def _run_session(self, entry: _Entry) -> None:
        with entry.scope:
            try:
                sock = await self._sender(entry.local)
            except OSError as exc:
                log.warning("bfd %s: no socket on %s: %s", entry.peer, entry.local, exc)
                return
            with sock:
                entry.session.start(trio.current_time())
                await self._session_loop(entry, sock)

    async def _session_loop(self, entry: _Entry, sock: trio.socket.SocketType) -> None:
        session, target = entry.session, (entry.peer, self.port)
        while True:
            for packet in session.packets_to_send():
                try:
                    await sock.sendto(packet.encode(), target)
                except OSError as exc:  # no route while the link is down, and the like
                    log.debug("bfd %s: send failed: %s", entry.peer, exc)
            deadline = session.next_deadline()
            entry.wake = trio.Event()
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                await entry.wake.wait()
            now = trio.current_time()
            if deadline is not None and now >= deadline:
                self._report(entry, session.handle_timer(now))

    async def _sender(self, local: str) -> trio.socket.SocketType:
        """A UDP socket on `local` and a free port in 49152-65535, sending with TTL 255."""
        sock = trio.socket.socket(_family(local), socket.SOCK_DGRAM)
        try:
            sockopts.set_ttl(sock, TTL)
            low, high = SOURCE_PORTS
            for _ in range(64):
                try:
                    await sock.bind((local, self.rng.randint(low, high)))
                    return sock
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
            raise OSError(errno.EADDRINUSE, "no free source port in 49152-65535")
        except BaseException:
            sock.close()
            raise

    def _report(self, entry: _Entry, events: list[BfdStateChanged]) -> None:
        for event in events:
            log.info(
                "bfd %s: %s -> %s (%s)",
                entry.peer,
                event.old.label,
                event.new.label,
                event.diag.name.lower(),
            )
            entry.on_change(entry.peer, event)

    # -- receiving ------------------------------------------------------------------------

    async def _receive(self, local: str, receiver: _Receiver) -> None:
        with receiver.scope:
            try:
                sock = await self._listener(local)
            except OSError as exc:
                log.warning("bfd: cannot listen on %s port %d: %s", local, self.port, exc)
                return
            with sock:
                while True:
                    data, ancdata, _flags, source = await sock.recvmsg(READ_SIZE, _CMSG_SPACE)
                    if isinstance(source, tuple):
                        self._datagram(data, _ttl(ancdata), _normal(str(source[0])))

    async def _listener(self, local: str) -> trio.socket.SocketType:
        family = _family(local)
        sock = trio.socket.socket(family, socket.SOCK_DGRAM)
        try:
            sockopts.set_reuseaddr(sock)
            if family == socket.AF_INET6:
                sockopts.set_v6only(sock)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            await sock.bind((local, self.port))
            return sock
        except BaseException:
            sock.close()
            raise

    def _datagram(self, data: bytes, ttl: int | None, source: str) -> None:
        if ttl != TTL:  # RFC 5881 §5: single hop means it was sent with 255, unchanged
            self.dropped_ttl += 1
            log.debug("bfd: dropped a packet from %s with TTL %s", source, ttl)
            return
        try:
            packet = ControlPacket.decode(data)
        except BfdPacketError as exc:
            self.dropped_invalid += 1
            log.debug("bfd: dropped a packet from %s: %s", source, exc)
            return
        if packet.your_discriminator:
            entry = self._by_discriminator.get(packet.your_discriminator)
        else:
            entry = self._sessions.get(source)
        if entry is None or entry.peer != source:
            self.dropped_invalid += 1
            return
        self._report(entry, entry.session.receive(packet, trio.current_time()))
        entry.wake.set()


def _ttl(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The TTL (IP_TTL) or Hop Limit (IPV6_HOPLIMIT) control message, if any."""
    for level, kind, value in ancdata:
        if (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ) and len(value) >= 4:
            return int.from_bytes(value[:4], sys.byteorder)
    return None
