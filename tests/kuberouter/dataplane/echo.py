"""Pods that answer with their own name, and clients that see who answered.

Each pod runs, in its network namespace, a TCP and a UDP server per port that answer
"<pod name> <the client address it saw>", and a raw SCTP socket that records every INIT
it receives (this kernel has no SCTP sockets; netfilter still tracks, NATs and rejects
SCTP, which is all a proxy test needs). A probe is one new connection from a source
namespace; its outcome is the pod that answered and the source address that pod saw
(masquerade shows as a node address), "refused" (REJECT: ECONNREFUSED, or for SCTP an
ICMP port-unreachable quoting our INIT), or "timeout" (DROP, or nobody there).

Servers live in daemon threads that joined the pod's namespace (setns); every probe
runs in a short-lived thread that joins the source's namespace, so the test's own thread
never leaves the host's.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import itertools
import socket
import struct
import threading
import time
from collections.abc import Iterable

import attrs

from tests.kuberouter.dataplane.probe import in_netns, sctp_init

_SCTP = 132
_ports = itertools.count(21000)
_ports_lock = threading.Lock()


def _next_port() -> int:
    with _ports_lock:
        return next(_ports)


@attrs.frozen
class Place:
    name: str  # pod name, node name, "client"
    netns: str
    ip: str


@attrs.frozen
class Outcome:
    result: str  # "answered", "refused", "timeout" or an errno name
    pod: str = ""  # who answered
    seen: str = ""  # the source address the pod saw

    @property
    def answered(self) -> bool:
        return self.result == "answered"


class EchoPods:
    """Servers in every pod; `probe` makes one new connection and reports the outcome."""

    def __init__(self, pods: Iterable[Place], tcp: Iterable[int], udp: Iterable[int], sctp: bool):
        self.stop = threading.Event()
        self.sctp_seen: dict[int, tuple[str, str]] = {}  # client port -> (pod, source seen)
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        ready: list[threading.Event] = []
        for pod in pods:
            for port in tcp:
                ready.append(self._start(pod, self._serve_tcp, port))
            for port in udp:
                ready.append(self._start(pod, self._serve_udp, port))
            if sctp:
                ready.append(self._start(pod, self._serve_sctp, 0))
        for event in ready:
            assert event.wait(5), "an echo server did not start"

    def _start(self, pod: Place, serve: object, port: int) -> threading.Event:
        started = threading.Event()

        def run() -> None:
            in_netns(pod.netns, lambda: serve(pod, port, started))  # type: ignore[operator]

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)
        return started

    def _listen(self, sock: socket.socket, started: threading.Event) -> None:
        sock.settimeout(0.2)
        self.sockets.append(sock)
        started.set()

    def _serve_tcp(self, pod: Place, port: int, started: threading.Event) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(256)
        self._listen(server, started)
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                conn, (peer, _) = server.accept()
                with conn:
                    conn.sendall(f"{pod.name} {peer}\n".encode())

    def _serve_udp(self, pod: Place, port: int, started: threading.Event) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("0.0.0.0", port))
        self._listen(server, started)
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                _, (peer, peer_port) = server.recvfrom(256)
                server.sendto(f"{pod.name} {peer}\n".encode(), (peer, peer_port))

    def _serve_sctp(self, pod: Place, _: int, started: threading.Event) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, _SCTP)
        self._listen(raw, started)
        while not self.stop.is_set():
            with contextlib.suppress(OSError, IndexError, struct.error):
                data = raw.recv(2048)
                offset = (data[0] & 0x0F) * 4
                source = socket.inet_ntoa(data[12:16])
                (client_port,) = struct.unpack("!H", data[offset : offset + 2])
                self.sctp_seen[client_port] = (pod.name, source)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(2)
        for sock in self.sockets:
            sock.close()

    # -- probes ---------------------------------------------------------------------------

    def probe(
        self, source: Place, ip: str, port: int, protocol: str, timeout: float = 1.5
    ) -> Outcome:
        if protocol == "SCTP":
            return in_netns(source.netns, lambda: self._sctp(source, ip, port, timeout))
        return in_netns(source.netns, lambda: _connect(source, ip, port, protocol, timeout))

    def probe_many(
        self, probes: Iterable[tuple[Place, str, int, str]], timeout: float = 1.5
    ) -> list[Outcome]:
        """Many probes at once (each still one new connection)."""
        probes = list(probes)
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            futures = [pool.submit(self.probe, *probe, timeout) for probe in probes]
            return [future.result() for future in futures]

    def _sctp(self, source: Place, ip: str, port: int, timeout: float) -> Outcome:
        sport = _next_port()
        icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        icmp.settimeout(0.1)
        with icmp, socket.socket(socket.AF_INET, socket.SOCK_RAW, _SCTP) as raw:
            raw.bind((source.ip, 0))
            raw.sendto(sctp_init(sport, port, sport), (ip, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if sport in self.sctp_seen:
                    pod, seen = self.sctp_seen.pop(sport)
                    return Outcome("answered", pod, seen)
                with contextlib.suppress(TimeoutError, OSError, IndexError, struct.error):
                    if _quotes_our_init(icmp.recv(2048), sport):
                        return Outcome("refused")
        return Outcome("timeout")


def _connect(source: Place, ip: str, port: int, protocol: str, timeout: float) -> Outcome:
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((source.ip, _next_port()))
        sock.settimeout(timeout)
        try:
            sock.connect((ip, port))
            if protocol == "UDP":
                sock.send(b"probe")
            answer = sock.recv(256).decode().split()
        except TimeoutError:
            return Outcome("timeout")
        except OSError as error:
            code = error.errno or 0
            return Outcome(
                "refused" if code == errno.ECONNREFUSED else errno.errorcode.get(code, "?")
            )
    if len(answer) != 2:
        return Outcome("garbled")
    return Outcome("answered", answer[0], answer[1])


def _quotes_our_init(data: bytes, sport: int) -> bool:
    """An ICMP port unreachable quoting an SCTP packet from our port."""
    offset = (data[0] & 0x0F) * 4
    kind, code = data[offset], data[offset + 1]
    inner = data[offset + 8 :]
    if kind != 3 or code != 3 or inner[9] != _SCTP:
        return False
    (quoted,) = struct.unpack("!H", inner[(inner[0] & 0x0F) * 4 :][:2])
    return bool(quoted == sport)
