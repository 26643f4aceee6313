"""The HTTP layer: parse the request, call the store, frame the answer (JSON or a watch stream).

HTTP/1.1 with keep-alive; a watch is one chunked response of JSON lines. Request bodies
may be JSON, YAML or Kubernetes protobuf (protobuf.py: kubectl's typed commands send it);
answers are JSON, and a client that accepts no JSON gets 406. Every error leaves as a
`Status` object. Nothing here holds state: it lives in the store.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import select
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from kuberouter.testing import audit, errors, patch, protobuf, routes, tables, watch
from kuberouter.testing.audit import AuditLog
from kuberouter.testing.errors import ApiError
from kuberouter.testing.routes import Route
from kuberouter.testing.selectors import object_predicate
from kuberouter.testing.store import Store, WatchDroppedError

log = logging.getLogger(__name__)
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")  # open to anonymous, as upstream
JSON, YAML = "application/json", ("application/yaml", "application/x-yaml")
BODY_TYPES = (JSON, *YAML, protobuf.MEDIA_TYPE)  # what a create or an update may be sent in
ANSWERABLE = ("*/*", "application/*", JSON)  # answers are JSON only


class ApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        *,
        token: str | None = None,
        bookmark_interval: float = 60.0,
        max_watch_seconds: float = 1800.0,
        ssl_context: ssl.SSLContext | None = None,
        audit_log: AuditLog | None = None,
    ) -> None:
        self.store = store
        self.audit_log = audit_log
        self.ssl_context = ssl_context
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ApiHandler)

    @property
    def bound(self) -> tuple[str, int]:
        """(host, port) listened on; the port is the real one when 0 was asked for."""
        host, port = self.server_address[:2]
        return str(host), int(port)  # str for AF_INET/AF_INET6 (bytes only for AF_UNIX)

    @property
    def address(self) -> str:
        host, port = self.bound
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def connection_count(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, on the connection's thread, not in accept().
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                log.debug("TLS handshake with %s failed: %s", client_address, error)
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every client connection (idle keep-alive ones too), so stopping is immediate."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: ApiHTTPServer
    query: dict[str, str]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # Dispatch.

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._read_body()  # always drained, so keep-alive stays in step
            if self.server.store.latency:
                time.sleep(self.server.store.latency)
            self._authenticate(url.path)
            self._check_accept()
            self._route(method, url.path, body)
        except ApiError as error:
            self._send_json(error.code, error.status())
        except OSError:  # the client went away (broken pipe, reset, TLS EOF)
            self.close_connection = True
        except Exception:  # a bug here must reach the client as a 500, not a hung socket
            log.exception("internal error on %s %s", method, self.path)
            self._send_json(500, errors.status_object(500, "InternalError", "internal error"))

    def _authenticate(self, path: str) -> None:
        header = self.headers.get("Authorization")
        if self.server.token is None or (header is None and path in PUBLIC_PATHS):
            return
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), self.server.token.encode()
        ):
            raise errors.unauthorized()

    def _check_accept(self) -> None:
        """406 unless the client takes JSON, as the real server answers a media type it
        cannot encode (kubectl's protobuf requests accept JSON too)."""
        accept = self.headers.get("Accept") or ""
        offered = [media.split(";")[0].strip().lower() for media in accept.split(",")]
        if accept.strip() and not any(media in ANSWERABLE for media in offered):
            raise errors.not_acceptable(JSON)

    def _route(self, method: str, path: str, body: bytes) -> None:
        if path.rstrip("/") in ("/healthz", "/livez", "/readyz"):
            self._audit(method, None)
            self._send_bytes(200, b"ok", "text/plain; charset=utf-8")
            return
        document = routes.discovery_document(path, self.server.address)
        if document is not None:
            self._audit(method, None)
            if method != "GET":
                raise errors.method_not_allowed(method)
            self._send_json(200, document)
            return
        route = routes.parse(path)
        self._audit(method, route)
        if route.name is None:
            self._collection(method, route, body)
        else:
            self._object(method, route, body)

    def _audit(self, method: str, route: Route | None) -> None:
        if self.server.audit_log is not None:
            record = audit.event(
                method, self.path, route, watching=self._flag("watch"),
                user_agent=self.headers.get("User-Agent", ""),
            )  # fmt: skip
            self.server.audit_log.write(record)

    # Verbs.

    def _collection(self, method: str, route: Route, body: bytes) -> None:
        if method == "GET" and (route.legacy_watch or self._flag("watch")):
            self._watch(route)
        elif method == "GET":
            self._send_list(route)
        elif method == "POST" and (route.namespace or not route.resource.namespaced):
            created = self.server.store.create(
                route.resource, self._parse(body), route.namespace, dry_run=self._dry_run()
            )
            self._send_json(201, created)
        elif method == "DELETE":
            self._delete_collection(route)
        else:
            raise errors.method_not_allowed(method)

    def _object(self, method: str, route: Route, body: bytes) -> None:
        store, resource, name = self.server.store, route.resource, str(route.name)
        if method == "GET" and (route.legacy_watch or self._flag("watch")):
            self._watch(route)
        elif method == "GET":
            obj = store.get(resource, route.namespace, name)
            if tables.wants_table(self.headers.get("Accept", "")):
                metadata = {"resourceVersion": obj["metadata"]["resourceVersion"]}
                obj = tables.table(resource, [obj], metadata, self.query)
            self._send_json(200, obj)
        elif method == "PUT":
            updated = store.update(
                resource, route.namespace, name, self._parse(body),
                subresource=route.subresource, dry_run=self._dry_run(),
            )  # fmt: skip
            self._send_json(200, updated)
        elif method == "PATCH":
            self._patch(route, name, body)
        elif method == "DELETE" and route.subresource is None:
            options = self._parse(body) if body.strip() else {}
            if not isinstance(options, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
            deleted = store.delete(
                resource, route.namespace, name, options.get("preconditions"),
                dry_run=self._dry_run(options),
            )  # fmt: skip
            self._send_json(200, deleted)
        else:
            raise errors.method_not_allowed(method)

    def _patch(self, route: Route, name: str, body: bytes) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in patch.PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, patch.PATCH_TYPES)
        document = self._parse(body, JSON)

        def apply(current: dict[str, Any]) -> dict[str, Any]:
            return patch.apply_patch(content_type, current, document)

        patched = self.server.store.patch(
            route.resource, route.namespace, name, apply,
            subresource=route.subresource, dry_run=self._dry_run(),
        )  # fmt: skip
        self._send_json(200, patched)

    def _predicate(self, route: Route) -> Any:
        fields = self.query.get("fieldSelector", "")
        if route.name is not None:  # a watch on one object
            fields = ",".join(filter(None, [fields, f"metadata.name={route.name}"]))
        return object_predicate(
            route.resource, route.namespace, self.query.get("labelSelector", ""), fields
        )

    def _send_list(self, route: Route) -> None:
        exact = None
        if self.query.get("resourceVersionMatch") == "Exact":
            exact = self._int_param("resourceVersion")
        page = self.server.store.list_page(
            route.resource,
            self._predicate(route),
            limit=self._int_param("limit") or 0,
            continue_token=self.query.get("continue", ""),
            exact_rv=exact,
            namespace=route.namespace,
            selective=bool(self.query.get("labelSelector") or self.query.get("fieldSelector")),
        )
        metadata: dict[str, Any] = {"resourceVersion": page.resource_version}
        if page.continue_token:
            metadata["continue"] = page.continue_token
            metadata["remainingItemCount"] = page.remaining
        if tables.wants_table(self.headers.get("Accept", "")):
            self._send_json(200, tables.table(route.resource, page.items, metadata, self.query))
            return
        for item in page.items:  # list items carry no kind/apiVersion, as on a real server
            item.pop("kind", None)
            item.pop("apiVersion", None)
        kind = {"kind": route.resource.list_kind, "apiVersion": route.resource.api_version}
        self._send_json(200, kind | {"metadata": metadata, "items": page.items})

    def _delete_collection(self, route: Route) -> None:
        store, items = self.server.store, []
        for obj in store.list_page(route.resource, self._predicate(route)).items:
            meta = obj["metadata"]
            items.append(
                store.delete(
                    route.resource, meta.get("namespace"), meta["name"], dry_run=self._dry_run()
                )
            )
        kind = {"kind": route.resource.list_kind, "apiVersion": route.resource.api_version}
        metadata = {"resourceVersion": str(store.resource_version)}
        self._send_json(200, kind | {"metadata": metadata, "items": items})

    # Watch.

    def _watch(self, route: Route) -> None:
        since = self.query.get("resourceVersion", "")
        timeout = self._int_param("timeoutSeconds") or self.server.max_watch_seconds
        request = watch.WatchRequest(
            resource=route.resource,
            predicate=self._predicate(route),
            since=None if since in ("", "0") else self._int_param("resourceVersion"),
            timeout=float(timeout),
            bookmarks=self._flag("allowWatchBookmarks"),
            bookmark_interval=self.server.bookmark_interval,
            send_initial_events=self._flag("sendInitialEvents"),
        )
        events = watch.stream(self.server.store, request)
        if tables.wants_table(self.headers.get("Accept", "")):
            events = (self._as_table(route, event) for event in events)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                if event is not None:
                    self._write_chunk(json.dumps(event, separators=(",", ":")).encode() + b"\n")
                elif self._client_gone():
                    self.close_connection = True
                    return
        except WatchDroppedError:
            self._cut_connection()
            return
        self._write_chunk(b"")

    def _client_gone(self) -> bool:
        # A watch client sends nothing while it reads; a readable socket means it hung up.
        return bool(select.select([self.connection], [], [], 0)[0])

    def _as_table(self, route: Route, event: dict[str, Any] | None) -> dict[str, Any] | None:
        """With server-side printing, each watched object arrives as a one-row Table."""
        if event is None or event["type"] in ("BOOKMARK", "ERROR"):
            return event
        metadata = {"resourceVersion": event["object"]["metadata"]["resourceVersion"]}
        return event | {
            "object": tables.table(route.resource, [event["object"]], metadata, self.query)
        }

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _cut_connection(self) -> None:
        """End mid-stream without the final chunk: the client sees a broken connection."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # Request parsing.

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        data = b""
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            data += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline().strip():
            pass  # trailers
        return data

    def _parse(self, body: bytes, content_type: str | None = None) -> Any:
        """The request's object, from JSON, YAML or protobuf (the Content-Type says which)."""
        given = self.headers.get("Content-Type") or JSON
        content_type = content_type or given.split(";")[0].strip().lower()
        if content_type not in BODY_TYPES:
            raise errors.unsupported_media_type(content_type, BODY_TYPES)
        try:
            if content_type == protobuf.MEDIA_TYPE:
                return protobuf.decode(body)
            if content_type in YAML:
                return yaml.safe_load(body)
            return json.loads(body or b"null")
        except (ValueError, yaml.YAMLError) as error:  # ProtobufError is a ValueError
            raise errors.bad_request(
                f"the body of the request could not be decoded: {error}"
            ) from None

    def _flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true")

    def _dry_run(self, options: dict[str, Any] | None = None) -> bool:
        return bool(self.query.get("dryRun") or (options or {}).get("dryRun"))

    def _int_param(self, name: str) -> int | None:
        value = self.query.get(name, "")
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise errors.bad_request(f"invalid value for {name}: {value!r}") from None

    # Responses.

    def _send_json(self, code: int, body: Any) -> None:
        self._send_bytes(code, json.dumps(body, separators=(",", ":")).encode(), "application/json")

    def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
