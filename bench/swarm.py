"""Many simulated BGP speakers in one process: the peers of the scale benchmarks.

Each speaker has its own address (all on one interface of the swarm's network namespace),
its own AS and router ID, and announces its own prefixes (IPv4, one UPDATE built with
pybgp's codec, NEXT_HOP = its address). One thread and epoll carry every session, so
1,000 sessions cost one process. What the daemon sends is cut into messages and the IPv4
NLRI counted per session (prefixes held: announced minus withdrawn), so the swarm knows
when every speaker holds what it expects.

    python -m bench.swarm CONFIG.json

CONFIG: {"peer": daemon address, "port": 179, "mode": "dial" | "listen", "hold_time": 90,
"expect": "others" | [prefix, ...], "speakers": [{"address", "asn", "prefixes": [...]}]}.
"dial": every speaker connects to the daemon (at most 64 connections opening at once);
"listen": the daemon dials each speaker's address (one listening socket for all).
"expect": "others" (a route reflector's clients: every other speaker's prefixes, with
"elsewhere": those of the speakers in other swarm processes) or the prefixes every speaker
is to receive.

Commands on standard input, one a line: "announce" (every speaker sends its UPDATE, all in
one go), "status", "quit". Events on standard output, JSON lines stamped with
CLOCK_MONOTONIC (the same clock in every namespace): "established" (every session up),
"announced" (first and last UPDATE written), "converged" (every speaker holds all it
expects; "first_read": when the first bytes came back after "announce"), "verified"
(whether each holds exactly those prefixes), "status", "closed" (an Established session
ended: with the NOTIFICATION's code and subcode if one came; before Established a speaker
dials again).
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.swarm_lab import raise_file_limit
from pybgp.wire.capabilities import FourOctetAS, Multiprotocol, RouteRefresh
from pybgp.wire.constants import IPV4_UNICAST, MessageType
from pybgp.wire.context import CodecContext
from pybgp.wire.keepalive import KEEPALIVE_MESSAGE
from pybgp.wire.nlri import nlri_from_str
from pybgp.wire.open import Open
from pybgp.wire.outbound import pack_announcements
from pybgp.wire.pathattrs import PathAttributes

CTX = CodecContext(asn4=True)
# ORIGIN IGP, an empty AS_PATH (iBGP), LOCAL_PREF 100; NEXT_HOP is added per speaker.
IBGP_ATTRIBUTES = b"\x40\x01\x01\x00" + b"\x40\x02\x00" + b"\x40\x05\x04\x00\x00\x00\x64"
MAX_OPENING = 64  # connections being opened at once (the daemon's accept queue is short)
RETRY = 0.5  # seconds before dialling again after a refused connection
READ_SIZE = 1 << 18
UPDATE = int(MessageType.UPDATE)  # a plain int: compared once per message


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def emit(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def announcement(address: str, prefixes: Iterable[str]) -> bytes:
    """The UPDATE(s) announcing `prefixes` from the speaker at `address` (its next hop)."""
    keys = [nlri_from_str(p, IPV4_UNICAST) for p in prefixes]
    if not keys:
        return b""
    attributes = PathAttributes(IBGP_ATTRIBUTES)
    return b"".join(pack_announcements(attributes, IPV4_UNICAST, address, keys, CTX))


class SimSpeaker:
    """One simulated speaker and its session (OPEN, KEEPALIVE, then counting UPDATEs)."""

    def __init__(self, address: str, asn: int, prefixes: list[str]) -> None:
        self.address, self.asn = address, asn
        self.update = announcement(address, prefixes)
        self.expected: frozenset[bytes] = frozenset()
        self.own = frozenset(nlri_from_str(p, IPV4_UNICAST) for p in prefixes)
        self.sock: socket.socket | None = None
        self.state = "idle"  # idle, connecting, open_sent, open_confirm, established, closed
        self.inbuf = b""
        self.outbuf = b""
        self.held: set[bytes] = set()
        self.converged_at: float | None = None
        self.hold_time = 0
        self.retry_at = 0.0

    def open_message(self, hold_time: int) -> bytes:
        caps = (Multiprotocol(family=IPV4_UNICAST), FourOctetAS(asn=self.asn), RouteRefresh())
        message = Open.build(
            asn=self.asn, hold_time=hold_time, bgp_id=self.address, capabilities=caps
        )
        return message.encode(CTX)


class Swarm:
    def __init__(self, config: dict[str, Any]) -> None:
        self.peer, self.port = config["peer"], int(config.get("port", 179))
        self.mode = config.get("mode", "dial")
        self.hold_time = int(config.get("hold_time", 90))
        self.speakers = [
            SimSpeaker(s["address"], int(s["asn"]), list(s.get("prefixes", [])))
            for s in config["speakers"]
        ]
        self.by_address = {s.address: s for s in self.speakers}
        self._set_expected(config.get("expect", "others"), config.get("elsewhere", []))
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.established = 0
        self.waiting = len(self.speakers)  # speakers that do not hold all they expect yet
        self.next_keepalive = 0.0
        self.running = True
        self.stdin_buf = b""
        self.announced_at: float | None = None
        self.first_read: float | None = None  # the first bytes read after "announce"

    def _set_expected(self, expect: str | list[str], elsewhere: list[str]) -> None:
        if expect == "others":
            others = frozenset(nlri_from_str(p, IPV4_UNICAST) for p in elsewhere)
            everything = others.union(*(s.own for s in self.speakers))
            for speaker in self.speakers:
                speaker.expected = everything - speaker.own
        else:
            wanted = frozenset(nlri_from_str(p, IPV4_UNICAST) for p in expect)
            for speaker in self.speakers:
                speaker.expected = wanted

    # -- connections -----------------------------------------------------------------------
    def dial_some(self) -> None:
        opening = sum(1 for s in self.speakers if s.state == "connecting")
        t = now()
        for speaker in self.speakers:
            if opening >= MAX_OPENING:
                return
            if speaker.state == "idle" and speaker.retry_at <= t:
                self.dial(speaker)
                opening += 1

    def dial(self, speaker: SimSpeaker) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((speaker.address, 0))
        code = sock.connect_ex((self.peer, self.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            speaker.retry_at = now() + RETRY
            return
        speaker.sock, speaker.state = sock, "connecting"
        self.selector.register(sock, selectors.EVENT_WRITE, speaker)

    def connected(self, speaker: SimSpeaker) -> None:
        assert speaker.sock is not None
        if speaker.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.selector.unregister(speaker.sock)
            speaker.sock.close()
            speaker.sock, speaker.state, speaker.retry_at = None, "idle", now() + RETRY
            return
        self.selector.modify(speaker.sock, selectors.EVENT_READ, speaker)
        self.start_session(speaker)

    def start_session(self, speaker: SimSpeaker) -> None:
        assert speaker.sock is not None
        speaker.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        speaker.state = "open_sent"
        self.send(speaker, speaker.open_message(self.hold_time))

    def listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", self.port))
        sock.listen(1024)
        sock.setblocking(False)
        self.listener = sock
        self.selector.register(sock, selectors.EVENT_READ, None)

    def accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        speaker = self.by_address.get(sock.getsockname()[0])
        if speaker is None or speaker.sock is not None:
            sock.close()  # not one of ours, or a second connection: the first one stays
            return
        sock.setblocking(False)
        speaker.sock = sock
        self.selector.register(sock, selectors.EVENT_READ, speaker)
        self.start_session(speaker)

    def send(self, speaker: SimSpeaker, data: bytes) -> None:
        if speaker.sock is None or not data:
            return
        if speaker.outbuf:
            speaker.outbuf += data
            return
        try:
            sent = speaker.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close(speaker, None)
            return
        if sent < len(data):
            speaker.outbuf = data[sent:]
            self.selector.modify(
                speaker.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, speaker
            )

    def flush(self, speaker: SimSpeaker) -> None:
        assert speaker.sock is not None
        pending, speaker.outbuf = speaker.outbuf, b""
        self.selector.modify(speaker.sock, selectors.EVENT_READ, speaker)
        self.send(speaker, pending)

    def close(self, speaker: SimSpeaker, notification: str | None) -> None:
        """The session ended. Before Established the speaker tries again, as a real one
        would (a daemon may refuse sessions until it has configured them all); after, the
        run is spoiled, and said so."""
        if speaker.sock is not None:
            self.selector.unregister(speaker.sock)
            speaker.sock.close()
            speaker.sock = None
        speaker.inbuf = speaker.outbuf = b""
        if speaker.state != "established":
            speaker.state, speaker.retry_at = "idle", now() + RETRY
            return
        self.established -= 1
        speaker.state = "closed"
        emit("closed", local=speaker.address, t=now(), notification=notification)

    # -- receiving --------------------------------------------------------------------------
    def receive(self, speaker: SimSpeaker) -> None:
        assert speaker.sock is not None
        try:
            chunk = speaker.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close(speaker, None)
            return
        if self.first_read is None and self.announced_at is not None:
            self.first_read = now()
        data = speaker.inbuf + chunk if speaker.inbuf else chunk
        # Inline (this loop is most of the swarm's time): whole messages; of UPDATEs the
        # withdrawn and announced IPv4 prefixes. Our own prefixes reflected back to us are
        # ignored, as a client ignores a route with its own ORIGINATOR_ID (RFC 4456 §8).
        held, own = speaker.held, speaker.own
        pos, end = 0, len(data)
        while end - pos >= 19:
            stop = pos + (data[pos + 16] << 8 | data[pos + 17])
            if stop > end:
                break
            if data[pos + 18] != UPDATE:
                if not self.other_message(speaker, data[pos + 18], data[pos + 19 : stop]):
                    return
                pos = stop
                continue
            i = pos + 21
            withdrawn_end = i + (data[pos + 19] << 8 | data[pos + 20])
            while i < withdrawn_end:
                j = i + 1 + ((data[i] + 7) >> 3)
                held.discard(data[i:j])
                i = j
            i = withdrawn_end + 2 + (data[withdrawn_end] << 8 | data[withdrawn_end + 1])
            while i < stop:
                j = i + 1 + ((data[i] + 7) >> 3)
                key = data[i:j]
                if key not in own:
                    held.add(key)
                i = j
            pos = stop
        speaker.inbuf = data[pos:]
        if speaker.converged_at is None and len(speaker.held) >= len(speaker.expected):
            speaker.converged_at = now()
            self.waiting -= 1
            if self.waiting == 0:
                self.report_converged()

    def other_message(self, speaker: SimSpeaker, kind: int, body: bytes) -> bool:
        """OPEN, KEEPALIVE, NOTIFICATION; False when the session ended."""
        if kind == MessageType.OPEN:
            peer_hold = int.from_bytes(body[3:5], "big")
            speaker.hold_time = min(self.hold_time, peer_hold)
            speaker.state = "open_confirm"
            self.send(speaker, KEEPALIVE_MESSAGE)
        elif kind == MessageType.KEEPALIVE and speaker.state == "open_confirm":
            speaker.state = "established"
            self.established += 1
            if self.established == len(self.speakers):
                emit("established", t=now(), count=self.established)
        elif kind == MessageType.NOTIFICATION:
            self.close(speaker, body[:2].hex())
            return False
        return True

    def report_converged(self) -> None:
        last = max(s.converged_at or 0.0 for s in self.speakers)
        cpu = os.times()
        emit("converged", t=last, first_read=self.first_read, cpu=round(cpu.user + cpu.system, 3))
        exact = all(s.held == s.expected for s in self.speakers)
        emit("verified", ok=exact)

    # -- commands and the loop ---------------------------------------------------------------
    def announce(self) -> None:
        self.announced_at = first = now()
        for speaker in self.speakers:
            self.send(speaker, speaker.update)
        emit("announced", t_first=first, t_last=now())

    def command(self, line: str) -> None:
        if line == "announce":
            self.announce()
        elif line == "status":
            cpu = os.times()
            held = sum(len(s.held) for s in self.speakers)
            emit(
                "status",
                t=now(),
                established=self.established,
                converged=len(self.speakers) - self.waiting,
                held=held,
                cpu=round(cpu.user + cpu.system, 3),
            )
        elif line == "quit":
            self.running = False

    def read_stdin(self) -> None:
        chunk = os.read(0, 4096)
        if not chunk:
            self.running = False
            return
        self.stdin_buf += chunk
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            self.command(line.decode().strip())

    def keepalives(self) -> None:
        """A KEEPALIVE on every established session every hold time / 3 (the shortest)."""
        t = now()
        if t < self.next_keepalive:
            return
        holds = [s.hold_time for s in self.speakers if s.state == "established" and s.hold_time]
        self.next_keepalive = t + (min(holds) / 3 if holds else 1.0)
        for speaker in self.speakers:
            if speaker.state == "established" and speaker.hold_time:
                self.send(speaker, KEEPALIVE_MESSAGE)

    def run(self) -> None:
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, "stdin")
        if self.mode == "listen":
            self.listen()
        while self.running:
            if self.mode == "dial":
                self.dial_some()
            self.keepalives()
            for key, mask in self.selector.select(timeout=0.2):
                speaker = key.data
                if speaker == "stdin":
                    self.read_stdin()
                elif speaker is None:
                    self.accept()
                elif speaker.state == "connecting":
                    self.connected(speaker)
                else:
                    if mask & selectors.EVENT_WRITE and speaker.sock is not None:
                        self.flush(speaker)
                    if mask & selectors.EVENT_READ and speaker.sock is not None:
                        self.receive(speaker)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    raise_file_limit()
    Swarm(json.loads(Path(args[0]).read_text())).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
