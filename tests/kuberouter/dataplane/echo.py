"""Pods that answer with their own name (kuberouter.cluster.echo), run in this process.

Each pod's EchoServer runs on a daemon thread that joined the pod's namespace; every probe
runs on a short-lived thread that joined the source's namespace, so the test's own thread
never leaves the host's. Each probe is a new connection from a new source port, so
conntrack never takes it for an older one.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
from collections.abc import Iterable

import attrs

from kuberouter.cluster.echo import EchoServer, Outcome, probe
from kuberouter.cluster.netns import call_in

_ports = itertools.count(21000)
_ports_lock = threading.Lock()


def next_port() -> int:
    with _ports_lock:
        return next(_ports)


@attrs.frozen
class Place:
    name: str  # pod name, node name, "client"
    netns: str
    ip: str


class EchoPods:
    def __init__(self, pods: Iterable[Place], tcp: Iterable[int], udp: Iterable[int], sctp: bool):
        self.stop = threading.Event()
        self.servers: list[EchoServer] = []
        self.threads: list[threading.Thread] = []
        for pod in pods:
            server = call_in(pod.netns, EchoServer, pod.name, tuple(tcp), tuple(udp), sctp)
            self.servers.append(server)
            thread = threading.Thread(target=server.serve, args=(self.stop,), daemon=True)
            thread.start()  # the sockets already belong to the pod's namespace
            self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(2)
        for server in self.servers:
            server.close()

    def probe(
        self, source: Place, ip: str, port: int, protocol: str, timeout: float = 1.5
    ) -> Outcome:
        return call_in(source.netns, probe, source.ip, next_port(), ip, port, protocol, timeout)

    def probe_many(
        self, probes: Iterable[tuple[Place, str, int, str]], timeout: float = 1.5
    ) -> list[Outcome]:
        """Many probes at once (each still one new connection)."""
        probes = list(probes)
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            futures = [pool.submit(self.probe, *one, timeout) for one in probes]
            return [future.result() for future in futures]
