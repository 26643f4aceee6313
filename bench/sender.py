"""A fast BGP sender for the ingest benchmark: one or more sessions, each a minimal BGP speaker
built on pybgp's codec that connects, does OPEN/KEEPALIVE, writes a precomputed UPDATE stream
with one sendall, then keeps the session up with KEEPALIVEs until its standard input closes.

    python -m bench.sender --peer 10.0.0.1 --session 10.0.0.2:65001:STREAM.bin [--session ...]

Events are written to standard output as JSON lines, with CLOCK_MONOTONIC timestamps (the
same clock in every network namespace): "established", "first_update" (taken just before the
first octet of the stream is written), "sent" (sendall returned), "closed" (the peer closed or
sent a NOTIFICATION), "error". When every session is up, the sender waits for a line `go` on
its standard input (so that separate sender processes start together), then all its sessions
start writing at once.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from bench.gen import update_stream
from pybgp.wire.capabilities import FourOctetAS, Multiprotocol, RouteRefresh
from pybgp.wire.constants import HEADER_LEN, IPV4_UNICAST, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import BGPError
from pybgp.wire.header import check_header
from pybgp.wire.keepalive import KEEPALIVE_MESSAGE
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open

CTX = CodecContext(asn4=True)
GEN_NEXT_HOP = b"\x40\x03\x04" + bytes((192, 0, 2, 1))  # the NEXT_HOP bench/gen.py writes
HOLD_TIME = 90
_print_lock = threading.Lock()


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def emit(event: str, **fields: object) -> None:
    with _print_lock:
        print(json.dumps({"event": event, **fields}), flush=True)


def build_stream(prefixes: int, asn: int, next_hop: str) -> bytes:
    """bench/gen.py's UPDATEs (first AS = `asn`) with NEXT_HOP set to the sender's own address,
    so every receiver (BIRD checks it for a directly connected eBGP peer) accepts the routes."""
    stream = update_stream(prefixes, first_as=asn)
    updates = (prefixes + 9) // 10
    if stream.count(GEN_NEXT_HOP) != updates:
        raise RuntimeError("bench/gen.py's NEXT_HOP attribute not found once per UPDATE")
    return stream.replace(GEN_NEXT_HOP, b"\x40\x03\x04" + socket.inet_aton(next_hop))


@attrs.define
class Session:
    local: str
    asn: int
    stream: bytes
    sock: socket.socket | None = None
    hold_time: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    closed: bool = False

    def open_message(self) -> bytes:
        caps = (Multiprotocol(family=IPV4_UNICAST), FourOctetAS(asn=self.asn), RouteRefresh())
        message = Open.build(
            asn=self.asn, hold_time=HOLD_TIME, bgp_id=self.local, capabilities=caps
        )
        return message.encode(CTX)


def connect(local: str, peer: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection from `local` to the daemon, retried until `deadline` (it may be
    starting)."""
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((local, 0))
        sock.settimeout(5.0)
        try:
            sock.connect((peer, port))
            return sock
        except OSError:
            sock.close()
            if now() > deadline:
                raise
            time.sleep(0.2)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the daemon closed the connection")
        data += chunk
    return bytes(data)


def recv_message(sock: socket.socket) -> tuple[int, bytes]:
    header = recv_exact(sock, HEADER_LEN)
    msg_type, length = check_header(header, CTX)
    return msg_type, recv_exact(sock, length - HEADER_LEN)


def handshake(session: Session, peer: str, port: int, deadline: float) -> None:
    """`open_session`, tried again on a new connection until `deadline` (a daemon that is
    still starting may take a connection and answer it late, or close it)."""
    while True:
        try:
            open_session(session, peer, port, deadline)
            return
        except (OSError, BGPError):
            if now() > deadline:
                raise
            time.sleep(0.2)


def open_session(session: Session, peer: str, port: int, deadline: float) -> None:
    """OPEN, KEEPALIVE; returns when both sides have sent KEEPALIVE (Established)."""
    sock = connect(session.local, peer, port, deadline)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(session.open_message())
    try:
        msg_type, body = recv_message(sock)
        if msg_type != MessageType.OPEN:
            raise ConnectionError(f"{session.local}: expected OPEN, got {msg_type}: {body!r}")
        session.hold_time = min(HOLD_TIME, Open.decode(body, CTX).hold_time)
        sock.sendall(KEEPALIVE_MESSAGE)
        msg_type, body = recv_message(sock)
        if msg_type != MessageType.KEEPALIVE:
            raise ConnectionError(f"{session.local}: expected KEEPALIVE, got {msg_type}: {body!r}")
    except (OSError, BGPError):
        sock.close()
        raise
    sock.settimeout(None)
    session.sock = sock
    emit("established", local=session.local, t=now(), hold_time=session.hold_time)


def send_stream(session: Session, start: threading.Event) -> None:
    assert session.sock is not None
    start.wait()
    with session.lock:
        emit("first_update", local=session.local, t=now())
        try:
            session.sock.sendall(session.stream)
        except OSError as exc:
            emit("error", local=session.local, t=now(), error=str(exc))
            return
    emit("sent", local=session.local, t=now(), octets=len(session.stream))


def drain(session: Session) -> None:
    """Read and discard what the daemon sends (its KEEPALIVEs, routes it advertises to us)
    without parsing it, so reading costs little CPU; at the end of the connection, report
    it with the code and subcode of a NOTIFICATION found in the last octets received."""
    assert session.sock is not None
    buf, tail = bytearray(1 << 18), b""
    view = memoryview(buf)
    while True:
        try:
            size = session.sock.recv_into(buf)
        except OSError:
            size = 0
        if not size:
            break
        if size >= 4096:
            tail = bytes(view[size - 4096 : size])
        else:
            tail = (tail + bytes(view[:size]))[-4096:]
    if not session.closed:
        found = re.search(rb"\xff{16}..\x03(..)", tail, re.DOTALL)
        notification = found.group(1).hex() if found else None
        emit("closed", local=session.local, t=now(), notification=notification)
    session.closed = True


def keepalives(sessions: list[Session], stop: threading.Event) -> None:
    """A KEEPALIVE every hold/3 seconds on every session (never inside a stream being written)."""
    timers = [s.hold_time / 3 for s in sessions if s.hold_time]
    if not timers:
        stop.wait()
        return
    while not stop.wait(min(timers)):
        for session in sessions:
            if session.sock is None or session.closed or not session.hold_time:
                continue
            with session.lock:
                try:
                    session.sock.sendall(KEEPALIVE_MESSAGE)
                except OSError:
                    session.closed = True


def close(session: Session) -> None:
    if session.sock is None:
        return
    session.closed = True
    cease = Notification.shutdown("benchmark done").encode(CTX)
    with session.lock:
        try:
            session.sock.sendall(cease)
            session.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    session.sock.close()


def spawn(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def wait_for_stdin_eof(stop: threading.Event) -> None:
    sys.stdin.buffer.read()
    stop.set()


def wait_for_go() -> bool:
    """True when standard input gives `go`; False at its end."""
    return sys.stdin.buffer.readline().strip() == b"go"


def parse_session(text: str) -> Session:
    local, asn, path = text.split(":", 2)
    return Session(local=local, asn=int(asn), stream=Path(path).read_bytes())


def run(sessions: list[Session], peer: str, port: int, connect_timeout: float, life: float) -> int:
    deadline = now() + connect_timeout
    try:
        for session in sessions:
            handshake(session, peer, port, deadline)
    except (OSError, BGPError) as exc:
        emit("error", t=now(), error=f"handshake: {exc}")
        return 1
    stop, start = threading.Event(), threading.Event()
    for session in sessions:
        spawn(drain, session)
        spawn(send_stream, session, start)
    spawn(keepalives, sessions, stop)
    if wait_for_go():
        start.set()
        spawn(wait_for_stdin_eof, stop)
        stop.wait(life)
    for session in sessions:
        close(session)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", required=True, help="the daemon's address")
    parser.add_argument("--port", type=int, default=179)
    parser.add_argument(
        "--session",
        action="append",
        required=True,
        metavar="LOCAL:ASN:STREAM",
        help="local address, AS number and a file of UPDATEs (repeat for more sessions)",
    )
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--life", type=float, default=900.0, help="exit after this long anyway")
    args = parser.parse_args(argv)
    sessions = [parse_session(text) for text in args.session]
    return run(sessions, args.peer, args.port, args.connect_timeout, args.life)


if __name__ == "__main__":
    sys.exit(main())
