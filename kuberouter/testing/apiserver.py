"""A Kubernetes API server for tests and the local demo cluster (no real kube-apiserver here).

    with serve(token="secret", seed=["fixtures/k8s/basic-cluster.yaml"]) as srv:
        srv.write_kubeconfig(tmp_path / "kubeconfig")
        srv.store.put({...})          # inject a change directly, status included
        srv.store.compact()           # older resourceVersions now get 410 Expired
        srv.store.drop_watches()      # cut every watch connection
        srv.store.latency = 0.5       # a slow server

From the shell: python -m kuberouter.testing.apiserver --port 6443 --token T --seed F.yaml
prints its URL once it accepts connections, then serves until interrupted. With
`audit_log=FILE` (--audit-log FILE) every request is recorded as an audit event (audit.py).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import yaml

from kuberouter.testing.audit import AuditLog
from kuberouter.testing.httpserver import ApiHTTPServer
from kuberouter.testing.store import Store
from kuberouter.testing.tls import Credentials, make_credentials


def tls_credentials(hosts: Sequence[str]) -> Credentials:
    usable = [h for h in hosts if h not in ("0.0.0.0", "::", "")]
    return make_credentials(usable)


DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CONTEXT = "kuberouter-test"


def load_manifests(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """All documents of some multi-document YAML files, in order (empty documents skipped)."""
    documents: list[dict[str, Any]] = []
    for path in paths:
        with open(path, encoding="utf-8") as stream:
            documents.extend(doc for doc in yaml.safe_load_all(stream) if doc)
    return documents


class ApiServer:
    """The server on a background thread; `serve()` is the usual way to get one."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        seed: Iterable[str | os.PathLike[str]] = (),
        namespaces: Sequence[str] = DEFAULT_NAMESPACES,
        history_size: int = 10000,
        bookmark_interval: float = 60.0,
        max_watch_seconds: float = 1800.0,
        service_cidr: str = "10.96.0.0/12",
        namespace_deletion_delay: float = 1.0,
        tls: bool = True,
        tls_hosts: Sequence[str] = (),
        audit_log: str | os.PathLike[str] | None = None,
    ) -> None:
        self.token = token
        self.audit_log = AuditLog(audit_log) if audit_log is not None else None
        # HTTPS by default: kubectl sends a kubeconfig token only over TLS.
        self.credentials = tls_credentials([host, *tls_hosts]) if tls else None
        self.store = Store(
            history_size=history_size,
            service_cidr=service_cidr,
            namespace_deletion_delay=namespace_deletion_delay,
        )
        self.store.load(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces
        )
        self.store.load(load_manifests(seed))
        self._httpd = ApiHTTPServer(
            (host, port),
            self.store,
            token=token,
            bookmark_interval=bookmark_interval,
            max_watch_seconds=max_watch_seconds,
            ssl_context=self.credentials.server_context() if self.credentials else None,
            audit_log=self.audit_log,
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.bound
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"  # reachable from here whatever the bind address
        scheme = "https" if self.credentials else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    @property
    def connection_count(self) -> int:
        """Open client connections (watches and idle keep-alive ones)."""
        return self._httpd.connection_count

    @property
    def ca_pem(self) -> bytes | None:
        """The CA certificate clients should trust (None over plain HTTP)."""
        return self.credentials.ca_pem if self.credentials else None

    @property
    def bookmark_interval(self) -> float:
        return self._httpd.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self._httpd.bookmark_interval = seconds  # applies to watches started afterwards

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"test-apiserver-{self.url}",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        self.store.close()  # ends open watches
        if self._thread is not None:  # shutdown() would wait forever on a server never started
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.close_connections()
        self._httpd.server_close()
        if self.audit_log is not None:
            self.audit_log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        cluster: dict[str, Any] = {"server": self.url}
        if self.credentials:
            cluster["certificate-authority-data"] = base64.b64encode(
                self.credentials.ca_pem
            ).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": cluster}],
            "users": [{"name": CONTEXT, "user": user}],
            "contexts": [
                {
                    "name": CONTEXT,
                    "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
                }
            ],
            "current-context": CONTEXT,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], namespace: str = "default") -> Path:
        target = Path(path)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        target.chmod(0o600)  # it holds the token
        return target


@contextlib.contextmanager
def serve(**options: Any) -> Iterator[ApiServer]:
    """Run a test API server for the duration of a `with` block (options as for ApiServer)."""
    with ApiServer(**options) as server:
        yield server


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kuberouter.testing.apiserver", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=6443, help="0 picks a free port")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", help="require this bearer token")
    auth.add_argument("--token-file", type=Path, help="require the bearer token in this file")
    parser.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="FILE.yaml",
        help="objects to start with (repeatable)",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="also write a kubeconfig for the server here"
    )
    parser.add_argument("--bookmark-interval", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--history-size", type=int, default=10000, metavar="EVENTS")
    parser.add_argument(
        "--service-cidr", default="10.96.0.0/12", help="one range, or two (v4,v6) for dual-stack"
    )
    parser.add_argument(
        "--no-tls", action="store_true", help="plain HTTP (kubectl then sends no token)"
    )
    parser.add_argument(
        "--tls-host",
        action="append",
        default=[],
        metavar="HOST",
        help="extra name or IP for the serving certificate",
    )
    parser.add_argument(
        "--audit-log", type=Path, metavar="FILE",
        help="append a JSON line per request: verb, resource, User-Agent (audit.k8s.io/v1)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    token = args.token_file.read_text().strip() if args.token_file else args.token
    server = ApiServer(
        host=args.bind, port=args.port, token=token, seed=args.seed,
        history_size=args.history_size, bookmark_interval=args.bookmark_interval,
        service_cidr=args.service_cidr, tls=not args.no_tls, tls_hosts=args.tls_host,
        audit_log=args.audit_log,
    )  # fmt: skip
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with server:
        if args.kubeconfig:
            server.write_kubeconfig(args.kubeconfig)
        print(server.url, flush=True)
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
