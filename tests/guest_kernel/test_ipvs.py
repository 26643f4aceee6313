"""IPVS in a guest kernel: a ClusterIP-like TCP service on kube-dummy-if, NAT to a backend.

    client ns 192.168.50.2 --veth-- 192.168.50.1  node ns   10.244.1.1 --veth-- 10.244.1.2 backend ns
                                    kube-dummy-if 10.96.0.10/32
                                    IPVS TCP 10.96.0.10:80 rr -> 10.244.1.2:8080 (masquerade)

The node's IPVS rewrites the VIP to the backend and the backend's reply back to the VIP; the
backend sees the client's own address (NAT, no source rewrite).
"""

from __future__ import annotations

import socket
import threading

import pytest
from pyroute2 import IPVS, IPVSDest, IPVSService

from tests import netns
from tests.kuberouter.dataplane.probe import in_netns
from tests.support import require_root, require_tools

pytestmark = [pytest.mark.guest, pytest.mark.privileged]

VIP, BACKEND, CLIENT = "10.96.0.10", "10.244.1.2", "192.168.50.2"
IP_VS_CONN_F_MASQ = 0  # IPVS forwarding method "NAT" (pyroute2's default, 3, is direct routing)


def _greet_one_client(server: socket.socket) -> None:
    connection, (peer, _) = server.accept()
    with connection:
        connection.sendall(f"{BACKEND} sees {peer}".encode())


def test_a_tcp_connection_to_the_vip_reaches_the_backend_through_ipvs() -> None:
    require_root()
    require_tools("ip", "ipvsadm")
    with (
        netns.netns("kn") as node,
        netns.netns("kc") as client,
        netns.netns("kb") as backend,
        netns.veth_pair(node, "192.168.50.1/24", client, f"{CLIENT}/24"),
        netns.veth_pair(node, "10.244.1.1/24", backend, f"{BACKEND}/24"),
    ):
        netns.run("ip", "route", "add", "default", "via", "192.168.50.1", netns=client)
        netns.run("ip", "route", "add", "default", "via", "10.244.1.1", netns=backend)
        netns.run("sysctl", "-qw", "net.ipv4.ip_forward=1", netns=node)
        netns.run("ip", "link", "add", "kube-dummy-if", "type", "dummy", netns=node)
        netns.run("ip", "addr", "add", f"{VIP}/32", "dev", "kube-dummy-if", netns=node)
        netns.run("ip", "link", "set", "kube-dummy-if", "up", netns=node)

        service = IPVSService(addr=VIP, port=80, protocol=socket.IPPROTO_TCP, sched_name="rr")
        with IPVS(netns=node) as ipvs:
            ipvs.service("add", service=service)
            dest = IPVSDest(addr=BACKEND, port=8080, fwd_method=IP_VS_CONN_F_MASQ)
            ipvs.dest("add", service=service, dest=dest)

        server = in_netns(backend, lambda: socket.create_server((BACKEND, 8080)))
        server.settimeout(10)
        serving = threading.Thread(target=_greet_one_client, args=(server,))
        serving.start()
        with server, in_netns(client, lambda: socket.create_connection((VIP, 80), 10)) as conn:
            assert conn.recv(100).decode() == f"{BACKEND} sees {CLIENT}"
        serving.join()

        table = netns.run("ipvsadm", "-Ln", netns=node).stdout
        assert f"TCP  {VIP}:80 rr" in table, table
        assert f"-> {BACKEND}:8080" in table and "Masq" in table, table
