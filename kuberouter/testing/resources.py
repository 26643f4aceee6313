"""The kinds this server knows, and the discovery documents kubectl and client-go read.

Adding a kind is one `Resource(...)` line; URL routing, discovery, the store and the
field selectors all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]
KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False  # a `status` subresource; then writes to the main resource keep status
    # Fields a fieldSelector may name beyond metadata.name / metadata.namespace.
    selectable_fields: tuple[str, ...] = ()
    # False: a PUT must carry metadata.resourceVersion (Leases: an update is never blind).
    unconditional_update: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The resource as messages name it: `pods`, `networkpolicies.networking.k8s.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "", "v1", "Namespace", "namespaces", False, ("ns",), has_status=True,
        selectable_fields=("status.phase",),
    ),
    Resource(
        "", "v1", "Node", "nodes", False, ("no",), has_status=True,
        selectable_fields=("spec.unschedulable",),
    ),
    Resource(
        "", "v1", "Pod", "pods", True, ("po",), ("all",), has_status=True,
        selectable_fields=(
            "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    Resource(
        "", "v1", "Service", "services", True, ("svc",), ("all",), has_status=True,
        selectable_fields=("spec.clusterIP", "spec.type"),
    ),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    Resource("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", True, unconditional_update=False),
    Resource("", "v1", "Event", "events", True, ("ev",), selectable_fields=(
        "involvedObject.kind", "involvedObject.name", "reason", "type", "source",
    )),
    # What a deployment of the agent creates (daemonset/): stored as given, nothing acts on them.
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    Resource("", "v1", "Secret", "secrets", True, selectable_fields=("type",)),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",), has_status=True),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
             False),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
)  # fmt: skip


def by_path(group: str, version: str, plural: str) -> Resource | None:
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def group_versions() -> dict[str, list[Resource]]:
    """Resources per "group/version" (core as "v1"), in table order."""
    result: dict[str, list[Resource]] = {}
    for resource in RESOURCES:
        result.setdefault(resource.api_version, []).append(resource)
    return result


# Discovery documents (the legacy format: client-go falls back to it when the server does
# not answer aggregated discovery).


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(group: str) -> dict[str, Any]:
    version = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"name": group, "versions": [version], "preferredVersion": version}


def api_group_list() -> dict[str, Any]:
    groups = sorted({r.group for r in RESOURCES if r.group})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_doc(g) for g in groups]}


def api_group(group: str) -> dict[str, Any] | None:
    if not any(r.group == group for r in RESOURCES if r.group):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1"} | _group_doc(group)


def _resource_entries(resource: Resource) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": VERBS,
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    entries = [entry]
    if resource.has_status:
        entries.append(
            {
                "name": f"{resource.plural}/status",
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": STATUS_VERBS,
            }
        )
    return entries


def api_resource_list(group_version: str) -> dict[str, Any] | None:
    resources = group_versions().get(group_version)
    if resources is None:
        return None
    entries = [e for r in resources for e in _resource_entries(r)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


# OpenAPI v3, reduced to what kubectl reads: for each kind, a PATCH operation listing the
# `fieldValidation` parameter, so kubectl leaves validation to the server instead of
# downloading schemas. There are no schemas (kubectl explain and client-side apply
# need them and are not supported).

OPENAPI_HASH = "kuberouter-test-1"


def _openapi_path(group_version: str) -> str:
    return "api/v1" if group_version == "v1" else f"apis/{group_version}"


def openapi_v3_root() -> dict[str, Any]:
    paths = {
        _openapi_path(gv): {
            "serverRelativeURL": f"/openapi/v3/{_openapi_path(gv)}?hash={OPENAPI_HASH}"
        }
        for gv in group_versions()
    }
    return {"paths": paths}


def _patch_operation(resource: Resource) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
    ]
    gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
    return {
        "operationId": f"patch{resource.kind}",
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": gvk,
    }


def openapi_v3_spec(path: str) -> dict[str, Any] | None:
    """The reduced document for "api/v1" or "apis/<group>/<version>", or None."""
    group_version = next((gv for gv in group_versions() if _openapi_path(gv) == path), None)
    if group_version is None:
        return None
    paths = {}
    for resource in group_versions()[group_version]:
        scope = "namespaces/{namespace}/" if resource.namespaced else ""
        url = f"/{path}/{scope}{resource.plural}/{{name}}"
        paths[url] = {"patch": _patch_operation(resource)}
    info = {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]}
    return {"openapi": "3.0.0", "info": info, "paths": paths, "components": {}}
