"""An audit log as the real API server writes one: a JSON line per request, naming the RBAC
verb and the resource it was authorized against, and the client's User-Agent.

The fields are a subset of audit.k8s.io/v1 `Event` (level Metadata, stage RequestReceived),
so the record says what an authorizer would have been asked: `verb` is get, list, watch,
create, update, patch, delete or deletecollection for a resource, the HTTP method in lower
case for a non-resource URL (discovery, /version, /healthz); `objectRef` names the resource.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, TextIO

from kuberouter.testing.routes import Route

METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def verb(method: str, route: Route, watching: bool) -> str:
    """The verb RBAC checks for a resource request (as the API server's request info)."""
    if method == "GET":
        if watching or route.legacy_watch:
            return "watch"
        return "get" if route.name is not None else "list"
    if method == "DELETE":
        return "delete" if route.name is not None else "deletecollection"
    return METHOD_VERBS.get(method, method.lower())


def event(
    method: str, uri: str, route: Route | None, *, watching: bool, user_agent: str
) -> dict[str, Any]:
    """The audit event of one request; `route` None for a non-resource URL."""
    record: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "stage": "RequestReceived",
        "requestURI": uri,
        "verb": method.lower() if route is None else verb(method, route, watching),
        "userAgent": user_agent,
    }
    if route is not None:
        ref = {"resource": route.resource.plural, "apiGroup": route.resource.group,
               "apiVersion": route.resource.version}  # fmt: skip
        for field, value in (("namespace", route.namespace), ("name", route.name),
                             ("subresource", route.subresource)):  # fmt: skip
            if value is not None:
                ref[field] = value
        record["objectRef"] = ref
    return record


class AuditLog:
    """Appends events to a file as JSON lines, one writer at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._lock = threading.Lock()
        self._stream: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if not self._stream.closed:
                self._stream.write(line)
                self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._stream.close()


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every event of an audit log file."""
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]
