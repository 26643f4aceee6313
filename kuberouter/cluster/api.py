"""Talking to the box's API server: register Nodes and Pods, load manifests, list objects.

The server listens only inside the fabric namespace, so every request runs there
(`netns.call_in`). A plain HTTPS client is enough: the server's REST conventions are the
Kubernetes ones, and the kinds and their URLs come from the server's own resource table.
The token is read from the kubeconfig and never printed.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import sys
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kuberouter.cluster import netns
from kuberouter.cluster.topology import Node, Pod, Topology
from kuberouter.testing.resources import RESOURCES, Resource

Object = dict[str, Any]


class ApiError(RuntimeError):
    """The API server refused a request or could not be reached."""


class ManifestError(ValueError):
    """A manifest file that cannot be read or parsed."""


@dataclass(frozen=True)
class Kubeconfig:
    server: str
    ca_pem: str
    token: str

    @classmethod
    def read(cls, path: Path) -> Kubeconfig:
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        ca_pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
        return cls(cluster["server"], ca_pem, config["users"][0]["user"].get("token", ""))


class Api:
    """Requests to the API server, each made inside the fabric namespace."""

    def __init__(self, kubeconfig: Path, fabric_netns: str, timeout: float = 5.0) -> None:
        self.config = Kubeconfig.read(kubeconfig)
        self.netns = fabric_netns
        self.timeout = timeout
        self._tls = ssl.create_default_context(cadata=self.config.ca_pem)

    def request(self, method: str, path: str, body: Object | None = None) -> tuple[int, Object]:
        return netns.call_in(self.netns, self._request, method, path, body)

    def _request(self, method: str, path: str, body: Object | None) -> tuple[int, Object]:
        url = urllib.parse.urlsplit(self.config.server)
        connection = http.client.HTTPSConnection(
            url.hostname or "", url.port or 443, timeout=self.timeout, context=self._tls
        )
        headers = {"Authorization": f"Bearer {self.config.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=data, headers=headers)
            reply = connection.getresponse()
            text = reply.read()
        finally:
            connection.close()
        return reply.status, json.loads(text) if text.strip() else {}

    def wait_ready(self, timeout: float, still_starting: Any = None) -> None:
        """Until GET /version answers; `still_starting()` False means give up early."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.request("GET", "/version")[0] == 200:
                    return
            except OSError:
                pass
            if still_starting is not None and not still_starting():
                raise ApiError("the API server exited while starting (see its log)")
            if time.monotonic() > deadline:
                raise ApiError(f"the API server did not answer within {timeout:.0f}s")
            time.sleep(0.1)

    def apply(self, obj: Object) -> str:
        """Create `obj`, or replace it when it exists; returns "created" or "configured"."""
        resource, path = collection(obj)
        status, reply = self.request("POST", path, obj)
        if status == 409:
            name = obj["metadata"]["name"]
            status, current = self.request("GET", f"{path}/{name}")
            _check(status, current, obj)
            obj = _with_version(obj, current)
            status, reply = self.request("PUT", f"{path}/{name}", obj)
            _check(status, reply, obj)
            return "configured"
        _check(status, reply, obj)
        if resource.has_status and obj.get("status"):
            # As a kubelet does: status is written through its own subresource.
            name = obj["metadata"]["name"]
            status, reply = self.request("PUT", f"{path}/{name}/status", _with_version(obj, reply))
            _check(status, reply, obj)
        return "created"

    def delete(self, kind: str, name: str, namespace: str = "default") -> None:
        """Delete an object; one already gone is no error."""
        resource = _resource(kind)
        path = _base(resource)
        if resource.namespaced:
            path += f"/namespaces/{namespace}"
        status, reply = self.request("DELETE", f"{path}/{resource.plural}/{name}")
        if status >= 300 and status != 404:
            raise ApiError(f"{kind} {name}: HTTP {status} {reply.get('message', '')}".strip())

    def items(self, kind: str) -> list[Object]:
        resource = _resource(kind)
        status, reply = self.request("GET", _base(resource) + f"/{resource.plural}")
        if status != 200:
            raise ApiError(f"listing {resource.plural}: HTTP {status} {reply.get('message', '')}")
        return list(reply.get("items", []))


def collection(obj: Object) -> tuple[Resource, str]:
    """The object's resource and its collection URL (namespace "default" when unset)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        raise ManifestError("a manifest must be a mapping with metadata")
    resource = _resource(obj.get("kind", ""), obj.get("apiVersion", ""))
    path = _base(resource)
    if resource.namespaced:
        namespace = obj["metadata"].setdefault("namespace", "default")
        path += f"/namespaces/{namespace}"
    return resource, f"{path}/{resource.plural}"


def _resource(kind: str, api_version: str = "") -> Resource:
    for resource in RESOURCES:
        if resource.kind == kind and api_version in ("", resource.api_version):
            return resource
    known = ", ".join(r.kind for r in RESOURCES)
    raise ManifestError(f"kind {api_version}/{kind} is not served by the box (it serves {known})")


def _base(resource: Resource) -> str:
    return f"/apis/{resource.api_version}" if resource.group else "/api/v1"


def _with_version(obj: Object, current: Object) -> Object:
    meta = dict(obj["metadata"], resourceVersion=current["metadata"]["resourceVersion"])
    return dict(obj, metadata=meta)


def _check(status: int, reply: Object, obj: Object) -> None:
    if status >= 300:
        what = f"{obj.get('kind')} {obj['metadata'].get('name')}"
        raise ApiError(f"{what}: HTTP {status} {reply.get('message', '')}".strip())


def read_manifests(paths: Iterable[str]) -> list[Object]:
    """Every document of some YAML files ('-' is stdin); `kind: List` is unpacked."""
    documents: list[Object] = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
            loaded = list(yaml.safe_load_all(text))
        except (OSError, yaml.YAMLError) as err:
            raise ManifestError(f"{path}: {' '.join(str(err).split())}") from err
        for doc in loaded:
            if isinstance(doc, dict) and doc.get("kind", "").endswith("List") and "items" in doc:
                documents.extend(doc["items"])
            elif doc:
                documents.append(doc)
    return documents


# The box's own objects, as a kubelet and the controller manager would register them.


def node_object(
    topology: Topology, node: Node, annotations: Mapping[str, str] | None = None
) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "annotations": dict(annotations or {}),
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "box.kube-router.io/cluster": topology.name,
            },
        },
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node.ip},
                {"type": "Hostname", "address": node.name},
            ],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "operatingSystem": "linux"},
        },
    }


def pod_object(node: Node, pod: Pod) -> Object:
    containers = [{"name": "demo", "image": "none (a network namespace)"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "namespace": "default",
            "labels": {"app": "demo", "slot": f"pod{pod.index}", "node": node.name},
        },
        "spec": {"nodeName": node.name, "containers": containers},
        "status": running_status(node, pod, containers),
    }


def placed_pod_object(manifest: Object, node: Node, pod: Pod) -> Object:
    """A Pod given as a manifest, bound to its node and Running at the box's address (its
    own metadata and spec are kept, e.g. labels and named container ports; status is ours)."""
    spec = dict(manifest.get("spec") or {}, nodeName=node.name)
    containers = spec.setdefault("containers", [{"name": "main", "image": "none"}])
    return dict(manifest, spec=spec, status=running_status(node, pod, containers))


def running_status(node: Node, pod: Pod, containers: list[Object]) -> Object:
    """What a kubelet reports for a running pod at the box's address for it."""
    return {
        "phase": "Running",
        "hostIP": node.ip,
        "hostIPs": [{"ip": node.ip}],
        "podIP": pod.ip,
        "podIPs": [{"ip": pod.ip}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": container.get("name", ""),
                "image": container.get("image", ""),
                "imageID": "",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {}},
            }
            for container in containers
        ],
    }
