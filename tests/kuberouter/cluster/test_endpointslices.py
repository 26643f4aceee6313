"""The box's EndpointSlice controller computes what kube-controller-manager would."""

from __future__ import annotations

from typing import Any

from kuberouter.cluster.endpointslices import desired_slices
from kuberouter.model import EndpointSlice


def pod(name: str, ip: str, *, labels: dict[str, str] | None = None, ready: bool = True,
        terminating: bool = False, phase: str = "Running", node: str = "n1",
        ports: list[dict[str, Any]] | None = None, namespace: str = "default") -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels or {"app": "web"},
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}]},
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }  # fmt: skip


def service(name: str = "web", selector: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:  # fmt: skip
    body = {"selector": {"app": "web"} if selector is None else selector, "clusterIPs": ["10.96.0.1"],
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}  # fmt: skip
    return {"metadata": {"name": name, "namespace": "default"}, "spec": body}


def endpoints(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        endpoint["targetRef"]["name"]: endpoint["conditions"]
        for item in found.values()
        for endpoint in item["endpoints"]
    }


def test_selected_pods_with_their_readiness_and_termination() -> None:
    pods = [pod("a", "10.1.0.1"), pod("b", "10.1.0.2", ready=False),
            pod("c", "10.1.0.3", terminating=True), pod("d", "10.1.0.4", phase="Succeeded"),
            pod("e", "10.1.0.5", labels={"app": "other"}),
            pod("f", "10.1.0.6", namespace="elsewhere")]  # fmt: skip
    found = desired_slices([service()], pods)
    assert endpoints(found) == {
        "a": {"ready": True, "serving": True, "terminating": False},
        "b": {"ready": False, "serving": False, "terminating": False},
        "c": {"ready": False, "serving": True, "terminating": True},
    }
    (only,) = found.values()
    assert only["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert only["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    # what the agents read of it is what the proxy model accepts
    parsed = EndpointSlice.from_k8s(only)
    assert parsed.service_key == "default/web" and len(parsed.endpoints) == 3


def test_named_target_ports_group_pods_by_their_numbers() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    pods = [pod("a", "10.1.0.1", ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "10.1.0.2", ports=[{"name": "web", "containerPort": 9090}]),
            pod("c", "10.1.0.3", ports=[{"name": "other", "containerPort": 7070}])]  # fmt: skip
    found = desired_slices([svc], pods)
    by_port = {item["ports"][0]["port"] if item["ports"] else None: [e["targetRef"]["name"] for e in item["endpoints"]]
               for item in found.values()}  # fmt: skip
    assert by_port == {8080: ["a"], 9090: ["b"], None: ["c"]}


def test_services_without_selector_and_external_names_are_not_managed() -> None:
    pods = [pod("a", "10.1.0.1")]
    assert desired_slices([service(selector={})], pods) == {}
    assert desired_slices([service(type="ExternalName")], pods) == {}


def test_publish_not_ready_addresses_and_large_services() -> None:
    pods = [pod(f"p{n:03}", f"10.1.{n // 200}.{n % 200 + 1}", ready=False) for n in range(250)]
    found = desired_slices([service(publishNotReadyAddresses=True)], pods)
    assert sorted(len(item["endpoints"]) for item in found.values()) == [50, 100, 100]
    assert all(state["ready"] for state in endpoints(found).values())


def test_names_are_stable_and_dual_stack_gets_a_slice_per_family() -> None:
    both = pod("a", "10.1.0.1")
    both["status"]["podIPs"].append({"ip": "fd01::1"})
    svc = service(clusterIPs=["10.96.0.1", "fd00::1"], ipFamilies=["IPv4", "IPv6"])
    first = desired_slices([svc], [both])
    assert first == desired_slices([svc], [both])
    assert sorted(item["addressType"] for item in first.values()) == ["IPv4", "IPv6"]
