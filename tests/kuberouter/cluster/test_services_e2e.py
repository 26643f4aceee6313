"""The real agents' service proxy, end to end in the cluster in a box (nftables mode).

A two-node box whose pods run the echo workload (each answers with its own name), two
"web" pods (one per node) given as manifests, and Services over them. Nothing here
writes an EndpointSlice: the box's controller manager derives them from the pods, as
kube-controller-manager does, and each node's agent programs its own kernel. Then, with
real connections:
- the ClusterIP, from a pod on every node, on TCP, UDP and SCTP: both web pods answer,
  and they see the client pod's own address;
- a NodePort (externalTrafficPolicy Cluster) from the ToR namespace: both answer, seeing
  the node's address (masqueraded); one with externalTrafficPolicy Local: only the pod on
  that node answers, seeing the ToR's address;
- a pod that stops being Ready leaves the Service's answers; one deleted stays out;
  `kube-router-ctl services` on a node shows what its agent programmed.

LoadBalancer IPs reached from the ToR need the routing controller to advertise them over
BGP (issue 9): when it lands, a Service of type LoadBalancer with an ingress IP belongs
here, probed from the ToR like the NodePorts (the proxy side is in the packet-flow table,
tests/kuberouter/dataplane/test_service_flows.py). Graceful termination is an IPVS
feature and is tested with the IPVS back end in a guest kernel.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from kuberouter.cluster import UpOptions, up
from kuberouter.cluster.api import Api
from kuberouter.cluster.echo import Outcome, probe
from kuberouter.cluster.netns import call_in
from tests.kuberouter.cluster.conftest import Box, new_box, torn_down
from tests.kuberouter.dataplane.echo import next_port

pytestmark = [pytest.mark.privileged, pytest.mark.slow]
CLUSTER_IP = "10.96.0.10"
TRIES = 14  # per check: the chance to miss one of two endpoints is 2**-13
SETTLE = 30.0


def manifests(box: Box) -> list[dict[str, Any]]:
    def web(index: int) -> dict[str, Any]:
        ports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                 {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
                 {"name": "assoc", "containerPort": 9999, "protocol": "SCTP"}]  # fmt: skip
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"web-{index}", "namespace": "default", "labels": {"app": "web"}},
                "spec": {"nodeName": f"{box.name}-node{index}",
                         "containers": [{"name": "echo", "image": "echo", "ports": ports}]}}  # fmt: skip

    def service(name: str, ip: str, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"clusterIP": ip, "clusterIPs": [ip], "selector": {"app": "web"},
                         "ports": ports, **spec}}  # fmt: skip

    http = {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    return [
        web(1),
        web(2),
        service(
            "web",
            CLUSTER_IP,
            [
                http,
                {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
                {"name": "assoc", "port": 9, "targetPort": 9999, "protocol": "SCTP"},
            ],
        ),
        service("web-np", "10.96.0.11", [{**http, "nodePort": 30080}], type="NodePort"),
        service(
            "web-local",
            "10.96.0.12",
            [{**http, "nodePort": 30081}],
            type="NodePort",
            externalTrafficPolicy="Local",
        ),
    ]


class ServiceBox:
    def __init__(self, box: Box) -> None:
        self.box = box
        self.api = Api(box.kubeconfig, f"{box.name}-fabric")
        self.tor = (f"{box.name}-tor", "10.240.0.254")

    def node(self, index: int) -> tuple[str, str]:
        return f"{self.box.name}-node{index}", f"10.240.0.{10 + index}"

    def client(self, index: int) -> tuple[str, str]:
        """The generated pod on node <index> (no Service selects it)."""
        return f"{self.box.name}-node{index}-pod1", f"10.244.{index - 1}.2"

    def probes(self, where: tuple[str, str], ip: str, port: int, protocol: str) -> list[Outcome]:
        netns, source = where
        return [call_in(netns, probe, source, next_port(), ip, port, protocol, 2.0)
                for _ in range(TRIES)]  # fmt: skip

    def answers(self, where: tuple[str, str], ip: str, port: int, protocol: str = "TCP") -> set[tuple[str, str]]:  # fmt: skip
        """{(pod, source it saw)}; every probe must be answered."""
        outcomes = self.probes(where, ip, port, protocol)
        assert all(outcome.answered for outcome in outcomes), outcomes
        return {(outcome.pod, outcome.seen) for outcome in outcomes}

    def until(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + SETTLE
        while not check():
            if time.monotonic() > deadline:
                logs = sorted((self.box.state_dir / "logs").glob("*.log"))
                tails = "\n".join(f"--- {log.name}\n{log.read_text()[-1500:]}" for log in logs)
                raise AssertionError(f"not within {SETTLE}s: {what}\n{tails}")
            time.sleep(0.3)

    def pods_answering(self, where: tuple[str, str], ip: str, port: int) -> set[str]:
        return {outcome.pod for outcome in self.probes(where, ip, port, "TCP") if outcome.answered}

    def set_ready(self, name: str, ready: bool) -> None:
        path = f"/api/v1/namespaces/default/pods/{name}"
        status, pod = self.api.request("GET", path)
        assert status == 200, pod
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
        status, reply = self.api.request("PUT", f"{path}/status", pod)
        assert status == 200, reply


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceBox]:
    box = new_box(tmp_path_factory.mktemp("services"), prefix="sv")
    with torn_down(box):
        path = box.scratch / "web.yaml"
        path.write_text(yaml.safe_dump_all(manifests(box)))
        up(UpOptions(name=box.name, nodes=2, pods_per_node=1, state_dir=box.state_dir,
                     manifests=[str(path)], say=lambda _: None))  # fmt: skip
        made = ServiceBox(box)
        for index in (1, 2):
            made.until(lambda i=index: made.pods_answering(made.client(i), CLUSTER_IP, 80)
                       == {"web-1", "web-2"}, f"the ClusterIP answers from node{index}")  # fmt: skip
        yield made


@pytest.mark.parametrize(("protocol", "port"), [("TCP", 80), ("UDP", 53), ("SCTP", 9)])
def test_cluster_ip_from_pods_on_every_node(services: ServiceBox, protocol: str, port: int) -> None:
    for index in (1, 2):
        client = services.client(index)
        answers = services.answers(client, CLUSTER_IP, port, protocol)
        assert answers == {("web-1", client[1]), ("web-2", client[1])}


def test_node_ports_from_the_tor(services: ServiceBox) -> None:
    node1, node2 = services.node(1), services.node(2)
    answers = services.answers(services.tor, node1[1], 30080)
    assert {pod for pod, _ in answers} == {"web-1", "web-2"}
    # masqueraded: the pods see one of node1's own addresses (fabric or pod gateway)
    assert {seen for _, seen in answers} <= {node1[1], "10.244.0.1"}
    # externalTrafficPolicy Local: this node's pod only, and it sees the client
    assert services.answers(services.tor, node2[1], 30081) == {("web-2", services.tor[1])}
    assert services.answers(services.tor, node1[1], 30081) == {("web-1", services.tor[1])}


def test_readiness_and_deletion_follow_the_pods(services: ServiceBox) -> None:
    client = services.client(1)
    services.set_ready("web-2", False)
    services.until(lambda: services.pods_answering(client, CLUSTER_IP, 80) == {"web-1"},
                   "web-2 leaves the ClusterIP when not Ready")  # fmt: skip
    services.set_ready("web-2", True)
    services.until(lambda: services.pods_answering(client, CLUSTER_IP, 80) == {"web-1", "web-2"},
                   "web-2 comes back when Ready")  # fmt: skip
    assert programmed(services, 1) == ["10.244.0.3:8080", "10.244.1.3:8080"]
    services.api.delete("Pod", "web-2")
    services.until(lambda: services.pods_answering(client, CLUSTER_IP, 80) == {"web-1"},
                   "a deleted pod leaves the ClusterIP")  # fmt: skip
    assert programmed(services, 1) == ["10.244.0.3:8080"]


def programmed(services: ServiceBox, node: int) -> list[str]:
    """The ClusterIP's endpoints as `kube-router-ctl services` on that node reports them."""
    report = services.box.exec_in(
        services.node(node)[0], sys.executable, "-m", "kuberouter.ctl", "services", "-o", "json"
    )
    assert report.returncode == 0, report.stderr
    web = {entry["service"]: entry for entry in json.loads(report.stdout)["services"]}
    return [endpoint["address"] for endpoint in web["default/web"]["ports"][0]["endpoints"]]
