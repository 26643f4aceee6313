"""The test API server, proven with real clients: the official Python client and kubectl.

Every behaviour the agent relies on is exercised through a real client, so a mistake in
the server's REST conventions shows up here and not as a puzzling agent bug later.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from kuberouter.testing import serve
from kuberouter.testing.apiserver import ApiServer
from kuberouter.testing.patch import json_patch, strategic_merge_patch
from kuberouter.testing.resources import RESOURCES, Resource
from kuberouter.testing.selectors import label_predicate
from tests.kuberouter.conftest import Kubectl
from tests.support import require_tools

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "fixtures" / "k8s" / "basic-cluster.yaml"
TOKEN = "test-token-0123456789"


# Fixtures.


@pytest.fixture
def srv() -> Iterator[ApiServer]:
    with serve(
        token=TOKEN, seed=[FIXTURE], bookmark_interval=0.2, namespace_deletion_delay=0.1
    ) as server:
        yield server


# One entry per kind: its manifest and how the typed Python client names its methods.


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    api: Callable[[client.ApiClient], Any]
    method_suffix: str  # create_<suffix>, read_<suffix>, ...
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def namespaced(self) -> bool:
        return self.method_suffix.startswith("namespaced_")

    def call(self, api_client: client.ApiClient, verb: str, *args: Any, **kwargs: Any) -> Any:
        if self.namespaced:
            kwargs["namespace"] = "web"
        return getattr(self.api(api_client), f"{verb}_{self.method_suffix}")(*args, **kwargs)


KINDS = [
    Kind("Namespace", "namespaces", client.CoreV1Api, "namespace",
         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch"}}),
    Kind("Node", "nodes", client.CoreV1Api, "node",
         {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-c"},
          "spec": {"podCIDR": "10.244.2.0/24"}}),
    Kind("Pod", "pods", client.CoreV1Api, "namespaced_pod",
         {"apiVersion": "v1", "kind": "Pod",
          "metadata": {"name": "web-3", "labels": {"app": "web"}},
          "spec": {"nodeName": "node-a", "containers": [{"name": "nginx", "image": "nginx"}]}}),
    Kind("Service", "services", client.CoreV1Api, "namespaced_service",
         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-lb"},
          "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                   "ports": [{"port": 443, "targetPort": 8443}]}}),
    Kind("EndpointSlice", "endpointslices", client.DiscoveryV1Api, "namespaced_endpoint_slice",
         {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": "web-lb-x1", "labels": {"kubernetes.io/service-name": "web-lb"}},
          "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.10"]}],
          "ports": [{"port": 8443}]}),
    Kind("NetworkPolicy", "networkpolicies", client.NetworkingV1Api, "namespaced_network_policy",
         {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "deny-all"}, "spec": {"podSelector": {}}}),
    Kind("Lease", "leases", client.CoordinationV1Api, "namespaced_lease",
         {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
          "metadata": {"name": "lock"}, "spec": {"holderIdentity": "node-a"}}),
    # Kinds a deployment of the agent creates (daemonset/): stored as given.
    Kind("ConfigMap", "configmaps", client.CoreV1Api, "namespaced_config_map",
         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
          "data": {"cni-conf.json": "{}"}}),
    Kind("Secret", "secrets", client.CoreV1Api, "namespaced_secret",
         {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "peers"},
          "type": "Opaque", "data": {"password": "c2VjcmV0"}}),
    Kind("ServiceAccount", "serviceaccounts", client.CoreV1Api, "namespaced_service_account",
         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "agent"}}),
    Kind("DaemonSet", "daemonsets", client.AppsV1Api, "namespaced_daemon_set",
         {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"hostNetwork": True,
                                         "containers": [{"name": "a", "image": "agent:1"}]}}}}),
    Kind("ClusterRole", "clusterroles", client.RbacAuthorizationV1Api, "cluster_role",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
          "metadata": {"name": "agent"},
          "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]}),
    Kind("ClusterRoleBinding", "clusterrolebindings", client.RbacAuthorizationV1Api,
         "cluster_role_binding",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
          "metadata": {"name": "agent"},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                      "name": "agent"},
          "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "web"}]}),
    Kind("Role", "roles", client.RbacAuthorizationV1Api, "namespaced_role",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
          "metadata": {"name": "agent"},
          "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
    Kind("RoleBinding", "rolebindings", client.RbacAuthorizationV1Api, "namespaced_role_binding",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
          "metadata": {"name": "agent"},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "agent"},
          "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "web"}]}),
]  # fmt: skip
KIND_IDS = [k.kind for k in KINDS]


def resource(kind: str) -> Resource:
    return next(r for r in RESOURCES if r.kind == kind)


def store_get(srv: ApiServer, kind: Kind) -> dict[str, Any]:
    return srv.store.get(resource(kind.kind), "web" if kind.namespaced else None, kind.name)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.02)


def gone(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as error:
        return error.status == 404
    return False


# CRUD on every kind, through both clients.


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_python_client_create_get_label_annotate_list_delete(
    api: client.ApiClient, kind: Kind
) -> None:
    created = kind.call(api, "create", body=copy.deepcopy(kind.manifest))
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.metadata.generation == 1
    assert int(created.metadata.resource_version) > 0
    assert kind.call(api, "read", kind.name).metadata.uid == created.metadata.uid

    kind.call(api, "patch", kind.name, body={"metadata": {"labels": {"stage": "test"}}})
    patched = kind.call(api, "patch", kind.name, body={"metadata": {"annotations": {"a": "b"}}})
    assert patched.metadata.labels["stage"] == "test"
    assert patched.metadata.annotations == {"a": "b"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    listed = kind.call(api, "list", label_selector="stage=test")
    assert [item.metadata.name for item in listed.items] == [kind.name]
    unlabelled = kind.call(api, "list", label_selector="!stage").items
    assert kind.name not in [item.metadata.name for item in unlabelled]

    kind.call(api, "delete", kind.name)
    wait_for(lambda: gone(lambda: kind.call(api, "read", kind.name)))


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_kubectl_create_get_label_annotate_delete(
    srv: ApiServer, kubectl: Kubectl, tmp_path: Path, kind: Kind
) -> None:
    manifest = tmp_path / f"{kind.kind}.yaml"
    manifest.write_text(yaml.safe_dump(kind.manifest))
    scope = ["-n", "web"] if kind.namespaced else []

    assert "created" in kubectl("create", "-f", str(manifest), *scope).stdout
    got = json.loads(kubectl("get", kind.plural, kind.name, "-o", "json", *scope).stdout)
    assert got["kind"] == kind.kind and got["metadata"]["uid"]
    kubectl("label", kind.plural, kind.name, "stage=test", *scope)
    kubectl("annotate", kind.plural, kind.name, "note=hello", *scope)
    stored = store_get(srv, kind)
    assert stored["metadata"]["labels"]["stage"] == "test"
    assert stored["metadata"]["annotations"] == {"note": "hello"}
    names = kubectl("get", kind.plural, "-l", "stage=test", "-o", "name", *scope).stdout.split()
    assert names == [f"{_kubectl_type(kind)}/{kind.name}"]
    table = kubectl("get", kind.plural, *scope).stdout
    assert table.startswith("NAME") and kind.name in table

    kubectl("delete", "-f", str(manifest), *scope)
    with pytest.raises(Exception, match="not found"):
        store_get(srv, kind)


def _kubectl_type(kind: Kind) -> str:
    """How `kubectl get -o name` prefixes a name: the resource, qualified by its group."""
    group = kind.manifest["apiVersion"].rpartition("/")[0]
    singular = kind.kind.lower()
    return f"{singular}.{group}" if group else singular


def test_seed_fixture_is_a_small_cluster_every_client_model_accepts(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    nodes = core.list_node().items
    assert {n.metadata.name: n.spec.pod_cidr for n in nodes} == {
        "node-a": "10.244.0.0/24",
        "node-b": "10.244.1.0/24",
    }
    assert nodes[0].spec.pod_cidrs == ["10.244.0.0/24"]  # filled in, as the real server does
    namespaces = {n.metadata.name for n in core.list_namespace().items}
    assert {"web", "db", "default", "kube-system"} <= namespaces
    pods = core.list_pod_for_all_namespaces().items
    assert [p.status.pod_ips[0].ip for p in pods] == ["10.244.1.20", "10.244.0.10", "10.244.1.10"]
    assert core.list_service_for_all_namespaces().items[0].spec.cluster_ip == "10.96.0.50"
    slices = client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces().items
    assert slices[0].endpoints[1].addresses == ["10.244.1.10"]
    policy = client.NetworkingV1Api(api).list_network_policy_for_all_namespaces().items[0]
    assert policy.spec.policy_types == ["Ingress"]


# Lists: selectors and pagination.

SELECTOR_CASES = [
    ("app=web", "", ["web/web-1", "web/web-2"]),
    ("app==web", "", ["web/web-1", "web/web-2"]),
    ("app!=web", "", ["db/postgres-0"]),
    ("app in (web, postgres)", "", ["db/postgres-0", "web/web-1", "web/web-2"]),
    ("app notin (web)", "", ["db/postgres-0"]),
    ("app", "", ["db/postgres-0", "web/web-1", "web/web-2"]),
    ("!app", "", []),
    ("app=web,app!=postgres", "", ["web/web-1", "web/web-2"]),
    ("", "spec.nodeName=node-b", ["db/postgres-0", "web/web-2"]),
    ("", "spec.nodeName!=node-b", ["web/web-1"]),
    ("app=web", "metadata.name=web-2", ["web/web-2"]),
    ("", "metadata.namespace=db", ["db/postgres-0"]),
]


@pytest.mark.parametrize(("labels", "fields", "expected"), SELECTOR_CASES)
def test_list_pods_with_selectors(
    core: client.CoreV1Api, labels: str, fields: str, expected: list[str]
) -> None:
    pods = core.list_pod_for_all_namespaces(label_selector=labels, field_selector=fields).items
    assert [f"{p.metadata.namespace}/{p.metadata.name}" for p in pods] == expected


def test_list_within_one_namespace_and_bad_selectors(core: client.CoreV1Api) -> None:
    assert [p.metadata.name for p in core.list_namespaced_pod("web").items] == ["web-1", "web-2"]
    for bad in ({"label_selector": "app in ("}, {"field_selector": "spec.color=red"}):
        with pytest.raises(ApiException) as raised:
            core.list_namespaced_pod("web", **bad)
        assert raised.value.status == 400


def test_kubectl_label_selector_and_chunked_list(kubectl: Kubectl) -> None:
    names = kubectl("get", "pods", "-A", "-l", "app in (web)", "-o", "name").stdout.split()
    assert names == ["pod/web-1", "pod/web-2"]
    chunked = kubectl("get", "pods", "-A", "--chunk-size=1", "-o", "name").stdout.split()
    assert chunked == ["pod/postgres-0", "pod/web-1", "pod/web-2"]


def test_limit_and_continue_give_one_consistent_snapshot(
    srv: ApiServer, core: client.CoreV1Api
) -> None:
    first = core.list_pod_for_all_namespaces(limit=1)
    assert first.metadata.remaining_item_count == 2
    srv.store.remove({"kind": "Pod", "metadata": {"name": "web-2", "namespace": "web"}})
    seen, page = [first.items[0].metadata.name], first
    while page.metadata._continue:
        page = core.list_pod_for_all_namespaces(limit=1, _continue=page.metadata._continue)
        assert page.metadata.resource_version == first.metadata.resource_version
        seen += [p.metadata.name for p in page.items]
    assert seen == ["postgres-0", "web-1", "web-2"]  # web-2 was still there at that version
    assert len(core.list_pod_for_all_namespaces().items) == 2


def test_continue_after_compaction_is_410(srv: ApiServer, core: client.CoreV1Api) -> None:
    first = core.list_pod_for_all_namespaces(limit=1)
    core.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"x": "1"}}})
    srv.store.compact()
    with pytest.raises(ApiException) as raised:
        core.list_pod_for_all_namespaces(limit=1, _continue=first.metadata._continue)
    assert raised.value.status == 410
    assert json.loads(raised.value.body)["reason"] == "Expired"


# Watch.


def collect(
    stream: Iterator[dict[str, Any]], done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for event in stream:
        events.append(event)
        if done(events):
            break
    return events


def test_watch_replays_changes_after_a_resource_version_with_bookmarks(
    core: client.CoreV1Api,
) -> None:
    start = core.list_namespaced_pod("web").metadata.resource_version
    pod = {"metadata": {"name": "w1"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    core.create_namespaced_pod("web", pod)
    core.patch_namespaced_pod("w1", "web", {"metadata": {"labels": {"v": "2"}}})
    deleted = core.delete_namespaced_pod("w1", "web")

    watcher = watch.Watch()
    stream = watcher.stream(
        core.list_namespaced_pod, "web", resource_version=start,
        allow_watch_bookmarks=True, timeout_seconds=5,
    )  # fmt: skip
    events = collect(stream, lambda seen: seen[-1]["type"] == "BOOKMARK")
    watcher.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events[:3]] == [
        ("ADDED", "w1"),
        ("MODIFIED", "w1"),
        ("DELETED", "w1"),
    ]
    assert events[1]["object"].metadata.labels == {"v": "2"}
    bookmark = events[-1]["raw_object"]
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(deleted.metadata.resource_version)
    assert watcher.resource_version == bookmark["metadata"]["resourceVersion"]


def test_watch_from_now_sees_live_changes_and_selector_exits(
    srv: ApiServer, core: client.CoreV1Api
) -> None:
    def change() -> None:
        time.sleep(0.2)
        core.patch_namespaced_pod("web-1", "web", {"metadata": {"annotations": {"a": "1"}}})
        pod = srv.store.get(resource("Pod"), "web", "web-2")
        pod["metadata"]["labels"]["app"] = "other"  # injected as a controller would
        srv.store.put(pod)

    threading.Thread(target=change, daemon=True).start()
    watcher = watch.Watch()
    stream = watcher.stream(
        core.list_pod_for_all_namespaces, label_selector="app=web", timeout_seconds=5
    )
    events = collect(stream, lambda seen: len(seen) == 4)
    watcher.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "web-1"),  # no resourceVersion: the current state first
        ("ADDED", "web-2"),
        ("MODIFIED", "web-1"),
        ("DELETED", "web-2"),  # it left the selection
    ]


def test_watch_too_old_resource_version_is_410(
    srv: ApiServer, core: client.CoreV1Api, http: requests.Session
) -> None:
    old = core.list_namespaced_pod("web").metadata.resource_version
    core.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"x": "1"}}})
    srv.store.compact()
    with pytest.raises(ApiException) as raised:
        list(
            watch.Watch().stream(
                core.list_namespaced_pod, "web", resource_version=old, timeout_seconds=2
            )
        )
    assert raised.value.status == 410

    # On the wire: HTTP 200, then one ERROR event carrying an Expired Status.
    response = http.get(
        f"{srv.url}/api/v1/namespaces/web/pods?watch=1&resourceVersion={old}", timeout=5
    )
    assert response.status_code == 200
    event = json.loads(response.text.splitlines()[0])
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


def test_bounded_history_expires_old_versions(core: client.CoreV1Api) -> None:
    with serve(history_size=3, tls=False) as small:
        api_client = client.ApiClient(client.Configuration(host=small.url))
        small_core = client.CoreV1Api(api_client)
        start = small_core.list_namespace().metadata.resource_version
        for index in range(4):
            small_core.patch_namespace("default", {"metadata": {"labels": {"n": str(index)}}})
        with pytest.raises(ApiException) as raised:
            list(
                watch.Watch().stream(
                    small_core.list_namespace, resource_version=start, timeout_seconds=1
                )
            )
        assert raised.value.status == 410
        api_client.close()


def test_watch_timeout_seconds_is_honoured(core: client.CoreV1Api) -> None:
    began = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_pod, "db", timeout_seconds=1))
    assert [e["type"] for e in events] == ["ADDED"]
    assert 0.9 <= time.monotonic() - began < 3


def test_dropped_watch_connections_break_the_stream(srv: ApiServer, core: client.CoreV1Api) -> None:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            list(watch.Watch().stream(core.list_namespaced_pod, "web", timeout_seconds=10))
        except Exception as error:  # the broken connection surfaces as a urllib3 error
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    began = time.monotonic()
    thread.start()
    time.sleep(0.3)
    srv.store.drop_watches()
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - began < 5
    assert failures, "the stream ended cleanly instead of breaking"


def first_events(http: requests.Session, url: str, count: int) -> list[dict[str, Any]]:
    with http.get(url, stream=True) as response:
        lines = response.iter_lines()
        return [json.loads(next(lines)) for _ in range(count)]


def test_legacy_watch_path_and_initial_events(srv: ApiServer, http: requests.Session) -> None:
    legacy = first_events(http, f"{srv.url}/api/v1/watch/namespaces/web/pods/web-2", 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in legacy] == [("ADDED", "web-2")]

    query = "watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
    added, bookmark = first_events(http, f"{srv.url}/api/v1/namespaces/db/pods?{query}", 2)
    assert added["object"]["metadata"]["name"] == "postgres-0"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_a_watch_ends_when_its_client_hangs_up(srv: ApiServer, http: requests.Session) -> None:
    url = f"{srv.url}/api/v1/pods?watch=true&timeoutSeconds=60"
    with http.get(url, stream=True, headers={"Connection": "close"}) as response:
        assert json.loads(next(response.iter_lines()))["type"] == "ADDED"
        assert srv.connection_count == 1
    wait_for(lambda: srv.connection_count == 0, timeout=4)


def test_latency_slows_every_answer(srv: ApiServer, core: client.CoreV1Api) -> None:
    srv.store.latency = 0.3
    began = time.monotonic()
    core.read_namespace("web")
    assert time.monotonic() - began >= 0.3


# Status subresource.


def test_service_status_subresource_sets_load_balancer_ingress(
    core: client.CoreV1Api, kubectl: Kubectl
) -> None:
    before = core.read_namespaced_service("web", "web")
    ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}
    core.patch_namespaced_service_status("web", "web", ingress | {"spec": {"type": "NodePort"}})
    after = core.read_namespaced_service("web", "web")
    assert after.status.load_balancer.ingress[0].ip == "203.0.113.7"
    assert after.spec.type == "ClusterIP"  # only status changes through /status
    assert after.metadata.generation == before.metadata.generation
    assert "203.0.113.7" in kubectl("get", "svc", "web", "-n", "web").stdout

    # And the main resource ignores status, while a spec change bumps generation.
    service = core.read_namespaced_service("web", "web")
    service.status = client.V1ServiceStatus(load_balancer=client.V1LoadBalancerStatus())
    service.spec.session_affinity = "ClientIP"
    replaced = core.replace_namespaced_service("web", "web", service)
    assert replaced.status.load_balancer.ingress[0].ip == "203.0.113.7"
    assert replaced.metadata.generation == before.metadata.generation + 1


def test_kubectl_patch_status_subresource(kubectl: Kubectl, core: client.CoreV1Api) -> None:
    patch = '{"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.9"}]}}}'
    kubectl("patch", "svc", "web", "-n", "web", "--subresource=status", "--type=merge", "-p", patch)
    assert (
        core.read_namespaced_service_status("web", "web").status.load_balancer.ingress[0].ip
        == "198.51.100.9"
    )


# Errors, auth, server-filled fields.


def test_errors_are_status_objects(srv: ApiServer, http: requests.Session) -> None:
    pods = f"{srv.url}/api/v1/namespaces/web/pods"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1"},
        "spec": {"containers": []},
    }
    cases = [
        (http.get(f"{pods}/nope"), 404, "NotFound"),
        (http.post(pods, json=pod), 409, "AlreadyExists"),
        (
            http.post(pods, data=b"{not json", headers={"Content-Type": "application/json"}),
            400,
            "BadRequest",
        ),
        (http.post(pods, json={"metadata": {}}), 422, "Invalid"),
        (http.post(f"{srv.url}/api/v1/namespaces/nope/pods", json=pod), 404, "NotFound"),
        (http.get(f"{srv.url}/api/v1/foos"), 404, "NotFound"),
        (
            http.patch(f"{pods}/web-1", data=b"{}", headers={"Content-Type": "text/plain"}),
            415,
            "UnsupportedMediaType",
        ),
    ]
    for response, code, reason in cases:
        status = response.json()
        assert (response.status_code, status["kind"], status["code"], status["reason"]) == (
            code, "Status", code, reason,
        ), status  # fmt: skip


def test_update_with_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    stale = core.read_namespaced_pod("web-1", "web")
    core.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"fresh": "yes"}}})
    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_pod("web-1", "web", stale)
    assert raised.value.status == 409
    assert json.loads(raised.value.body)["reason"] == "Conflict"
    with pytest.raises(ApiException) as raised:  # a patch naming an old version, too
        core.patch_namespaced_pod("web-1", "web", {"metadata": {"resourceVersion": "1"}})
    assert raised.value.status == 409


def test_delete_returns_the_object_and_no_op_writes_keep_the_version(
    core: client.CoreV1Api,
) -> None:
    pod = core.read_namespaced_pod("web-1", "web")
    same = core.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"app": "web"}}})
    assert same.metadata.resource_version == pod.metadata.resource_version
    deleted = core.delete_namespaced_pod("web-1", "web")
    assert deleted.metadata.uid == pod.metadata.uid  # the object, as the real server answers


def test_namespace_deletion_terminates_then_removes_its_contents(core: client.CoreV1Api) -> None:
    core.delete_namespace("web")
    assert core.read_namespace("web").status.phase == "Terminating"
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(
            "web", {"metadata": {"name": "late"}, "spec": {"containers": []}}
        )
    assert raised.value.status == 403
    wait_for(lambda: gone(lambda: core.read_namespace("web")))
    assert core.list_namespaced_pod("web").items == []


def test_services_get_cluster_ips_and_node_ports(core: client.CoreV1Api) -> None:
    spec = {"type": "NodePort", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}
    created = core.create_namespaced_service("web", {"metadata": {"name": "np"}, "spec": spec})
    assert created.spec.cluster_ip.startswith("10.96.") and created.spec.cluster_ip != "10.96.0.50"
    assert [p.node_port for p in created.spec.ports] == [30000, 30001]
    assert [p.target_port for p in created.spec.ports] == [80, 53]
    dry = core.create_namespaced_service(
        "web", {"metadata": {"name": "dry"}, "spec": {"ports": [{"port": 1}]}}, dry_run="All"
    )
    assert dry.spec.cluster_ip and gone(lambda: core.read_namespaced_service("dry", "web"))


def test_a_service_keeps_its_cluster_ip_and_a_deleted_one_frees_it(core: client.CoreV1Api) -> None:
    def create(name: str, ip: str) -> Any:
        spec = {"clusterIP": ip, "ports": [{"port": 80}]}
        return core.create_namespaced_service("web", {"metadata": {"name": name}, "spec": spec})

    create("a", "10.96.7.7")
    with pytest.raises(ApiException, match="already allocated"):
        create("b", "10.96.7.7")
    labelled = {"metadata": {"labels": {"x": "1"}}}
    assert core.patch_namespaced_service("a", "web", labelled).spec.cluster_ip == "10.96.7.7"
    core.delete_namespaced_service("a", "web")
    assert create("b", "10.96.7.7").spec.cluster_ip == "10.96.7.7"


def test_a_page_with_a_selector_leaves_the_remaining_count_out(
    core: client.CoreV1Api, srv: ApiServer
) -> None:
    for number in range(3):
        meta = {"name": f"extra-{number}", "namespace": "web", "labels": {"app": "web"}}
        srv.store.put({"kind": "Pod", "metadata": meta})
    plain = core.list_namespaced_pod("web", limit=2)
    assert plain.metadata.remaining_item_count == len(core.list_namespaced_pod("web").items) - 2
    selected = core.list_namespaced_pod("web", limit=2, label_selector="app=web")
    assert selected.metadata._continue and selected.metadata.remaining_item_count is None
    rest = core.list_namespaced_pod(
        "web", limit=10, label_selector="app=web", _continue=selected.metadata._continue
    )
    names = [p.metadata.name for p in selected.items + rest.items]
    assert names == sorted(names) and len(names) == len(set(names)) >= 3
    assert not rest.metadata._continue


def test_token_is_required(srv: ApiServer, kubeconfig: Path, tmp_path: Path, ca_file: Path) -> None:
    anonymous = yaml.safe_load(kubeconfig.read_text())
    anonymous["users"][0]["user"] = {}
    no_token = tmp_path / "anonymous"
    no_token.write_text(yaml.safe_dump(anonymous))
    api_client = config.new_client_from_config(config_file=str(no_token))
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(api_client).list_node()
    assert raised.value.status == 401
    api_client.close()

    with requests.Session() as session:
        session.trust_env, session.verify = False, str(ca_file)
        wrong = session.get(f"{srv.url}/api/v1/nodes", headers={"Authorization": "Bearer x"})
        assert (wrong.status_code, wrong.json()["reason"]) == (401, "Unauthorized")
        assert session.get(f"{srv.url}/version").json()["gitVersion"] == "v1.32.0"  # public


def test_kubectl_with_a_wrong_token_is_refused(kubeconfig: Path, tmp_path: Path) -> None:
    require_tools("kubectl")
    # (With no token at all kubectl would prompt for a username instead.)
    wrong = yaml.safe_load(kubeconfig.read_text())
    wrong["users"][0]["user"] = {"token": "not-the-token"}
    (tmp_path / "wrong").write_text(yaml.safe_dump(wrong))
    result = Kubectl(tmp_path / "wrong", tmp_path / "cache")("get", "nodes", check=False)
    assert result.returncode != 0
    assert "provide credentials" in result.stderr


def test_discovery_documents(kubectl: Kubectl) -> None:
    resources = kubectl("api-resources", "--no-headers").stdout
    for name in (
        "namespaces", "nodes", "pods", "services", "endpointslices", "networkpolicies", "leases",
    ):  # fmt: skip
        assert name in resources
    assert "Server Version: v1.32.0" in kubectl("version").stdout


# The command line.


def test_command_line_server_prints_its_url_and_serves(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    kubeconfig = tmp_path / "kubeconfig"
    command = [
        sys.executable, "-m", "kuberouter.testing.apiserver", "--port", "0",
        "--token-file", str(token_file), "--seed", str(FIXTURE), "--kubeconfig", str(kubeconfig),
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("https://127.0.0.1:")
            api_client = config.new_client_from_config(config_file=str(kubeconfig))
            nodes = client.CoreV1Api(api_client).list_node().items
            assert [n.metadata.name for n in nodes] == ["node-a", "node-b"]
            api_client.close()
        finally:
            process.terminate()
        assert process.wait(timeout=5) == 0


# The pure parts, on cases the clients above do not reach.


def test_label_selector_edge_cases() -> None:
    labels = {"metadata": {"labels": {"tier": "web", "size": "5"}}}
    assert label_predicate("size>3,size<9")(labels)
    assert label_predicate("tier notin (db),!absent")(labels)
    assert not label_predicate("absent in (x)")(labels)
    assert label_predicate("absent!=x")(labels)  # an absent label differs from any value


def test_strategic_merge_patch_merges_keyed_lists() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}
    patch = {"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "c", "image": "1"}]}}
    merged = strategic_merge_patch(pod, patch)
    assert [(c["name"], c["image"]) for c in merged["spec"]["containers"]] == [
        ("a", "1"), ("b", "2"), ("c", "1"),
    ]  # fmt: skip
    removed = strategic_merge_patch(
        merged, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}
    )
    assert [c["name"] for c in removed["spec"]["containers"]] == ["b", "c"]
    assert pod["spec"]["containers"][1]["image"] == "1"  # inputs are never changed


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "items": [1, 2]}
    patched = json_patch(doc, [
        {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
        {"op": "remove", "path": "/metadata/labels/a"},
        {"op": "add", "path": "/items/-", "value": 3},
        {"op": "replace", "path": "/items/0", "value": 0},
        {"op": "test", "path": "/items/2", "value": 3},
    ])  # fmt: skip
    assert patched == {"metadata": {"labels": {"b/c": "2"}}, "items": [0, 2, 3]}
