"""URL paths to what they name: a discovery document, or a resource (collection or object).

Resource paths follow the API conventions:
  /api/v1/<plural>[/<name>[/<subresource>]]                  cluster-scoped, or all namespaces
  /api/v1/namespaces/<ns>/<plural>[/<name>[/<subresource>]]  namespaced
  /apis/<group>/<version>/...                                the same under a named group
  .../watch/...                                              the legacy watch form
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kuberouter.testing import resources
from kuberouter.testing.errors import path_not_found
from kuberouter.testing.resources import Resource

SUBRESOURCES = ("status",)


@dataclass(frozen=True)
class Route:
    resource: Resource
    namespace: str | None  # None: cluster-scoped, or a list across all namespaces
    name: str | None  # None: the collection
    subresource: str | None = None
    legacy_watch: bool = False


def discovery_document(path: str, server_address: str) -> dict[str, Any] | None:
    """The discovery answer for `path`, or None when the path is not a discovery path."""
    parts = [p for p in path.split("/") if p]
    if parts == ["version"]:
        return dict(resources.KUBE_VERSION)
    if parts == ["api"]:
        return resources.api_versions(server_address)
    if parts == ["apis"]:
        return resources.api_group_list()
    if parts == ["api", "v1"]:
        return resources.api_resource_list("v1")
    if len(parts) == 2 and parts[0] == "apis":
        return resources.api_group(parts[1]) or _missing(path)
    if len(parts) == 3 and parts[0] == "apis":
        return resources.api_resource_list(f"{parts[1]}/{parts[2]}") or _missing(path)
    if parts == ["openapi", "v3"]:
        return resources.openapi_v3_root()
    if parts[:2] == ["openapi", "v3"]:
        return resources.openapi_v3_spec("/".join(parts[2:])) or _missing(path)
    if parts[:1] == ["openapi"]:
        return _missing(path)  # v2 is not served: kubectl uses v3 when it is there
    return None


def _missing(path: str) -> dict[str, Any]:
    raise path_not_found(path)


def parse(path: str) -> Route:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise path_not_found(path)
    legacy_watch = bool(rest) and rest[0] == "watch"
    route = _parse_rest(group, version, rest[1:] if legacy_watch else rest)
    if route is None:
        raise path_not_found(path)
    return Route(route.resource, route.namespace, route.name, route.subresource, legacy_watch)


def _parse_rest(group: str, version: str, rest: list[str]) -> Route | None:
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespaced = resources.by_path(group, version, rest[2])
        if namespaced is not None and namespaced.namespaced and len(rest) <= 5:
            return _object_route(namespaced, rest[1], rest[3:])
    if not rest:
        return None
    resource = resources.by_path(group, version, rest[0])
    if resource is None or len(rest) > 3:
        return None
    if resource.namespaced and len(rest) > 1:
        return None  # /api/v1/pods/<name> names nothing: pods live in namespaces
    return _object_route(resource, None, rest[1:])


def _object_route(resource: Resource, namespace: str | None, rest: list[str]) -> Route | None:
    name = rest[0] if rest else None
    subresource = rest[1] if len(rest) > 1 else None
    if subresource is not None and (subresource not in SUBRESOURCES or not resource.has_status):
        return None
    return Route(resource, namespace, name, subresource)
