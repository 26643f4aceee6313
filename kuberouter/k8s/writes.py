"""Reads and writes of single objects, for controllers that write (the watch layer only lists
and watches). JSON in, JSON out, through the official client's connection and credentials
but not its model classes (which would reformat or drop fields they do not know).

All calls block: run them in a worker thread. A non-2xx answer raises `ApiError` with the
HTTP code and the Status reason (`Conflict`, `NotFound`, `AlreadyExists`, ...).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped,unused-ignore]

from kuberouter.k8s.client import ApiClient

Object = dict[str, Any]
TIMEOUT = (5.0, 10.0)  # connect, read (seconds)


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {code} {reason}: {message}" if message else f"HTTP {code} {reason}")
        self.code, self.reason = code, reason


# What a request may fail with: the server's answer, or the way to it.
FAILURES = (ApiError, ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)


def request(
    api_client: ApiClient,
    method: str,
    path: str,
    body: Object | None = None,
    timeout: tuple[float, float] = TIMEOUT,
) -> Object:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    _, url, headers, data, _ = api_client.param_serialize(
        method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    response = api_client.call_api(method, url, headers, data, _request_timeout=timeout)
    payload = response.read()  # type: ignore[no-untyped-call,unused-ignore]
    if not 200 <= response.status < 300:
        raise _error(response.status, payload)
    answer: Object = json.loads(payload)
    return answer


def _error(code: int, payload: bytes) -> ApiError:
    try:
        status = json.loads(payload)
        return ApiError(code, str(status.get("reason") or ""), str(status.get("message") or ""))
    except (ValueError, AttributeError):
        return ApiError(code, "", "")


def _path(group_version: str, namespace: str, plural: str, name: str = "") -> str:
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    path = f"{base}/namespaces/{quote(namespace, safe='')}/{plural}"
    return f"{path}/{quote(name, safe='')}" if name else path


# Leases (coordination.k8s.io/v1).

LEASES = "coordination.k8s.io/v1"


def get_lease(api_client: ApiClient, namespace: str, name: str, **kw: Any) -> Object:
    return request(api_client, "GET", _path(LEASES, namespace, "leases", name), **kw)


def create_lease(api_client: ApiClient, namespace: str, lease: Object, **kw: Any) -> Object:
    body = {"apiVersion": LEASES, "kind": "Lease"} | lease
    return request(api_client, "POST", _path(LEASES, namespace, "leases"), body, **kw)


def replace_lease(api_client: ApiClient, namespace: str, lease: Object, **kw: Any) -> Object:
    """PUT over metadata.resourceVersion: 409 Conflict when someone wrote in between."""
    body = {"apiVersion": LEASES, "kind": "Lease"} | lease
    path = _path(LEASES, namespace, "leases", lease["metadata"]["name"])
    return request(api_client, "PUT", path, body, **kw)


# Services.


def get_service(api_client: ApiClient, namespace: str, name: str) -> Object:
    return request(api_client, "GET", _path("v1", namespace, "services", name))


def replace_service_status(api_client: ApiClient, service: Object) -> Object:
    """PUT the status subresource (over metadata.resourceVersion, so a stale write is 409)."""
    meta = service["metadata"]
    path = _path("v1", meta["namespace"], "services", meta["name"]) + "/status"
    return request(api_client, "PUT", path, service)
