"""What a LoadBalancer controller relies on in the test API server, proven with real clients:
Leases as leader election uses them, the Service rules around LoadBalancer fields and status,
and dual-stack service ranges."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kuberouter.testing import serve
from kuberouter.testing.apiserver import ApiServer
from tests.kuberouter.conftest import Kubectl

LEASE = {
    "apiVersion": "coordination.k8s.io/v1",
    "kind": "Lease",
    "metadata": {"name": "lock"},
    "spec": {
        "holderIdentity": "node-a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2025-01-02T03:04:05.5+01:00",
        "renewTime": "2025-01-02T02:04:06Z",
        "leaseTransitions": 0,
    },
}


@pytest.fixture
def srv() -> Iterator[ApiServer]:
    with serve(token="t", service_cidr="10.96.0.0/16,fd00:96::/112") as server:
        yield server


@pytest.fixture
def leases(api: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api)


def status_of(raised: pytest.ExceptionInfo[ApiException]) -> tuple[int, str, str]:
    body = json.loads(raised.value.body)
    return raised.value.status, body["reason"], body["message"]


# Leases.


def test_lease_times_are_stored_as_utc_micro_times(leases: client.CoordinationV1Api) -> None:
    created = leases.create_namespaced_lease("kube-system", LEASE, _preload_content=False)
    spec = json.loads(created.data)["spec"]
    assert spec["acquireTime"] == "2025-01-02T02:04:05.500000Z"
    assert spec["renewTime"] == "2025-01-02T02:04:06.000000Z"


def test_lease_updates_need_the_current_resource_version(
    leases: client.CoordinationV1Api,
) -> None:
    created = leases.create_namespaced_lease("kube-system", LEASE)
    mine = leases.read_namespaced_lease("lock", "kube-system")
    mine.spec.holder_identity = "node-b"
    renewed = leases.replace_namespaced_lease("lock", "kube-system", mine)
    assert renewed.spec.holder_identity == "node-b"

    created.spec.holder_identity = "node-c"  # written from a stale read: refused
    with pytest.raises(ApiException) as raised:
        leases.replace_namespaced_lease("lock", "kube-system", created)
    assert status_of(raised)[:2] == (409, "Conflict")

    blind = {"metadata": {"name": "lock"}, "spec": {"holderIdentity": "node-c"}}
    with pytest.raises(ApiException) as raised:
        leases.replace_namespaced_lease("lock", "kube-system", blind)
    code, reason, message = status_of(raised)
    assert (code, reason) == (422, "Invalid")
    assert "metadata.resourceVersion" in message and "must be specified for an update" in message
    assert leases.read_namespaced_lease("lock", "kube-system").spec.holder_identity == "node-b"

    with pytest.raises(ApiException) as raised:
        leases.create_namespaced_lease("kube-system", LEASE)
    assert status_of(raised)[:2] == (409, "AlreadyExists")


def test_bad_lease_fields_are_refused(srv: ApiServer, http: requests.Session) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({"leaseDurationSeconds": 0}, 422),
        ({"leaseTransitions": -1}, 422),
        ({"renewTime": "yesterday"}, 400),
    ]
    url = f"{srv.url}/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    for spec, code in cases:
        answer = http.post(url, json={"metadata": {"name": "bad"}, "spec": spec})
        assert (answer.status_code, answer.json()["code"]) == (code, code), spec


def test_kubectl_get_lease_shows_the_holder(
    leases: client.CoordinationV1Api, kubectl: Kubectl
) -> None:
    leases.create_namespaced_lease("kube-system", LEASE)
    table = kubectl("get", "lease", "-n", "kube-system").stdout.splitlines()
    assert table[0].split() == ["NAME", "HOLDER", "AGE"]
    assert table[1].split()[:2] == ["lock", "node-a"]
    got = json.loads(kubectl("get", "lease", "lock", "-n", "kube-system", "-o", "json").stdout)
    assert got["spec"]["leaseDurationSeconds"] == 15


# Services: LoadBalancer fields and status.


def lb_service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], **spec},
    }


def test_load_balancer_fields_only_on_load_balancers(core: client.CoreV1Api) -> None:
    for field, value in (("loadBalancerClass", "kube-router"), ("loadBalancerIP", "10.0.0.1")):
        body = lb_service("x", type="ClusterIP", **{field: value})
        with pytest.raises(ApiException) as raised:
            core.create_namespaced_service("default", body)
        code, _, message = status_of(raised)
        assert code == 422 and f"spec.{field}" in message and "may only be used when" in message


def test_load_balancer_class_is_immutable_and_dropped_with_the_type(
    core: client.CoreV1Api,
) -> None:
    core.create_namespaced_service("default", lb_service("web", loadBalancerClass="kube-router"))
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_service("web", "default", {"spec": {"loadBalancerClass": "other"}})
    assert status_of(raised)[0] == 422
    changed = core.patch_namespaced_service("web", "default", {"spec": {"type": "ClusterIP"}})
    assert changed.spec.type == "ClusterIP" and changed.spec.load_balancer_class is None


def test_status_ingress_must_hold_ip_addresses(core: client.CoreV1Api) -> None:
    core.create_namespaced_service("default", lb_service("web"))
    bad = {"status": {"loadBalancer": {"ingress": [{"ip": "not-an-ip"}]}}}
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_service_status("web", "default", bad)
    assert status_of(raised)[0] == 422
    good = {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}, {"hostname": "x"}]}}}
    written = core.patch_namespaced_service_status("web", "default", good)
    assert [i.ip for i in written.status.load_balancer.ingress] == ["203.0.113.1", None]


# Dual-stack service ranges.


def test_dual_stack_policies(core: client.CoreV1Api) -> None:
    single = core.create_namespaced_service("default", lb_service("single"))
    assert single.spec.ip_families == ["IPv4"] and single.spec.ip_family_policy == "SingleStack"
    dual = core.create_namespaced_service(
        "default", lb_service("dual", ipFamilyPolicy="RequireDualStack")
    )
    assert dual.spec.ip_families == ["IPv4", "IPv6"]
    assert dual.spec.cluster_ips[0].startswith("10.96.")
    assert dual.spec.cluster_ips[1].startswith("fd00:96::")
    v6_first = core.create_namespaced_service(
        "default", lb_service("v6", ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv6"])
    )
    assert v6_first.spec.ip_families == ["IPv6", "IPv4"]
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_service("default", lb_service("bad", ipFamilies=["IPv4", "IPv6"]))
    assert status_of(raised)[0] == 422


def test_require_dual_stack_on_a_single_stack_cluster_is_refused() -> None:
    with serve(tls=False) as server:
        api_client = client.ApiClient(client.Configuration(host=server.url))
        with pytest.raises(ApiException) as raised:
            client.CoreV1Api(api_client).create_namespaced_service(
                "default", lb_service("dual", ipFamilyPolicy="RequireDualStack")
            )
        api_client.close()
    code, _, message = status_of(raised)
    assert code == 422 and "not configured for dual-stack" in message
