"""kubectl's protobuf requests against the test API server, answered as the real one answers
them: the object decoded exactly as kubectl would have sent it in JSON (its own
`--dry-run=client -o json` is the oracle), JSON answers, 406 and 415 where due."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kuberouter.testing import protobuf, serve
from kuberouter.testing.apiserver import ApiServer
from kuberouter.testing.protobuf import ProtobufError
from tests.kuberouter.conftest import Kubectl

# `kubectl create service loadbalancer cap --tcp=443:8443`, as kubectl v1.32 sent it.
CAPTURED = bytes.fromhex(
    "6b3873000a0d0a027631120753657276696365126e0a1f0a0363617012001a0022002a003200380042005a0a0a"
    "03617070120363617012470a1d0a083434332d38343433120354435018bb032207080010fb411a002800120a0a"
    "0361707012036361701a00220c4c6f616442616c616e6365723a00420052005a00600068001a020a001a002200"
)


@pytest.fixture
def srv() -> Iterator[ApiServer]:
    with serve(token="pb-token") as server:
        yield server


def test_a_captured_kubectl_body_decodes_to_its_json_form() -> None:
    assert protobuf.decode(CAPTURED) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "cap", "labels": {"app": "cap"}},
        "spec": {
            "ports": [{"name": "443-8443", "protocol": "TCP", "port": 443, "targetPort": 8443}],
            "selector": {"app": "cap"},
            "type": "LoadBalancer",
        },
    }
    for broken in (CAPTURED[4:], CAPTURED[:-9], b"k8s\x00\x0a\x05\x12\x03Foo"):
        with pytest.raises(ProtobufError):
            protobuf.decode(broken)


SERVER_FILLED = {
    "clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy",
    "externalTrafficPolicy", "sessionAffinity",
}  # fmt: skip


def message(*fields: tuple[int, bytes | int]) -> bytes:
    """Protobuf fields (number, bytes or varint), for bodies kubectl does not send."""
    out = b""
    for number, value in fields:
        if isinstance(value, int):
            out += varint(number << 3) + varint(value % (1 << 64))
        else:
            out += varint(number << 3 | 2) + varint(len(value)) + value
    return out


def varint(value: int) -> bytes:
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        out += bytes([low | (0x80 if value else 0)])
        if not value:
            return out


def test_embedded_messages_pointers_maps_and_int_or_string() -> None:
    probe = message((1, message((2, message((2, message((1, 1), (3, b"http"))))))))
    limits = message((1, b"memory"), (2, message((1, b"64Mi"))))
    container = message((1, b"web"), (8, message((1, limits))), (10, probe), (15, message((4, 0))))
    volume = message((1, b"scratch"), (2, message((2, b""))))
    spec = message((1, volume), (2, container), (14, message((5, -1))))
    pod = message((1, message((1, b"p"))), (2, spec))
    body = b"k8s\x00" + message((1, message((1, b"v1"), (2, b"Pod"))), (2, pod))
    assert protobuf.decode(body)["spec"] == {
        "volumes": [{"name": "scratch", "emptyDir": {}}],  # embedded; an empty pointer kept
        "containers": [{
            "name": "web",
            "resources": {"limits": {"memory": "64Mi"}},
            "livenessProbe": {"httpGet": {"port": "http"}},
            "securityContext": {"runAsUser": 0},  # a pointer set to zero is kept
        }],
        "securityContext": {"fsGroup": -1},
    }  # fmt: skip


def what_kubectl_set(stored: dict[str, Any], intended: dict[str, Any]) -> dict[str, Any]:
    """The stored object's labels and spec, less what the server adds or allocates."""
    labels = dict(stored["metadata"].get("labels") or {})
    labels.pop("kubernetes.io/metadata.name", None)  # every namespace gets it
    spec = {k: v for k, v in (stored.get("spec") or {}).items() if k not in SERVER_FILLED}
    asked = {p["port"]: p for p in (intended.get("spec") or {}).get("ports") or []}
    for port in spec.get("ports") or []:
        if "nodePort" not in asked.get(port["port"], {}):
            port.pop("nodePort", None)
    return {"labels": labels or None, "spec": spec}


@pytest.mark.parametrize(
    "command",
    [
        ["create", "service", "clusterip", "web", "--tcp=80:8080", "--tcp=53:53"],
        ["create", "service", "clusterip", "headless", "--clusterip=None"],
        ["create", "service", "nodeport", "np", "--tcp=53:5353", "--node-port=30053"],
        ["create", "service", "loadbalancer", "lb", "--tcp=443:8443"],
        ["create", "service", "externalname", "ext", "--external-name=db.example.com"],
        ["create", "namespace", "demo"],
        ["run", "web-0", "--image=nginx:1.27", "--port=80", "--labels=app=web,tier=front",
         "--env=MODE=test", "--restart=Never"],
    ],
    ids=["clusterip", "headless", "nodeport", "loadbalancer", "externalname", "namespace", "run"],
)  # fmt: skip
def test_kubectl_typed_commands_send_protobuf_and_get_their_object(
    kubectl: Kubectl, command: list[str]
) -> None:
    intended = json.loads(kubectl(*command, "--dry-run=client", "-o", "json").stdout)
    assert "created" in kubectl(*command).stdout
    kind, name = intended["kind"].lower(), intended["metadata"]["name"]
    stored = json.loads(kubectl("get", kind, name, "-o", "json").stdout)
    intended_spec = {k: v for k, v in (intended.get("spec") or {}).items()}
    for field in SERVER_FILLED:
        intended_spec.pop(field, None)
    expected = {"labels": intended["metadata"].get("labels"), "spec": intended_spec}
    assert what_kubectl_set(stored, intended) == expected


def test_kubectl_sends_protobuf_for_these(kubectl: Kubectl) -> None:
    trace = kubectl("create", "service", "clusterip", "traced", "--tcp=80", "-v=8").stderr
    assert "Content-Type: application/vnd.kubernetes.protobuf" in trace
    assert "201 Created" in trace


def test_answers_are_json_or_406_and_other_bodies_415(
    srv: ApiServer, http: requests.Session
) -> None:
    url = f"{srv.url}/api/v1/namespaces/default/services"
    protobuf_body = {"Content-Type": protobuf.MEDIA_TYPE}
    both = {"Accept": f"{protobuf.MEDIA_TYPE},application/json"}
    created = http.post(url, data=CAPTURED, headers=protobuf_body | both)
    assert created.status_code == 201
    assert created.headers["Content-Type"] == "application/json"
    assert created.json()["spec"]["clusterIP"].startswith("10.96.")

    only_protobuf = http.get(url, headers={"Accept": protobuf.MEDIA_TYPE})
    assert (only_protobuf.status_code, only_protobuf.json()["reason"]) == (406, "NotAcceptable")
    cbor = http.post(url, data=b"\xa0", headers={"Content-Type": "application/cbor"})
    assert (cbor.status_code, cbor.json()["reason"]) == (415, "UnsupportedMediaType")
    garbage = http.post(url, data=b"k8s\x00\xff", headers=protobuf_body)
    assert (garbage.status_code, garbage.json()["reason"]) == (400, "BadRequest")
    wrong_kind = http.post(f"{srv.url}/api/v1/namespaces", data=CAPTURED, headers=protobuf_body)
    assert wrong_kind.status_code == 400 and "does not match" in wrong_kind.json()["message"]
