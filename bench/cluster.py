"""The generated cluster the scale benchmarks share, as Kubernetes objects (dicts).

`layout(pods, nodes, namespaces)` places pods evenly, in random order, over nodes and
namespaces (seeded: every run and every process sees the same cluster). Per namespace:
labels team (one of 50) and env (prod or dev), two policies (backends accept their
namespace's frontends on 8080; every pod accepts apps 0 and 1 of its team's namespaces on
the named port "http" and may only talk to its team's production namespaces on 53/UDP
and to 10.0.0.0/8 minus the pod range) and, for the agent bench, one Service selecting
the namespace's backends with its EndpointSlice. Pod n of a namespace has app n
(apps 0 and 1 are frontends); every pod declares "http" (8080), half "metrics" (9090).
Pod addresses are 10.(100 + node / 250).(node % 250).(slot + 1): a /24 per node.

`rich=True` pods carry what a real pod does beyond what the agent reads (owner, image,
resources, environment, probes, volumes, conditions, container statuses), about 3 KB of
JSON: what the agent must read, parse and not keep.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import attrs

NODE = "node-0"  # the node the benchmarks measure
TEAMS = 50
Doc = dict[str, Any]


def node_ip(node: int) -> str:
    return f"192.168.{node // 250}.{node % 250 + 1}"


def pod_ip(node: int, slot: int) -> str:
    return f"10.{100 + node // 250}.{node % 250}.{slot + 1}"


def namespace_doc(number: int) -> Doc:
    labels = {"team": f"team-{number % TEAMS}", "env": "prod" if number % 2 else "dev"}
    return {"kind": "Namespace", "metadata": {"name": f"ns-{number}", "labels": labels}}


def node_doc(number: int) -> Doc:
    name = f"node-{number}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"podCIDR": f"10.{100 + number // 250}.{number % 250}.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": node_ip(number)}]},
    }


def pod_doc(
    name: str,
    namespace: str,
    node: int,
    slot: int,
    app: int,
    *,
    metrics: bool,
    ready: bool = True,
    rich: bool = False,
) -> Doc:
    ports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    if metrics:
        ports.append({"name": "metrics", "containerPort": 9090, "protocol": "TCP"})
    labels = {"app": f"app-{app}", "role": "frontend" if app < 2 else "backend"}
    doc: Doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
        "spec": {"nodeName": f"node-{node}", "containers": [{"name": "c", "ports": ports}]},
        "status": {
            "phase": "Running",
            "podIPs": [{"ip": pod_ip(node, slot)}],
            "hostIPs": [{"ip": node_ip(node)}],
        },
    }
    if rich:
        _enrich(doc, ready)
    return doc


def _enrich(doc: Doc, ready: bool) -> None:
    """What a real pod carries besides: owner, image, resources, env, probes, conditions."""
    meta, spec, status = doc["metadata"], doc["spec"], doc["status"]
    meta["labels"]["pod-template-hash"] = "5d8f7b9c4"
    meta["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z"}
    meta["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": f"{meta['labels']['app']}-5d8f7b9c4",
            "uid": "7c1f0e52-4b1a-4c3e-9f0d-2a5b6c7d8e9f",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    container = spec["containers"][0]
    container.update(
        {
            "image": "registry.example/team/app:1.24.3",
            "imagePullPolicy": "IfNotPresent",
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "500m", "memory": "512Mi"},
            },
            "env": [{"name": f"SETTING_{n}", "value": f"value-{n}"} for n in range(6)],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
            "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}, "periodSeconds": 10},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
        }
    )
    spec.update(
        {
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "volumes": [{"name": "config", "configMap": {"name": "app-config"}}],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
            ],
        }
    )
    state = "True" if ready else "False"
    status["conditions"] = [
        {"type": kind, "status": state if kind in ("Ready", "ContainersReady") else "True"}
        for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    status["containerStatuses"] = [
        {
            "name": "c",
            "ready": ready,
            "restartCount": 0,
            "image": container["image"],
            "imageID": "registry.example/team/app@sha256:" + "0" * 64,
            "containerID": "containerd://" + "f" * 64,
            "started": True,
            "state": {"running": {"startedAt": "2026-11-20T10:00:05Z"}},
        }
    ]
    status["qosClass"] = "Burstable"
    status["startTime"] = "2026-11-20T10:00:00Z"


def policy_docs(namespace: str, team: str) -> list[Doc]:
    frontends = {
        "podSelector": {"matchLabels": {"role": "backend"}},
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                "ports": [{"port": 8080}],
            }
        ],
    }
    apps = {"key": "app", "operator": "In", "values": ["app-0", "app-1"]}
    team_spec = {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"team": team}},
                        "podSelector": {"matchExpressions": [apps]},
                    }
                ],
                "ports": [{"port": "http"}],
            }
        ],
        "egress": [
            {
                "to": [{"namespaceSelector": {"matchLabels": {"team": team, "env": "prod"}}}],
                "ports": [{"port": 53, "protocol": "UDP"}],
            },
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.100.0.0/14"]}}]},
        ],
    }
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"namespace": namespace, "name": name},
            "spec": spec,
        }
        for name, spec in (("allow-frontends", frontends), ("allow-team", team_spec))
    ]


def service_doc(namespace: str, number: int) -> Doc:
    """The namespace's Service for its backends, with a fixed cluster IP."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": namespace, "name": "backend"},
        "spec": {
            "selector": {"role": "backend"},
            "clusterIP": f"10.96.{number // 250}.{number % 250 + 2}",
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def endpoint(ip: str, node: int, pod: str, namespace: str, ready: bool = True) -> Doc:
    return {
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": ready, "terminating": False},
        "nodeName": f"node-{node}",
        "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
    }


def slice_doc(namespace: str, endpoints: list[Doc]) -> Doc:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": namespace,
            "name": "backend-1",
            "labels": {"kubernetes.io/service-name": "backend"},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


@attrs.frozen(kw_only=True)
class Placed:
    """One pod's place: its number, namespace, node, slot on the node and app."""

    number: int
    namespace: int
    node: int
    slot: int
    app: int
    metrics: bool

    @property
    def name(self) -> str:
        return f"pod-{self.number}"


def layout(pods: int, nodes: int, namespaces: int, seed: int = 1) -> Iterator[Placed]:
    """Pods spread evenly (in random order) over nodes and namespaces."""
    rng = random.Random(seed)
    placement = [number % nodes for number in range(pods)]
    rng.shuffle(placement)
    slots = [0] * nodes
    for number, node in enumerate(placement):
        yield Placed(
            number=number,
            namespace=number % namespaces,
            node=node,
            slot=slots[node],
            app=number // namespaces,
            metrics=rng.random() < 0.5,
        )
        slots[node] += 1
