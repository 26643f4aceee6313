"""The routing controller in the cluster in a box: a full mesh of real agents and the FRR ToR.

One box for the whole module (its tests run in file order and leave it as they found it):
three nodes with one pod each and no static routes (`up --no-static-routes`), so pods on
different nodes can reach each other only through routes the agents learned over BGP.
The ToR peers with every node over iBGP, its sessions signed with TCP MD5
(`--tor-password-file`). The agents advertise ClusterIPs and LoadBalancer IPs, run with
graceful restart and serve their metrics; nodes 1 and 2 carry BGP communities given at
`up` (`--node-annotation`), node 3 none. A Service manifest (`up -f`) gives a ClusterIP
and a LoadBalancer IP to advertise, and another Service two addresses not to advertise
(its ClusterIP turned off by annotation, an external IP without --advertise-external-ip).

Everything is checked the way a user would: `ip route`, `pybgp --socket ... -j neighbor`,
vtysh against the ToR, `kubectl annotate` and `kubectl get events`, ping and a UDP probe.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kuberouter.cluster import bgp
from tests.kuberouter.cluster.bgp import ok, pod, pod_cidr, pod_ip, wait_until
from tests.kuberouter.cluster.conftest import Box, new_box, torn_down

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

NODES = (1, 2, 3)
PASSWORD = "box-md5-Secret.42"
METRICS_PORT = 20245
REPAIR_SECONDS = 2
CLUSTER_IP, LB_IP = "10.96.0.50", "10.243.0.10"  # the box's --loadbalancer-ip-range
QUIET_CLUSTER_IP, QUIET_EXTERNAL_IP = "10.96.0.60", "192.0.2.20"
COMMUNITIES = {1: {"65000:101"}, 2: {"65000:102", "65000:200"}, 3: set()}
NOTES = (
    "node1:kube-router.io/node.bgp.communities=65000:101",
    "node2:kube-router.io/node.bgp.communities=65000:102,65000:200",
)
AGENT_ARGS = (
    "--advertise-cluster-ip",
    "--advertise-loadbalancer-ip",
    "--bgp-graceful-restart",
    f"--metrics-port={METRICS_PORT}",
    f"--injected-routes-sync-period={REPAIR_SECONDS}s",
)
SERVICES = f"""
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/another  # its address is given here, not by the allocator
  clusterIP: {CLUSTER_IP}
  clusterIPs: [{CLUSTER_IP}]
  ports: [{{port: 80, protocol: TCP}}]
status:
  loadBalancer: {{ingress: [{{ip: {LB_IP}}}]}}
---
apiVersion: v1
kind: Service
metadata:
  name: quiet
  namespace: default
  annotations: {{kube-router.io/service.advertise.clusterip: "false"}}
spec:
  clusterIP: {QUIET_CLUSTER_IP}
  clusterIPs: [{QUIET_CLUSTER_IP}]
  externalIPs: [{QUIET_EXTERNAL_IP}]
  ports: [{{port: 80, protocol: TCP}}]
"""
ADVERTISED = {pod_cidr(i) for i in NODES} | {f"{CLUSTER_IP}/32", f"{LB_IP}/32"}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    box = new_box(tmp_path_factory.mktemp("mesh"), prefix="bm")
    password, services = box.scratch / "md5", box.scratch / "services.yaml"
    password.write_text(PASSWORD + "\n")
    services.write_text(SERVICES)
    with torn_down(box):
        notes = [arg for note in NOTES for arg in ("--node-annotation", note)]
        agent_args = [f"--agent-arg={arg}" for arg in AGENT_ARGS]
        ok(box.ctl("up", "--nodes", "3", "--pods-per-node", "1", "--no-static-routes",
                   "--tor-password-file", str(password), "-f", str(services),
                   *notes, *agent_args, timeout=180))  # fmt: skip
        wait_until(
            "the ToR has every advertised route", lambda: bgp.tor_prefixes(box) == ADVERTISED
        )
        yield box


def _other_pod_cidrs(box: Box, index: int) -> dict[str, str]:
    return {pod_cidr(i): f"10.240.0.{10 + i}" for i in NODES if i != index}


def _everything(box: Box) -> dict[str, Any]:
    """What must not change when nothing should: sessions, the ToR's table, kernel routes."""
    return {
        "connections": bgp.connections(box),
        "tor": bgp.tor_prefixes(box),
        "kernel": {i: bgp.bgp_routes(box, i) for i in NODES},
        "sessions": {i: {a: s["state"] for a, s in bgp.sessions(box, i).items()} for i in NODES},
    }


def _secrets_seen(box: Box, secrets: list[str]) -> list[str]:
    """Where any of `secrets` shows up: agent logs, metrics, pybgp's answers, Events."""
    seen = []
    places = {f"log of node{i}": bgp.agent_log(box, i) for i in NODES}
    for i in NODES:
        places[f"metrics of node{i}"] = bgp.metrics(box, i, METRICS_PORT)
        for args in (["neighbor"], ["-j", "neighbor"], ["policy"], ["-j", "policy"], ["rib"]):
            places[f"pybgp {' '.join(args)} on node{i}"] = bgp.pybgp(box, i, *args)
    places["events"] = ok(box.kubectl("get", "events", "-o", "json"))
    places["cluster status"] = box.ctl("status").stdout
    for where, text in places.items():
        seen += [f"{secret!r} in {where}" for secret in secrets if secret in text]
    return seen


def test_pods_reach_each_other_over_bgp_routes_and_the_tor_learns_only_ours(mesh: Box) -> None:
    box = mesh
    for i in NODES:  # only the agents' routes lead to other nodes' pods
        wait_until(
            f"node{i}'s BGP routes", lambda i=i: bgp.bgp_routes(box, i) == _other_pod_cidrs(box, i)
        )
        table = bgp.routes(box, i)
        assert not [r for r in table if r["dst"] == "default"], table
        to_pods = {r["dst"]: r["protocol"] for r in table if r["dst"].startswith("10.244.")}
        assert to_pods == {pod_cidr(i): "kernel"} | dict.fromkeys(_other_pod_cidrs(box, i), "17")
    # Just after `up` the last agent may still be settling (its pod egress sets): allow it.
    wait_until("every pod reaching every other", lambda: bgp.unreachable_pairs(box, NODES) == [])

    assert bgp.tor_prefixes(box) == ADVERTISED  # nothing else: not the quiet Service's IPs
    for prefix in ADVERTISED:
        paths = bgp.tor_paths(box, prefix)
        owners = [i for i in NODES if prefix == pod_cidr(i)] or list(NODES)  # services: all
        assert sorted(paths) == [f"10.240.0.{10 + i}" for i in owners], prefix
        for i in owners:
            path = paths[f"10.240.0.{10 + i}"]
            assert bgp.communities(path) == COMMUNITIES[i], (prefix, i, path)
            assert [hop["ip"] for hop in path["nexthops"]] == [f"10.240.0.{10 + i}"]

    neighbors = bgp.tor_neighbors(box)  # MD5 on every ToR session, and it is enforced
    assert {ip: n["bgpState"] for ip, n in neighbors.items()} == {
        f"10.240.0.{10 + i}": "Established" for i in NODES
    }
    assert all(n.get("authenticationEnabled") for n in neighbors.values()), neighbors
    assert bgp.plain_connect(box, 1, "10.240.0.254") == "timeout"
    assert _secrets_seen(box, [PASSWORD]) == []


def test_a_deleted_route_comes_back_and_foreign_routes_are_left_alone(mesh: Box) -> None:
    """--injected-routes-sync-period repairs drift in our routes (protocol 17) only."""
    box, there = mesh, pod_cidr(2)
    node1 = bgp.node(box, 1)
    ok(box.exec_in(node1, "ip", "route", "add", "192.0.2.0/24", "via", "10.240.0.12",
                   "proto", "static"))  # fmt: skip
    try:
        ok(box.exec_in(node1, "ip", "route", "del", there))
        assert there not in bgp.bgp_routes(box, 1)
        wait_until(
            f"{there} back on node1", lambda: there in bgp.bgp_routes(box, 1), REPAIR_SECONDS * 5
        )
        time.sleep(REPAIR_SECONDS * 2)  # more repairs: the operator's route stays
        static = [r for r in bgp.routes(box, 1) if r["dst"] == "192.0.2.0/24"]
        assert [r.get("protocol") for r in static] == ["static"]
    finally:
        box.exec_in(node1, "ip", "route", "del", "192.0.2.0/24")


def test_status_shows_each_nodes_sessions(mesh: Box) -> None:
    status = ok(mesh.ctl("status"))
    assert "problems: none" in status and "AS 64512, MD5" in status
    section = status.split("BGP sessions of each node", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in section.splitlines()[2:]]  # after the two heading lines
    for i in NODES:
        peers = {words[1]: words[3] for words in rows if words[0] == bgp.node(mesh, i)}
        expected = {f"10.240.0.{10 + j}" for j in NODES if j != i} | {"10.240.0.254"}
        assert peers == dict.fromkeys(expected, "Established"), status


def test_a_changed_annotation_is_applied_live_without_resetting_a_session(mesh: Box) -> None:
    box = mesh
    before = _everything(box)
    uptimes = {i: {a: s["uptime"] for a, s in bgp.sessions(box, i).items()} for i in NODES}
    node1, node3 = bgp.node(box, 1), bgp.node(box, 3)
    notes = "kube-router.io/node.bgp.communities"
    ok(box.kubectl("annotate", "node", node3, f"{notes}=65000:303"))
    ok(box.kubectl("annotate", "--overwrite", "node", node1, f"{notes}=65000:111"))
    try:
        expected = {"10.240.0.11": {"65000:111"}, "10.240.0.13": {"65000:303"}}
        for prefix in (pod_cidr(1), pod_cidr(3), f"{CLUSTER_IP}/32"):
            wait_until(
                f"the ToR sees the new communities on {prefix}",
                lambda prefix=prefix: all(
                    bgp.communities(path) == expected[peer]
                    for peer, path in bgp.tor_paths(box, prefix).items()
                    if peer in expected
                ),
            )
        assert bgp.communities(bgp.tor_paths(box, pod_cidr(2))["10.240.0.12"]) == COMMUNITIES[2]
        assert _everything(box) == before  # not one session went down, nothing else moved
        for i in NODES:  # and no agent's session started again
            now = {a: s["uptime"] for a, s in bgp.sessions(box, i).items()}
            assert all(now[a] > uptimes[i][a] for a in uptimes[i]), (i, uptimes[i], now)
    finally:  # as the other tests expect it
        ok(box.kubectl("annotate", "node", node3, f"{notes}-"))
        ok(box.kubectl("annotate", "--overwrite", "node", node1, f"{notes}=65000:101"))
    wait_until(
        "the first communities back",
        lambda: (
            bgp.communities(bgp.tor_paths(box, pod_cidr(3))["10.240.0.13"]) == set()
            and bgp.communities(bgp.tor_paths(box, pod_cidr(1))["10.240.0.11"]) == COMMUNITIES[1]
        ),
    )


BAD_PASSWORD = "hunter2-is-not-base64!"
MALFORMED = {  # node -> (a malformed kube-router.io/peers, what its agent must say)
    2: ("- remoteip: 192.0.2.1\n  remoteasn: [65010\n", "not valid YAML (line 3)"),
    3: (f"- remoteip: 192.0.2.1\n  remoteasn: 65010\n  password: '{BAD_PASSWORD}'\n",
        "a password that is not valid base64"),
}  # fmt: skip


def _problem_events(box: Box) -> list[tuple[str, str]]:
    items = json.loads(ok(box.kubectl("get", "events", "-o", "json")))["items"]
    return sorted((e["involvedObject"]["name"], e["message"]) for e in items
                  if e.get("reason") == "InvalidAnnotation")  # fmt: skip


def _syncs(box: Box, index: int) -> float:
    """How many times the node's routing controller planned and applied (its metrics)."""
    for line in bgp.metrics(box, index, METRICS_PORT).splitlines():
        if line.startswith("kube_router_controller_routes_sync_time_count "):
            return float(line.split()[1])
    return 0.0


def test_a_malformed_annotation_is_reported_once_and_changes_nothing(mesh: Box) -> None:
    box = mesh
    before = _everything(box)
    logs_before = {i: len(bgp.agent_log(box, i)) for i in NODES}
    for i, (value, _) in MALFORMED.items():
        ok(box.kubectl("annotate", "node", bgp.node(box, i), f"kube-router.io/peers={value}"))
    try:
        wait_until("an Event on each node", lambda: len(_problem_events(box)) == len(MALFORMED))
        # Another change (a label) makes every agent plan again: nothing is said twice.
        synced = {i: _syncs(box, i) for i in NODES}
        ok(box.kubectl("label", "node", bgp.node(box, 1), "example.com/touched=1"))
        wait_until("every agent planned again",
                   lambda: all(_syncs(box, i) > synced[i] for i in NODES))  # fmt: skip
        events = _problem_events(box)
        assert [name for name, _ in events] == [bgp.node(box, i) for i in MALFORMED]
        for (name, message), (_, said) in zip(events, MALFORMED.values(), strict=True):
            assert message == f"annotation kube-router.io/peers: {said}", name
        for i in NODES:  # every agent reads every Node; each says each problem once
            log = bgp.agent_log(box, i)[logs_before[i] :]
            for bad, (_, said) in MALFORMED.items():
                line = f"node {bgp.node(box, bad)}: annotation kube-router.io/peers: {said}"
                assert log.count(line) == 1, (i, line, log[-2000:])
        assert _everything(box) == before
        assert _secrets_seen(box, [BAD_PASSWORD, PASSWORD]) == []
    finally:
        for i in MALFORMED:
            ok(box.kubectl("annotate", "node", bgp.node(box, i), "kube-router.io/peers-"))
        box.kubectl("label", "node", bgp.node(box, 1), "example.com/touched-")


PROBE = """
import json, signal, socket, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.002)
sent, answered, next_at = 0, set(), time.monotonic()
def receive():
    try:
        answered.add(int(sock.recv(64)))
    except OSError:  # nothing yet, or an ICMP error: the datagram counts as lost
        pass
print("ready", flush=True)
while not stop:
    if time.monotonic() >= next_at:
        try:
            sock.sendto(str(sent).encode(), (sys.argv[1], 9000))
        except OSError:  # no route: lost
            pass
        sent, next_at = sent + 1, next_at + 0.01
    receive()
end = time.monotonic() + 1.0  # the last answers
while time.monotonic() < end:
    receive()
print(json.dumps({"sent": sent, "lost": sorted(set(range(sent)) - answered)}))
"""
ECHO = """
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 9000))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(64)
    sock.sendto(data, peer)
"""


def _start(box: Box, netns: str, script: str, *args: str) -> subprocess.Popen[str]:
    started = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", script, *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert started.stdout is not None and started.stdout.readline().strip() == "ready"
    return started


class RouteWatch(threading.Thread):
    """Reads the nodes' BGP routes and the ToR's table over and over until stopped; keeps
    every reading that differs from the first."""

    def __init__(self, box: Box) -> None:
        super().__init__(daemon=True)
        self.box, self.stopping = box, threading.Event()
        self.expected = self.read()
        self.readings, self.changes = 0, list[Any]()

    def read(self) -> dict[str, Any]:
        kernel = {i: bgp.bgp_routes(self.box, i) for i in NODES}
        return {"kernel": kernel, "tor": bgp.tor_prefixes(self.box)}

    def run(self) -> None:
        while not self.stopping.is_set():
            found = self.read()
            self.readings += 1
            if found != self.expected:
                self.changes.append(found)


def test_an_agent_restarted_with_graceful_restart_loses_no_packet(mesh: Box) -> None:
    box = mesh
    before = bgp.connections(box)
    echo = _start(box, pod(box, 2), ECHO)
    probes = [_start(box, pod(box, i), PROBE, pod_ip(2)) for i in (1, 3)]
    watch = RouteWatch(box)
    watch.start()
    try:
        time.sleep(1.0)
        restarted = ok(box.ctl("agent", "restart", "node2", timeout=120))
        time.sleep(3.0)  # the restarted agent's selection after End-of-RIB, and its kernel sync
    finally:
        watch.stopping.set()
        for probe in probes:
            probe.send_signal(signal.SIGTERM)
        results = [json.loads(probe.communicate(timeout=30)[0]) for probe in probes]
        echo.kill()
        echo.wait()
        watch.join()
    assert "BGP sessions established" in restarted
    for source, result in zip((1, 3), results, strict=True):
        assert result["sent"] > 300 and result["lost"] == [], (source, result)
    tor_log = [line for line in (box.state_dir / "tor" / "bgpd.log").read_text().splitlines()
               if "zclient" not in line]  # fmt: skip
    assert watch.readings > 10 and watch.changes == [], (watch.changes[:3], tor_log[-12:])
    log = bgp.agent_log(box, 2)
    assert "graceful restart: selection deferred" in log, log[-2000:]
    after = bgp.connections(box)  # node2's session came up again; no other one did
    assert after == before | {"10.240.0.12": before["10.240.0.12"] + 1}
    print(f"graceful restart: {results[0]['sent']} and {results[1]['sent']} datagrams,"
          f" none lost; {watch.readings} route readings, all unchanged")  # fmt: skip
