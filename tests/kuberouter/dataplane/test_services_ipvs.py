"""The IPVS service proxy in a guest kernel: incremental writes, repair of drift, other
tools' IPVS services left alone, graceful termination, schedulers and timeouts, cleanup.

    client ns 192.168.60.2 --veth-- 192.168.60.1 node ns 10.244.0.1 --bridge-- pods 10.244.0.x
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import attrs
import prometheus_client
import pytest

from kuberouter.controllers.proxy_metrics import ServiceCounters
from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.services.ipvs import IpvsServices
from kuberouter.model import EndpointSlice, Service
from kuberouter.proxy.incremental import IncrementalCompiler
from kuberouter.proxy.state import NodeFacts, ProxyState
from tests import netns
from tests.kuberouter.dataplane.probe import in_netns
from tests.kuberouter.proxy.builders import endpoint, service, slice_of
from tests.kuberouter.proxy.flows import config
from tests.support import require, require_root, require_tools

pytestmark = [pytest.mark.guest, pytest.mark.privileged]
NODE = NodeFacts(name="node-1", addresses=("192.168.60.1",), pod_cidrs=("10.244.0.0/24",))
CLIENT = "192.168.60.2"
PODS = ("10.244.0.10", "10.244.0.11", "10.244.0.12")


@attrs.define
class Node:
    node: str
    client: str
    pods: dict[str, str]  # ip -> its namespace
    backend: IpvsServices
    compiler: IncrementalCompiler
    state: ProxyState | None = None

    def put(self, made: tuple[Service, EndpointSlice], **flags: str) -> ProxyState:
        svc, eps = made
        self.compiler.set_service(svc.key, svc)
        self.compiler.set_slice(eps.key, eps)
        new = self.compiler.state()
        self.backend.apply(new, self.state)
        self.state = new
        return new

    def ipvsadm(self) -> str:
        return netns.run("ipvsadm", "-Ln", netns=self.node).stdout


@contextlib.contextmanager
def topology(*flags: str) -> Iterator[Node]:
    require_root()
    require_tools("ip", "ipset", "ipvsadm", "modprobe")
    require(subprocess.run(["modprobe", "ip_vs"], check=False).returncode == 0, "the ip_vs module")
    with contextlib.ExitStack() as stack:
        node = stack.enter_context(netns.netns("in"))
        client = stack.enter_context(netns.netns("ic"))
        stack.enter_context(netns.veth_pair(node, "192.168.60.1/24", client, f"{CLIENT}/24"))
        netns.run("ip", "route", "add", "default", "via", "192.168.60.1", netns=client)
        netns.run("ip", "link", "add", "kube-bridge", "type", "bridge", netns=node)
        netns.run("ip", "addr", "add", "10.244.0.1/24", "dev", "kube-bridge", netns=node)
        netns.run("ip", "link", "set", "kube-bridge", "up", netns=node)
        netns.run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=node)
        pods = {}
        for ip in PODS:
            pod = stack.enter_context(netns.netns("ip"))
            a, b = netns.unique_name("iv"), "eth0"
            netns.run(
                "ip", "-n", node, "link", "add", a, "type", "veth", "peer", "name", b, "netns", pod
            )
            netns.run("ip", "-n", node, "link", "set", a, "master", "kube-bridge", "up")
            netns.run("ip", "-n", pod, "addr", "add", f"{ip}/24", "dev", "eth0")
            netns.run("ip", "-n", pod, "link", "set", "eth0", "up")
            netns.run("ip", "-n", pod, "route", "add", "default", "via", "10.244.0.1")
            pods[ip] = pod
        made = config("--enable-ipv4", *flags)
        yield Node(node, client, pods, IpvsServices(Runner(node)), IncrementalCompiler(NODE, made))


def web(*ips: str, name: str = "web", **spec: object) -> tuple[Service, EndpointSlice]:
    made = service(name, "10.96.0.10" if name == "web" else "10.96.0.20",
                   ports=[{"name": "http", "port": 80, "targetPort": 8080}], **spec)  # type: ignore[arg-type]  # fmt: skip
    return made, slice_of(name, *(endpoint(ip) for ip in ips))


def test_one_endpoint_change_touches_one_ipvs_service_and_repairs_drift() -> None:
    with topology() as node:
        node.put(web(PODS[0], PODS[1]))
        node.put(web(PODS[2], name="other"))
        requests = node.backend.kernel.requests
        node.put(web(PODS[0]))  # one endpoint leaves web
        assert node.backend.kernel.requests - requests == 1  # one destination deleted
        table = node.ipvsadm()
        assert f"-> {PODS[0]}:8080" in table and f"-> {PODS[1]}:8080" not in table
        # someone deletes a service and adds their own
        netns.run("ipvsadm", "-D", "-t", "10.96.0.10:80", netns=node.node)
        netns.run("ipvsadm", "-A", "-t", "192.168.60.1:9999", "-s", "rr", netns=node.node)
        stats = node.backend.reconcile(node.state)  # type: ignore[arg-type]
        assert stats.changed
        table = node.ipvsadm()
        assert "TCP  10.96.0.10:80 rr" in table and "TCP  192.168.60.1:9999 rr" in table
        assert not node.backend.reconcile(node.state).changed  # type: ignore[arg-type]
        node.backend.cleanup()
        table = node.ipvsadm()
        assert "10.96.0.10" not in table and "192.168.60.1:9999" in table


def test_schedulers_persistence_and_timeouts() -> None:
    with topology("--service-tcp-timeout=15m", "--service-udp-timeout=2m") as node:
        node.put(web(PODS[0], PODS[1], sessionAffinity="ClientIP",
                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}},
                     annotations={"kube-router.io/service.scheduler": "mh",
                                  "kube-router.io/service.schedflags": "flag-1,flag-2"}))  # fmt: skip
        table = node.ipvsadm()
        assert "TCP  10.96.0.10:80 mh (mh-fallback,mh-port) persistent 60" in table, table
        timeouts = netns.run("ipvsadm", "-L", "--timeout", netns=node.node).stdout
        assert timeouts.split(":")[-1].split()[::2] == ["900", "120"], timeouts  # tcp, udp


def _serve_forever(listener: socket.socket, stop: threading.Event) -> None:
    listener.settimeout(0.2)
    while not stop.is_set():
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            threading.Thread(target=_echo, args=(conn, stop), daemon=True).start()


def _echo(conn: socket.socket, stop: threading.Event) -> None:
    with conn:
        conn.settimeout(0.2)
        while not stop.is_set():
            try:
                data = conn.recv(100)
            except TimeoutError:
                continue
            if not data:
                return
            conn.sendall(data)


def test_graceful_termination_keeps_an_open_connection_until_it_ends() -> None:
    # A closed TCP connection stays in IPVS (TIME_WAIT, 2 min) as an inactive one, so the
    # destination then goes at the end of the period.
    with topology("--ipvs-graceful-termination", "--ipvs-graceful-period=8s") as node:
        stop = threading.Event()
        listener = in_netns(node.pods[PODS[0]], lambda: socket.create_server(("0.0.0.0", 8080)))
        threading.Thread(target=_serve_forever, args=(listener, stop), daemon=True).start()
        try:
            node.put(web(PODS[0]))
            conn = in_netns(node.client, lambda: socket.create_connection(("10.96.0.10", 80), 5))
            conn.sendall(b"before")
            assert conn.recv(100) == b"before"
            node.put(web(PODS[1]))  # the pod terminates: its endpoint leaves the slice
            table = node.ipvsadm()
            assert f"-> {PODS[0]}:8080" in table and "Masq    0" in table, table  # weight 0
            conn.sendall(b"during")
            assert conn.recv(100) == b"during"  # the open connection still works
            assert node.backend.housekeeping() == 0  # still busy: kept
            conn.close()
            deadline = time.monotonic() + 20
            while node.backend.draining and time.monotonic() < deadline:
                node.backend.housekeeping()
                time.sleep(0.5)
            assert f"-> {PODS[0]}:8080" not in node.ipvsadm()
        finally:
            stop.set()
            listener.close()


def test_service_metrics_come_from_the_ipvs_counters() -> None:
    with topology() as node:
        stop = threading.Event()
        listener = in_netns(node.pods[PODS[0]], lambda: socket.create_server(("0.0.0.0", 8080)))
        threading.Thread(target=_serve_forever, args=(listener, stop), daemon=True).start()
        try:
            node.put(web(PODS[0]))
            for _ in range(3):
                conn = in_netns(
                    node.client, lambda: socket.create_connection(("10.96.0.10", 80), 5)
                )
                conn.sendall(b"x")
                assert conn.recv(10) == b"x"
                conn.close()
        finally:
            stop.set()
            listener.close()
        registry = prometheus_client.CollectorRegistry()
        registry.register(ServiceCounters(node.backend.service_counters))
        labels = {"svc_namespace": "ns", "service_name": "web", "service_vip": "10.96.0.10",
                  "protocol": "tcp", "port": "80"}  # fmt: skip
        total = "kube_router_service_total_connections_total"
        deadline = time.monotonic() + 10  # the kernel sums its counters every 2 s
        while registry.get_sample_value(total, labels) != 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert registry.get_sample_value(total, labels) == 3
        assert registry.get_sample_value("kube_router_service_packets_in_total", labels) >= 6  # type: ignore[operator]


def test_a_full_sync_of_many_services_is_one_ipvsadm_restore_and_exact() -> None:
    with topology() as node:
        for number in range(100):
            svc = service(f"s{number}", f"10.96.1.{number}", sessionAffinity="ClientIP" if number % 2 else "None",
                          ports=[{"name": "http", "port": 80, "targetPort": 8080}])  # fmt: skip
            eps = slice_of(
                f"s{number}", endpoint(PODS[number % 3]), endpoint(PODS[(number + 1) % 3])
            )
            node.compiler.set_service(svc.key, svc)
            node.compiler.set_slice(eps.key, eps)
        state = node.compiler.state()
        runner = node.backend.runner
        runner.record = True
        node.backend.apply(state, None)
        assert len(runner.calls_of("ipvsadm")) == 1  # the restore
        table = node.ipvsadm()
        assert (
            "TCP  10.96.1.1:80 rr persistent 10800" in table and "TCP  10.96.1.0:80 rr\n" in table
        )
        assert table.count("Masq") == 200
        assert not node.backend.reconcile(state).changed  # what restore wrote is exact
