"""The test API server's audit log names each request as an authorizer sees it, and RBAC rule
matching judges those records as the real authorizer would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch

from kuberouter.k8s.client import USER_AGENT, load_api_client
from kuberouter.testing import audit, rbac, serve
from tests.kuberouter.conftest import Kubectl
from tests.support import require_tools

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"},
       "spec": {"containers": [{"name": "c", "image": "c"}]}}  # fmt: skip


def refs(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(verb, apiGroup, resource, subresource, namespace, name) per resource request."""
    fields = ("apiGroup", "resource", "subresource", "namespace", "name")
    return [(r["verb"], *(r["objectRef"].get(k) for k in fields)) for r in records
            if "objectRef" in r]  # fmt: skip


def test_each_request_is_recorded_with_its_rbac_verb(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    with serve(token="t", audit_log=log) as srv:
        kubeconfig = srv.write_kubeconfig(tmp_path / "kubeconfig")
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        core = client.CoreV1Api(api_client)
        core.create_namespaced_pod("default", POD)
        core.read_namespaced_pod("p1", "default")
        core.list_pod_for_all_namespaces()
        for _ in watch.Watch().stream(core.list_namespaced_pod, "default", timeout_seconds=1):
            pass
        core.patch_namespaced_pod_status("p1", "default", {"status": {"phase": "Running"}})
        core.replace_namespaced_pod("p1", "default", core.read_namespaced_pod("p1", "default"))
        core.delete_namespaced_pod("p1", "default")
        core.delete_collection_namespaced_pod("default")
        client.NetworkingV1Api(api_client).list_network_policy_for_all_namespaces()
        client.ApisApi(api_client).get_api_versions()
        api_client.close()
    records = audit.read(log)
    assert refs(records) == [
        ("create", "", "pods", None, "default", None),
        ("get", "", "pods", None, "default", "p1"),
        ("list", "", "pods", None, None, None),
        ("watch", "", "pods", None, "default", None),
        ("patch", "", "pods", "status", "default", "p1"),
        ("get", "", "pods", None, "default", "p1"),
        ("update", "", "pods", None, "default", "p1"),
        ("delete", "", "pods", None, "default", "p1"),
        ("deletecollection", "", "pods", None, "default", None),
        ("list", "networking.k8s.io", "networkpolicies", None, None, None),
    ]
    assert records[-1]["verb"] == "get" and "objectRef" not in records[-1]
    assert records[-1]["requestURI"] == "/apis/"
    assert {r["kind"] for r in records} == {"Event"}
    assert all(r["apiVersion"] == "audit.k8s.io/v1" for r in records)


def test_the_agent_and_kubectl_are_told_apart(tmp_path: Path) -> None:
    require_tools("kubectl")
    log = tmp_path / "audit.log"
    with serve(token="t", audit_log=log) as srv:
        kubeconfig = srv.write_kubeconfig(tmp_path / "kubeconfig")
        agent_client = load_api_client(str(kubeconfig), None)  # the agent's own client
        client.CoreV1Api(agent_client).list_node()
        agent_client.close()
        Kubectl(kubeconfig, tmp_path / "cache")("get", "nodes")
    agents = {r["userAgent"] for r in audit.read(log) if r["verb"] == "list"}
    assert USER_AGENT in agents and USER_AGENT.startswith("kube-router/")
    assert any(agent.startswith("kubectl/") for agent in agents)


def record(verb: str, resource: str, group: str = "", **ref: str) -> dict[str, Any]:
    return {"verb": verb, "requestURI": "/x",
            "objectRef": {"resource": resource, "apiGroup": group, **ref}}  # fmt: skip


RULES = [
    {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["services/status"], "verbs": ["update"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"],
     "resourceNames": ["kube-router-lb"]},
    {"apiGroups": ["*"], "resources": ["events"], "verbs": ["*"]},
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_record", "allowed"),
    [
        (record("list", "pods"), True),
        (record("get", "pods", namespace="a", name="p"), False),  # only list and watch
        (record("list", "pods", "apps"), False),  # another group
        (record("update", "services", subresource="status", name="s"), True),
        (record("update", "services", name="s"), False),  # the subresource only
        (record("get", "leases", "coordination.k8s.io", name="kube-router-lb"), True),
        (record("get", "leases", "coordination.k8s.io", name="other"), False),
        (record("create", "events", "events.k8s.io"), True),  # wildcards
        ({"verb": "get", "requestURI": "/apis/apps/v1?timeout=32s"}, True),  # discovery
        ({"verb": "get", "requestURI": "/metrics"}, False),
        ({"verb": "post", "requestURI": "/api"}, False),
    ],
)
def test_rbac_rules_judge_records(request_record: dict[str, Any], allowed: bool) -> None:
    assert (rbac.refused(RULES, [request_record]) == []) is allowed


def test_grants_and_what_was_used() -> None:
    records = [record("list", "pods"), record("watch", "pods"), record("list", "nodes")]
    assert rbac.grants(RULES[:1]) - rbac.used(records) == {("", "nodes", "watch")}
    assert rbac.used([record("update", "services", subresource="status")]) == {
        ("", "services/status", "update")
    }
