"""Everything that touches the official `kubernetes` client: configuration, lists and watches.

The client's own model classes are never built: lists and watch streams are read as raw
JSON (`_preload_content=False`) and turned straight into our model views, which is both
faster and much smaller. All functions here block; the watch layer calls them from
worker threads.

Configuration follows client-go's BuildConfigFromFlags, as upstream kube-router:
--kubeconfig given: that file (its server replaced by --master when set); only --master:
that URL without credentials; neither: the pod's service account (in-cluster).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config  # type: ignore[import-untyped,unused-ignore]
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped,unused-ignore]
from kubernetes.config.incluster_config import (  # type: ignore[import-untyped,unused-ignore]
    SERVICE_CERT_FILENAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)

from kuberouter.model import (
    EndpointSlice,
    InvalidObject,
    Namespace,
    NetworkPolicy,
    Node,
    Pod,
    Service,
)
from kuberouter.version import __version__

ApiClient = client.ApiClient
HTTPResponse = urllib3.BaseHTTPResponse  # what a call with _preload_content=False returns
PAGE_SIZE = 500  # as client-go's pager
CONNECT_TIMEOUT = 10.0
LIST_READ_TIMEOUT = 60.0
USER_AGENT = f"kube-router/{__version__}"


class ConfigError(Exception):
    """No usable API server configuration (bad kubeconfig, not running in a pod, ...)."""


def load_api_client(
    kubeconfig: str | None,
    master: str | None,
    *,
    token_file: str = SERVICE_TOKEN_FILENAME,
    ca_file: str = SERVICE_CERT_FILENAME,
) -> ApiClient:
    """An ApiClient from --kubeconfig / --master, or the in-cluster service account."""
    configuration = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(  # type: ignore[no-untyped-call,unused-ignore]
                config_file=os.path.expanduser(kubeconfig),
                client_configuration=configuration,
                persist_config=False,
            )
        elif not master:
            loader = InClusterConfigLoader(  # type: ignore[no-untyped-call,unused-ignore]
                token_filename=token_file, cert_filename=ca_file
            )
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call,unused-ignore]
    except Exception as error:  # ConfigException, OSError, YAML errors, bad base64, ...
        source = f"kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster service account"
        raise ConfigError(f"cannot configure the API client from {source}: {error}") from None
    if master:
        configuration.host = master.rstrip("/")
    # Six long-lived watches plus their lists must not evict each other's connections.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, 16)
    api_client = client.ApiClient(configuration)
    api_client.user_agent = USER_AGENT  # how the API server's audit log names the agent
    return api_client


@dataclass(frozen=True)
class Resource:
    """One watched kind: its cluster-wide collection URL, our model."""

    kind: str
    path: str
    parse: Callable[[Mapping[str, Any]], Any]
    namespaced: bool

    def call(
        self, api_client: ApiClient, _request_timeout: tuple[float, float], **params: Any
    ) -> HTTPResponse:
        """GET the collection (list or watch); the response body is left unread. Straight
        through the client's connection and credentials: its typed API classes (CoreV1Api
        alone is half a second of CPU to import, and memory) are never loaded."""
        query = [(QUERY_NAMES.get(name, name), value) for name, value in params.items()]
        method, url, headers, body, post = api_client.param_serialize(
            "GET",
            self.path,
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        reply = api_client.call_api(
            method, url, headers, body, post, _request_timeout=_request_timeout
        )
        if not 200 <= reply.status <= 299:  # e.g. 410 Gone: the watch layer lists again
            reply.read()  # type: ignore[no-untyped-call,unused-ignore]
            raise ApiException.from_response(http_resp=reply, body=None, data=None)
        response: HTTPResponse = reply.response
        return response


QUERY_NAMES = {  # the Kubernetes names of the list and watch parameters
    "_continue": "continue",
    "resource_version": "resourceVersion",
    "allow_watch_bookmarks": "allowWatchBookmarks",
    "timeout_seconds": "timeoutSeconds",
}
RESOURCES: tuple[Resource, ...] = (
    Resource("Node", "/api/v1/nodes", Node.from_k8s, False),
    Resource("Namespace", "/api/v1/namespaces", Namespace.from_k8s, False),
    Resource("Pod", "/api/v1/pods", Pod.from_k8s, True),
    Resource("Service", "/api/v1/services", Service.from_k8s, True),
    Resource(
        "EndpointSlice", "/apis/discovery.k8s.io/v1/endpointslices", EndpointSlice.from_k8s, True
    ),
    Resource(
        "NetworkPolicy",
        "/apis/networking.k8s.io/v1/networkpolicies",
        NetworkPolicy.from_k8s,
        True,
    ),
)
RESOURCES_BY_KIND: Mapping[str, Resource] = {resource.kind: resource for resource in RESOURCES}


def object_key(raw: Mapping[str, Any]) -> str | None:
    """ "namespace/name" (or "name"), or None when the object has no usable name."""
    meta = raw.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    namespace = meta.get("namespace")
    return (
        f"{namespace}/{meta['name']}" if isinstance(namespace, str) and namespace else meta["name"]
    )


def resource_version(raw: Mapping[str, Any]) -> str:
    meta = raw.get("metadata")
    value = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else ""


def convert(resource: Resource, raw: Mapping[str, Any]) -> Any:
    """The model view of one object, or the InvalidObject explaining why there is none."""
    try:
        return resource.parse(raw)
    except InvalidObject as problem:
        return problem
    except Exception as error:  # a model bug must cost one object, not the whole agent
        name = object_key(raw) or "<unnamed>"
        return InvalidObject(resource.kind, name, f"unreadable ({type(error).__name__}: {error})")


def finish(response: HTTPResponse, ok: bool) -> None:
    """Give the connection back to the pool; closed first unless the body was read whole."""
    if not ok:
        response.close()
    response.release_conn()


def list_pages(api_client: ApiClient, resource: Resource) -> Iterator[dict[str, Any]]:
    """Each page of a consistent list (a continue token keeps the first page's version)."""
    token: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if token:
            params["_continue"] = token
        response = resource.call(
            api_client, _request_timeout=(CONNECT_TIMEOUT, LIST_READ_TIMEOUT), **params
        )
        ok = False
        try:
            page = json.loads(response.data)
            ok = True
        finally:
            finish(response, ok)
        yield page
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def open_watch(
    api_client: ApiClient, resource: Resource, since: str, timeout_seconds: int
) -> HTTPResponse:
    """A watch from `since`, with bookmarks; the server ends it after `timeout_seconds`."""
    return resource.call(
        api_client,
        watch=True,
        resource_version=since,
        allow_watch_bookmarks=True,
        timeout_seconds=timeout_seconds,
        # No byte for this long means a dead peer (the server ends the watch well before).
        _request_timeout=(CONNECT_TIMEOUT, timeout_seconds + 30.0),
    )


def read_events(response: HTTPResponse) -> Iterator[list[dict[str, Any]]]:
    """The watch events of each chunk as it arrives (one JSON document per line)."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        events = [json.loads(line) for line in lines if line.strip()]
        if events:
            yield events
