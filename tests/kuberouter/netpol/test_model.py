"""Model parsing: the fields controllers use, defaults as the API documents, typed refusals."""

from __future__ import annotations

from typing import Any

import pytest

from kuberouter.model import (
    ContainerPort,
    InvalidObject,
    IPBlock,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    Pod,
    PolicyPort,
)
from tests.kuberouter.netpol.builders import pod_dict


def make_policy(spec: dict[str, Any], name: str = "p") -> NetworkPolicy:
    return NetworkPolicy.from_k8s({"metadata": {"name": name, "namespace": "x"}, "spec": spec})


def test_pod_keeps_what_controllers_use() -> None:
    raw = pod_dict(
        "x/a",
        ("10.0.0.1", "FD00:0:0::1"),
        labels={"app": "web"},
        node="node-1",
        ports=(("http", 80, "TCP"), (None, 53, "UDP")),
    )
    raw["spec"]["containers"][0]["image"] = "ignored"
    pod = Pod.from_k8s(raw)
    assert pod.key == "x/a"
    assert dict(pod.labels) == {"app": "web"}
    assert pod.node_name == "node-1"
    assert pod.ips == ("10.0.0.1", "fd00::1")  # normalised
    assert pod.ips_of_family(6) == ("fd00::1",)
    assert pod.container_ports == (ContainerPort("http", 80, "TCP"), ContainerPort(None, 53, "UDP"))
    assert pod.phase == "Running" and not pod.host_network and not pod.finished


def test_pod_ip_falls_back_to_status_pod_ip_and_namespace_to_default() -> None:
    pod = Pod.from_k8s({"metadata": {"name": "a"}, "status": {"podIP": "10.1.1.1"}})
    assert pod.namespace == "default"
    assert pod.ips == ("10.1.1.1",)
    assert pod.container_ports == ()


def test_container_port_protocol_defaults_to_tcp() -> None:
    raw = {
        "metadata": {"name": "a"},
        "spec": {"containers": [{"ports": [{"containerPort": 8080}]}]},
    }
    assert Pod.from_k8s(raw).container_ports == (ContainerPort(None, 8080, "TCP"),)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"metadata": {"name": "a"}, "status": {"podIP": "10.0.0.300"}}, "not an IP address"),
        ({"metadata": {"name": "a", "labels": {"v": 1}}}, "not a string pair"),
        (
            {
                "metadata": {"name": "a"},
                "spec": {"containers": [{"ports": [{"containerPort": 0}]}]},
            },
            "outside",
        ),
        ({"metadata": {"name": "a"}, "spec": {"hostNetwork": "yes"}}, "true or false"),
        ({"metadata": {}}, "required"),
    ],
)
def test_bad_pod_is_a_typed_error(raw: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidObject) as caught:
        Pod.from_k8s(raw)
    assert caught.value.kind == "Pod"
    assert reason in caught.value.reason


def test_namespace_gets_the_automatic_name_label() -> None:
    namespace = Namespace.from_k8s({"metadata": {"name": "y", "labels": {"team": "a"}}})
    assert dict(namespace.labels) == {"team": "a", "kubernetes.io/metadata.name": "y"}


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({}, ("Ingress",)),
        ({"ingress": [{}]}, ("Ingress",)),
        ({"egress": [{}]}, ("Ingress", "Egress")),
        ({"egress": []}, ("Ingress",)),  # an empty list is no egress section (Go: len != 0)
        ({"policyTypes": ["Egress"], "ingress": [{}]}, ("Egress",)),
        ({"policyTypes": []}, ("Ingress",)),
        ({"policyTypes": ["Egress", "Ingress"]}, ("Ingress", "Egress")),
    ],
)
def test_policy_types_default_as_documented(spec: dict[str, Any], types: tuple[str, ...]) -> None:
    assert make_policy(spec).policy_types == types


def test_policy_parses_every_feature() -> None:
    policy = make_policy(
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"role": "api"}}, "namespaceSelector": {}},
                        {"ipBlock": {"cidr": "10.0.0.5/8", "except": ["10.1.0.0/16"]}},
                    ],
                    "ports": [
                        {"port": "http"},
                        {"port": 5000, "endPort": 5010, "protocol": "UDP"},
                        {"protocol": "SCTP"},
                    ],
                }
            ],
        }
    )
    assert policy.pod_selector == LabelSelector.from_k8s({"matchLabels": {"app": "db"}})
    (rule,) = policy.ingress
    selectors, block = rule.peers
    assert selectors.namespace_selector == LabelSelector.everything()
    assert block.ip_block == IPBlock(cidr="10.0.0.0/8", except_=("10.1.0.0/16",))
    assert rule.ports == (
        PolicyPort(protocol="TCP", port="http"),
        PolicyPort(protocol="UDP", port=5000, end_port=5010),
        PolicyPort(protocol="SCTP", port=None),
    )


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}, "not a CIDR"),
        ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]}, "not a CIDR"),
        (
            {
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}
                ]
            },
            "strict subset",
        ),
        (
            {
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}
                ]
            },
            "strict subset",
        ),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/64"]}}]}]},
            "strict subset",
        ),
        ({"ingress": [{"from": [{}]}]}, "must set podSelector"),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "cannot be combined",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}},
            "unknown operator",
        ),
        ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "NotIn"}]}}, "non-empty"),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}},
            "non-empty",
        ),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
                }
            },
            "must be empty",
        ),
        ({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "unsupported protocol"),
        ({"ingress": [{"ports": [{"port": 70000}]}]}, "outside"),
        ({"ingress": [{"ports": [{"port": "80"}]}]}, "not a valid port name"),
        ({"ingress": [{"ports": [{"port": "Web_Port"}]}]}, "not a valid port name"),
        ({"ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}, "needs a numeric port"),
        ({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}, "outside"),
        ({"policyTypes": ["Both"]}, "unknown policy type"),
        ({"ingress": {"from": []}}, "expected a list"),
    ],
)
def test_malformed_policy_is_a_typed_error(spec: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidObject) as caught:
        make_policy(spec, name="bad")
    assert caught.value.kind == "NetworkPolicy"
    assert caught.value.name == "x/bad"
    assert reason in caught.value.reason
    assert str(caught.value).startswith("NetworkPolicy x/bad: ")


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        (
            {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"a": "1"},
            False,
        ),
    ],
)
def test_label_selector_semantics(
    selector: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    assert LabelSelector.from_k8s(selector).matches(labels) is matches


def test_model_values_are_frozen_and_hashable() -> None:
    policy = make_policy({"podSelector": {"matchLabels": {"a": "1"}}})
    assert hash(policy) == hash(make_policy({"podSelector": {"matchLabels": {"a": "1"}}}))
    with pytest.raises(AttributeError):
        policy.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        NetworkPolicy("x", "p")  # type: ignore[call-arg]  # keyword-only


def test_ip_block_contains() -> None:
    block = IPBlock.from_k8s({"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}, "b")
    assert block.contains("10.2.3.4")
    assert not block.contains("10.1.3.4")
    assert not block.contains("11.0.0.1")
    assert not block.contains("fd00::1")
