"""Node, Service and EndpointSlice views: what they keep, API defaults, typed refusals."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kuberouter.model import (
    KINDS,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    InvalidObject,
    Node,
    Service,
    ServicePort,
)


def node(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "n1", "annotations": annotations or {}},
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "FD00::0:1"},
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "ExternalIP", "address": "203.0.113.1"},
            ]
        },
    }


def test_node_pod_cidrs_addresses_and_annotations() -> None:
    view = Node.from_k8s(
        node(
            {
                "kube-router.io/node.asn": "4200000000",
                "kube-router.io/rr.server": "10.0.0.9",
                "kube-router.io/peer.ips": "192.0.2.1",
                "other.io/big": "x" * 1000,
            },
            podCIDR="10.244.0.0/24",
        )
    )
    assert view.key == "n1"
    assert view.pod_cidrs == ("10.244.0.0/24",)  # podCIDR alone is enough
    assert view.internal_ips == ("fd00::1", "10.0.0.1") and view.external_ips == ("203.0.113.1",)
    assert view.primary_ip(4) == "10.0.0.1" and view.primary_ip(6) == "fd00::1"
    assert (view.bgp.asn, view.bgp.rr_server, view.bgp.rr_client) == (4200000000, "10.0.0.9", None)
    assert dict(view.annotations) == {
        "kube-router.io/node.asn": "4200000000",
        "kube-router.io/rr.server": "10.0.0.9",
        "kube-router.io/peer.ips": "192.0.2.1",
    }
    assert view.effective_pod_cidrs == ("10.244.0.0/24",)
    both = Node.from_k8s(node(podCIDR="10.9.0.0/24", podCIDRs=["10.244.0.1/24", "fd00::/64"]))
    assert both.pod_cidrs == ("10.244.0.0/24", "fd00::/64")  # podCIDRs wins, host bits dropped


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("kube-router.io/node.asn", "0", "outside"),
        ("kube-router.io/node.asn", "sixty", "not a number"),
        ("kube-router.io/pod-cidrs", "10.0.0.0/24,banana/8", "'banana/8' is not a CIDR"),
        ("kube-router.io/bgp-local-addresses", "10.0.0.300", "not an IP address"),
        ("kube-router.io/rr.client", "cluster-a", "not a cluster ID"),
        ("kube-router.io/path-prepend.as", "64999", "must be set together"),
    ],
)
def test_a_bad_annotation_is_a_problem_not_a_refused_node(
    key: str, value: str, reason: str
) -> None:
    """The node keeps its addresses and pod CIDRs (every controller needs them); the bad
    annotation reads as absent and is reported with its key."""
    view = Node.from_k8s(node({key: value, "kube-router.io/node.asn": "65010"} | {key: value},
                              podCIDR="10.244.0.0/24"))  # fmt: skip
    assert view.internal_ips and view.effective_pod_cidrs == ("10.244.0.0/24",)
    [problem] = view.bgp.problems
    assert problem.annotation == key and reason in problem.message
    if key != "kube-router.io/node.asn":
        assert view.bgp.asn == 65010  # the good annotations still count


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    meta = {
        "name": "s",
        "namespace": "ns",
        "labels": {"service.kubernetes.io/service-proxy-name": "x"},
    }
    return {"metadata": meta, "spec": spec, "status": status or {}}


def test_service_defaults_follow_the_api() -> None:
    view = Service.from_k8s(service({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}))
    assert view.key == "ns/s"
    assert view.type == "ClusterIP" and view.cluster_ips == ("10.96.0.10",)
    assert view.ports == (ServicePort(port=53, target_port=53),)
    assert (view.external_traffic_policy, view.internal_traffic_policy) == ("Cluster", "Cluster")
    assert (view.session_affinity, view.session_affinity_timeout) == ("None", 10800)
    assert not view.headless and view.proxy_name == "x"


def test_service_addresses_ports_and_kinds() -> None:
    view = Service.from_k8s(
        service(
            {
                "type": "NodePort",
                "clusterIPs": ["10.96.0.10", "fd00:96::a"],
                "externalIPs": ["192.0.2.5"],
                "ports": [{"name": "h", "port": 80, "targetPort": "8080", "nodePort": 30001}],
            },
            {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}, {"hostname": "a.example"}]}},
        )
    )
    assert view.cluster_ips == ("10.96.0.10", "fd00:96::a")
    assert view.ports == (ServicePort(name="h", port=80, target_port=8080, node_port=30001),)
    assert view.external_ips == ("192.0.2.5",) and view.load_balancer_ips == ("198.51.100.1",)
    headless = Service.from_k8s(service({"clusterIP": "None"}))
    assert headless.headless and headless.cluster_ips == ()
    external = Service.from_k8s(service({"type": "ExternalName", "externalName": "db.example"}))
    assert external.cluster_ips == () and not external.headless


def test_service_load_balancer_fields() -> None:
    plain = Service.from_k8s(service({"type": "LoadBalancer"}))
    assert (plain.load_balancer_class, plain.requested_load_balancer_ip) == ("", "")
    assert (plain.ip_families, plain.ip_family_policy) == ((), "SingleStack")
    spec = {
        "type": "LoadBalancer",
        "loadBalancerClass": "kube-router",
        "loadBalancerIP": "FD00::0005",
        "ipFamilies": ["IPv6", "IPv4"],
        "ipFamilyPolicy": "RequireDualStack",
    }
    view = Service.from_k8s(service(spec))
    assert (view.load_balancer_class, view.requested_load_balancer_ip) == ("kube-router", "fd00::5")
    assert (view.ip_families, view.ip_family_policy) == (("IPv6", "IPv4"), "RequireDualStack")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"type": "Balanced"}, "spec.type"),
        ({"externalTrafficPolicy": "Global"}, "spec.externalTrafficPolicy"),
        ({"ports": [{"port": 0}]}, "spec.ports[0].port"),
        ({"ports": [{"port": 80, "protocol": "ICMP"}]}, "spec.ports[0].protocol"),
        ({"externalIPs": ["not-an-ip"]}, "spec.externalIPs[0]"),
        ({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}, "timeoutSeconds"),
        ({"loadBalancerIP": "10.0.0"}, "spec.loadBalancerIP"),
        ({"ipFamilies": ["IPv5"]}, "spec.ipFamilies[0]"),
        ({"ipFamilyPolicy": "Both"}, "spec.ipFamilyPolicy"),
    ],
)
def test_bad_services_are_refused(spec: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidObject) as raised:
        Service.from_k8s(service(spec))
    assert raised.value.name == "ns/s" and reason in raised.value.reason


def endpoint_slice(address_type: str, endpoints: list[Any], **extra: Any) -> dict[str, Any]:
    meta = {"name": "e", "namespace": "ns", "labels": {"kubernetes.io/service-name": "s"}}
    return {"metadata": meta, "addressType": address_type, "endpoints": endpoints, **extra}


def test_endpoint_slice_conditions_default_as_documented() -> None:
    view = EndpointSlice.from_k8s(
        endpoint_slice(
            "IPv6",
            [
                {"addresses": ["FD00::1"]},
                {"addresses": ["fd00::2"], "conditions": {"ready": False, "terminating": True}},
            ],
            ports=[{"port": 80}, {"name": "dns", "protocol": "UDP"}],
        )
    )
    assert (view.key, view.service_key, view.address_type) == ("ns/e", "ns/s", "IPv6")
    assert view.endpoints == (
        Endpoint(addresses=("fd00::1",)),
        Endpoint(addresses=("fd00::2",), ready=False, serving=True, terminating=True),
    )
    assert view.ports == (EndpointPort(port=80), EndpointPort(name="dns", protocol="UDP"))
    fqdn = EndpointSlice.from_k8s(endpoint_slice("FQDN", [{"addresses": ["db.example"]}]))
    assert fqdn.endpoints[0].addresses == ("db.example",)


@pytest.mark.parametrize(
    ("address_type", "endpoints", "reason"),
    [
        ("IPv5", [], "addressType"),
        ("IPv4", [{"addresses": ["fd00::1"]}], "not an IPv4 address"),
        ("IPv4", [{"addresses": []}], "at least one address"),
        ("IPv4", [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}], "ready"),
    ],
)
def test_bad_endpoint_slices_are_refused(
    address_type: str, endpoints: list[Any], reason: str
) -> None:
    with pytest.raises(InvalidObject) as raised:
        EndpointSlice.from_k8s(endpoint_slice(address_type, endpoints))
    assert raised.value.name == "ns/e" and reason in raised.value.reason


def test_the_new_kinds_are_registered() -> None:
    assert {"Node", "Service", "EndpointSlice"} <= set(KINDS)


def test_a_model_bug_costs_one_object_not_the_agent() -> None:
    from kuberouter.k8s.client import RESOURCES_BY_KIND, convert

    broken = dataclasses.replace(RESOURCES_BY_KIND["Pod"], parse=lambda raw: 1 // 0)
    problem = convert(broken, {"metadata": {"name": "p", "namespace": "ns"}})
    assert isinstance(problem, InvalidObject) and problem.name == "ns/p"
    assert "unreadable (ZeroDivisionError" in problem.reason


# Whatever arrives, the only failure is InvalidObject (a model bug must not look like input).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.sampled_from(
        ["", "None", "10.0.0.1", "fd00::1", "10.0.0.0/8", "TCP", "UDP", "IPv4", "IPv6", "FQDN",
         "LoadBalancer", "Local", "ClientIP", "64512", "kube-router.io/node.asn", "x"]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(
            ["metadata", "name", "namespace", "annotations", "labels", "spec", "status", "ports",
             "port", "protocol", "targetPort", "nodePort", "podCIDR", "podCIDRs", "addresses",
             "type", "address", "clusterIP", "clusterIPs", "externalIPs", "loadBalancer",
             "ingress", "ip", "endpoints", "conditions", "ready", "addressType", "selector",
             "sessionAffinityConfig", "clientIP", "timeoutSeconds", "kube-router.io/pod-cidrs"]
        ),
        inner,
        max_size=4,
    ),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from([Node, Service, EndpointSlice]), body=json_values)
def test_any_input_gives_a_view_or_invalid_object(kind: Any, body: Any) -> None:
    document = body if isinstance(body, dict) else {"spec": body}
    document.setdefault("metadata", {"name": "fuzz", "namespace": "ns"})
    with contextlib.suppress(InvalidObject):
        kind.from_k8s(document)
