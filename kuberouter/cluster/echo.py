"""A pod's stand-in workload: it answers TCP, UDP and SCTP with its own name, so a probe
shows which endpoint a service connection reached and which source address it saw.

    python -m kuberouter.cluster.echo --name web-1 --tcp 8080 --udp 5353 --sctp

Answer: "<name> <source address seen>" (one line). TCP: sent on accept, then closed.
UDP: sent back to the datagram's source. SCTP: this kernel may have no SCTP sockets
(netfilter still tracks, NATs and rejects SCTP), so a raw socket answers every INIT
(RFC 9260 3.3.2) with an INIT ACK (3.3.3) whose State Cookie carries the answer; conntrack
takes it as the reply of the association the INIT opened and un-NATs it.

`probe` is the client side: one new connection, and its outcome: answered (by whom, seen
as what), refused (REJECT: ECONNREFUSED, or ICMP port unreachable quoting our INIT), or
timeout (DROP, or nobody there).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import selectors
import signal
import socket
import struct
import threading
import time
from collections.abc import Sequence

import attrs

SCTP = 132
_INIT, _INIT_ACK, _STATE_COOKIE = 1, 2, 7


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def sctp_packet(sport: int, dport: int, tag: int, chunk: bytes) -> bytes:
    """Common header (RFC 9260 3.1) + one chunk, CRC32c filled in (Appendix A)."""
    packet = struct.pack("!HHII", sport, dport, tag, 0) + chunk
    return packet[:8] + struct.pack("<I", crc32c(packet)) + packet[12:]


def sctp_init(sport: int, dport: int, tag: int) -> bytes:
    """An INIT chunk (RFC 9260 3.3.2): initiate tag, a_rwnd, streams, initial TSN."""
    return sctp_packet(
        sport, dport, 0, struct.pack("!BBHIIHHI", _INIT, 0, 20, tag, 65535, 1, 1, tag)
    )


def sctp_init_ack(sport: int, dport: int, tag: int, cookie: bytes) -> bytes:
    """An INIT ACK (3.3.3) to an INIT whose initiate tag was `tag`, cookie = `cookie`."""
    padded = cookie + b"\0" * (-len(cookie) % 4)
    param = struct.pack("!HH", _STATE_COOKIE, 4 + len(cookie)) + padded
    body = struct.pack("!IIHHI", tag, 65535, 1, 1, tag) + param
    return sctp_packet(sport, dport, tag, struct.pack("!BBH", _INIT_ACK, 0, 4 + len(body)) + body)


def _sctp_chunk(data: bytes) -> tuple[str, int, int, int, bytes] | None:
    """(source, source port, destination port, chunk type, chunk) of an IPv4 SCTP packet."""
    offset = (data[0] & 0x0F) * 4
    if len(data) < offset + 16 or data[9] != SCTP:
        return None
    sport, dport = struct.unpack("!HH", data[offset : offset + 4])
    chunk = data[offset + 12 :]
    return socket.inet_ntoa(data[12:16]), sport, dport, chunk[0], chunk


class EchoServer:
    """TCP and UDP servers on the given ports and an SCTP responder, in one thread."""

    def __init__(
        self, name: str, tcp: Sequence[int] = (), udp: Sequence[int] = (), sctp: bool = False
    ):
        self.name = name
        self.selector = selectors.DefaultSelector()
        for port in tcp:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("0.0.0.0", port))
            server.listen(256)
            self.selector.register(server, selectors.EVENT_READ, self._accept)
        for port in udp:
            datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            datagrams.bind(("0.0.0.0", port))
            self.selector.register(datagrams, selectors.EVENT_READ, self._datagram)
        if sctp:
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, SCTP)
            self.selector.register(raw, selectors.EVENT_READ, self._sctp)

    def answer(self, seen: str) -> bytes:
        return f"{self.name} {seen}\n".encode()

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            for key, _ in self.selector.select(0.2):
                with contextlib.suppress(OSError, IndexError, struct.error):
                    key.data(key.fileobj)

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()

    def _accept(self, server: socket.socket) -> None:
        connection, (peer, _) = server.accept()
        with connection:
            connection.sendall(self.answer(peer))

    def _datagram(self, datagrams: socket.socket) -> None:
        _, (peer, peer_port) = datagrams.recvfrom(512)
        datagrams.sendto(self.answer(peer), (peer, peer_port))

    def _sctp(self, raw: socket.socket) -> None:
        parsed = _sctp_chunk(raw.recv(2048))
        if parsed is None or parsed[3] != _INIT:
            return
        source, sport, dport, _, chunk = parsed
        (tag,) = struct.unpack("!I", chunk[4:8])
        raw.sendto(sctp_init_ack(dport, sport, tag, self.answer(source)), (source, 0))


@attrs.frozen
class Outcome:
    result: str  # "answered", "refused", "timeout" or an errno name
    pod: str = ""  # who answered
    seen: str = ""  # the source address it saw

    @property
    def answered(self) -> bool:
        return self.result == "answered"


def probe(
    source_ip: str, source_port: int, ip: str, port: int, protocol: str, timeout: float = 1.5
) -> Outcome:
    """One new connection from source_ip:source_port (run inside the source's namespace)."""
    if protocol == "SCTP":
        return _probe_sctp(source_ip, source_port, ip, port, timeout)
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((source_ip, source_port))
        sock.settimeout(timeout)
        try:
            sock.connect((ip, port))
            if protocol == "UDP":
                sock.send(b"probe")
            return _answered(sock.recv(512))
        except TimeoutError:
            return Outcome("timeout")
        except OSError as error:
            code = error.errno or 0
            return Outcome(
                "refused" if code == errno.ECONNREFUSED else errno.errorcode.get(code, "?")
            )


def _answered(data: bytes) -> Outcome:
    words = data.decode(errors="replace").split()
    return Outcome("answered", words[0], words[1]) if len(words) == 2 else Outcome("garbled")


def _probe_sctp(source_ip: str, sport: int, ip: str, port: int, timeout: float) -> Outcome:
    tag = sport | 0x10000
    with (
        socket.socket(socket.AF_INET, socket.SOCK_RAW, SCTP) as raw,
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as icmp,
    ):
        raw.bind((source_ip, 0))
        raw.sendto(sctp_init(sport, port, tag), (ip, 0))
        deadline = time.monotonic() + timeout
        selector = selectors.DefaultSelector()
        selector.register(raw, selectors.EVENT_READ, "sctp")
        selector.register(icmp, selectors.EVENT_READ, "icmp")
        with selector:
            while (left := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(left):
                    data = key.fileobj.recv(2048)  # type: ignore[union-attr]
                    with contextlib.suppress(IndexError, struct.error, UnicodeDecodeError):
                        found = (
                            _sctp_answer(data, sport, tag)
                            if key.data == "sctp"
                            else _refused(data, sport)
                        )
                        if found is not None:
                            return found
    return Outcome("timeout")


def _sctp_answer(data: bytes, sport: int, tag: int) -> Outcome | None:
    parsed = _sctp_chunk(data)
    if parsed is None or parsed[2] != sport or parsed[3] != _INIT_ACK:
        return None
    chunk = parsed[4]
    length = struct.unpack("!H", chunk[22:24])[0] - 4
    return _answered(chunk[24 : 24 + length])


def _refused(data: bytes, sport: int) -> Outcome | None:
    """An ICMP port unreachable quoting an SCTP packet from our port."""
    offset = (data[0] & 0x0F) * 4
    kind, code, inner = data[offset], data[offset + 1], data[offset + 8 :]
    if kind != 3 or code != 3 or inner[9] != SCTP:
        return None
    quoted = struct.unpack("!H", inner[(inner[0] & 0x0F) * 4 :][:2])[0]
    return Outcome("refused") if quoted == sport else None


def _ports(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kuberouter.cluster.echo")
    parser.add_argument("--name", required=True)
    parser.add_argument("--tcp", type=_ports, default=[])
    parser.add_argument("--udp", type=_ports, default=[])
    parser.add_argument("--sctp", action="store_true")
    args = parser.parse_args(argv)
    server = EchoServer(args.name, args.tcp, args.udp, args.sctp)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"echo {args.name}: tcp {args.tcp} udp {args.udp} sctp {args.sctp}", flush=True)
    try:
        server.serve(stop)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
