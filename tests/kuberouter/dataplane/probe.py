"""Real TCP, UDP and SCTP probes between network namespaces, from this test process.

A socket belongs to the network namespace it was created in, so a short-lived thread
joins a namespace (setns), opens the sockets and exits; the test's own thread never
leaves the host namespace. Servers: a TCP listener and a UDP socket per port, a raw
SCTP socket (all in the pod). Each flow ends in one of:

- "open": TCP connected; the UDP datagram / SCTP INIT arrived at the destination;
- "refused": the firewall's REJECT came back (TCP/UDP ECONNREFUSED; for SCTP the
  source's raw ICMP socket saw port-unreachable quoting the INIT);
- "timeout" or an errno name: something else (a topology problem, not a verdict).

SCTP goes out as a raw INIT chunk: this kernel may lack SCTP sockets (EPROTONOSUPPORT)
while netfilter still classifies and matches SCTP, which is all the firewall needs.
Every flow uses its own source port, so conntrack never mistakes a new probe for a
reply of an older one after the policy changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import itertools
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import attrs

from kuberouter.cluster.echo import sctp_init

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_SCTP = 132
# A socket with nothing (more) to give right now, or a packet too short to parse.
_QUIET = (BlockingIOError, InterruptedError, IndexError, struct.error)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread that has joined network namespace `name`."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code))
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as error:  # re-raised in the caller
            box["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


@attrs.frozen
class Endpoint:
    name: str  # "x/a" for a pod, "node-1" for a node
    netns: str
    ip: str


@attrs.frozen
class Flow:
    src: Endpoint
    dst: Endpoint
    protocol: str  # TCP / UDP / SCTP
    port: int


class Prober:
    """Servers in every pod, ICMP listeners everywhere; `run(flows)` probes them all."""

    def __init__(self, pods: Iterable[Endpoint], sources: Iterable[Endpoint], ports: Iterable[int]):
        self.ports = tuple(ports)
        self.servers: dict[tuple[str, str, int], socket.socket] = {}  # (pod, proto, port)
        self.sctp: dict[str, socket.socket] = {}  # pod -> raw SCTP socket
        self.icmp: dict[str, socket.socket] = {}  # endpoint -> raw ICMP socket
        self.address: dict[str, str] = {}  # pod -> its address
        self._ports = itertools.count(20000)
        for pod in pods:
            in_netns(pod.netns, functools.partial(self._serve, pod))
        for source in sources:
            self.icmp[source.name] = in_netns(source.netns, _raw(socket.IPPROTO_ICMP))

    def _serve(self, pod: Endpoint) -> None:
        self.address[pod.name] = pod.ip
        for port in self.ports:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((pod.ip, port))
            listener.listen(512)
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((pod.ip, port))
            for sock in (listener, udp):
                sock.setblocking(False)
            self.servers[(pod.name, "TCP", port)] = listener
            self.servers[(pod.name, "UDP", port)] = udp
        self.sctp[pod.name] = _raw(_SCTP)()

    def close(self) -> None:
        for sock in [*self.servers.values(), *self.sctp.values(), *self.icmp.values()]:
            sock.close()

    def run(self, flows: Iterable[Flow], timeout: float = 3.0) -> dict[Flow, str]:
        return _Run(self, list(flows)).wait(timeout)


def _raw(protocol: int) -> Callable[[], socket.socket]:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol)
        sock.setblocking(False)
        return sock

    return make


class _Run:
    """One batch of probes: send everything, then watch every socket until each flow
    has an outcome or the deadline passes."""

    def __init__(self, prober: Prober, flows: list[Flow]) -> None:
        self.prober = prober
        self.outcome: dict[Flow, str] = {}
        # (dst ip, protocol, dst port, src ip, src port) -> flow
        self.by_key: dict[tuple[str, str, int, str, int], Flow] = {}
        self.clients: dict[socket.socket, Flow] = {}
        self.selector = selectors.DefaultSelector()
        self._drain()
        by_source: dict[str, list[Flow]] = {}
        for flow in flows:
            by_source.setdefault(flow.src.netns, []).append(flow)
        for netns, group in by_source.items():
            in_netns(netns, functools.partial(self._start, group))
        for sock in [*prober.servers.values(), *prober.sctp.values(), *prober.icmp.values()]:
            self.selector.register(sock, selectors.EVENT_READ)

    def _drain(self) -> None:
        """Forget datagrams and connections left from an earlier batch."""
        prober = self.prober
        for sock in [*prober.servers.values(), *prober.sctp.values(), *prober.icmp.values()]:
            sock_drain(sock)

    def _start(self, flows: list[Flow]) -> None:
        for flow in flows:
            sport = next(self.prober._ports)
            self.by_key[(flow.dst.ip, flow.protocol, flow.port, flow.src.ip, sport)] = flow
            if flow.protocol == "SCTP":
                sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, _SCTP)
                sock.bind((flow.src.ip, 0))
                sock.sendto(sctp_init(sport, flow.port, sport), (flow.dst.ip, 0))
                sock.close()
                continue
            kind = socket.SOCK_STREAM if flow.protocol == "TCP" else socket.SOCK_DGRAM
            sock = socket.socket(socket.AF_INET, kind)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((flow.src.ip, sport))
            sock.setblocking(False)
            if flow.protocol == "TCP":
                sock.connect_ex((flow.dst.ip, flow.port))
                self.selector.register(sock, selectors.EVENT_WRITE)
            else:
                sock.connect((flow.dst.ip, flow.port))
                try:
                    sock.send(b"probe")
                except OSError as error:  # e.g. EPERM: dropped in this host's OUTPUT hook
                    self._settle(flow, _name(error.errno or 0))
                self.selector.register(sock, selectors.EVENT_READ)
            self.clients[sock] = flow

    def wait(self, timeout: float) -> dict[Flow, str]:
        deadline = time.monotonic() + timeout
        total = len(self.by_key)
        try:
            while len(self.outcome) < total and time.monotonic() < deadline:
                for key, _ in self.selector.select(max(0.0, deadline - time.monotonic())):
                    self._event(key.fileobj)  # type: ignore[arg-type]
        finally:
            for sock in self.clients:
                self.selector.unregister(sock)
                sock.close()
            self.selector.close()
        for flow in self.by_key.values():
            self.outcome.setdefault(flow, "timeout")
        return self.outcome

    def _settle(self, flow: Flow | None, outcome: str) -> None:
        if flow is not None and flow not in self.outcome:
            self.outcome[flow] = outcome

    def _event(self, sock: socket.socket) -> None:
        if sock in self.clients:
            self._client(sock, self.clients[sock])
            return
        for (pod, protocol, port), server in self.prober.servers.items():
            if server is sock:
                self._server(sock, pod, protocol, port)
                return
        for pod, raw in self.prober.sctp.items():
            if raw is sock:
                self._sctp_arrival(sock, pod)
                return
        self._icmp(sock)

    def _client(self, sock: socket.socket, flow: Flow) -> None:
        if flow.protocol == "TCP":
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self._settle(flow, _name(code))
            self.selector.modify(sock, selectors.EVENT_READ)  # quiet until closed
            return
        try:
            sock.recv(64)
        except OSError as error:
            self._settle(flow, _name(error.errno or 0))

    def _server(self, sock: socket.socket, pod: str, protocol: str, port: int) -> None:
        if protocol == "TCP":
            with contextlib.suppress(*_QUIET):
                accepted, _ = sock.accept()
                accepted.close()
            return
        with contextlib.suppress(*_QUIET):
            _, (address, sport) = sock.recvfrom(64)
            key = (self.prober.address[pod], "UDP", port, address, sport)
            self._settle(self.by_key.get(key), "open")

    def _sctp_arrival(self, sock: socket.socket, pod: str) -> None:
        with contextlib.suppress(*_QUIET):
            data = sock.recv(2048)
            offset = (data[0] & 0x0F) * 4
            source = socket.inet_ntoa(data[12:16])
            sport, dport = struct.unpack("!HH", data[offset : offset + 4])
            key = (self.prober.address[pod], "SCTP", dport, source, sport)
            self._settle(self.by_key.get(key), "open")

    def _icmp(self, sock: socket.socket) -> None:
        with contextlib.suppress(*_QUIET):
            data = sock.recv(2048)
            offset = (data[0] & 0x0F) * 4
            kind, code = data[offset], data[offset + 1]
            inner = data[offset + 8 :]
            if kind != 3 or code != 3 or inner[9] != _SCTP:
                return
            source, dest = socket.inet_ntoa(inner[12:16]), socket.inet_ntoa(inner[16:20])
            sport, dport = struct.unpack("!HH", inner[(inner[0] & 0x0F) * 4 :][:4])
            self._settle(self.by_key.get((dest, "SCTP", dport, source, sport)), "refused")


def _name(code: int) -> str:
    if code == 0:
        return "open"
    if code == errno.ECONNREFUSED:
        return "refused"
    return errno.errorcode.get(code, str(code))


def sock_drain(sock: socket.socket) -> None:
    while True:
        try:
            if sock.type == socket.SOCK_STREAM:
                sock.accept()[0].close()
            else:
                sock.recv(2048)
        except (BlockingIOError, InterruptedError):
            return
