"""Events on objects, as `kubectl describe` shows them (core/v1 Event, as client-go's
recorder writes them for a Node: in the "default" namespace).

`EventSink.warn(node, reason, message)` is called from trio; the POST runs in a worker
thread and a failure is logged, never raised: an event is a courtesy to the operator.
"""

from __future__ import annotations

import datetime
import logging
import socket
import uuid
from typing import Any, Protocol

import trio

from kuberouter.k8s.client import ApiClient
from kuberouter.k8s.writes import request

log = logging.getLogger(__name__)
COMPONENT = "kube-router"
EVENTS_PATH = "/api/v1/namespaces/default/events"


class EventSink(Protocol):
    async def warn(self, node: str, reason: str, message: str) -> None: ...


class NodeEvents:
    """Warning events about Nodes, through the API server."""

    def __init__(self, api_client: ApiClient, host: str | None = None) -> None:
        self.api_client = api_client
        self.host = host or socket.gethostname()

    async def warn(self, node: str, reason: str, message: str) -> None:
        body = event_body(node, reason, message, self.host)
        try:
            await trio.to_thread.run_sync(self._create, body)
        except Exception as exc:  # the API server said no, or is away: logged only
            log.warning("event %s on node %s not recorded: %s", reason, node, exc)

    def _create(self, body: dict[str, Any]) -> None:
        request(self.api_client, "POST", EVENTS_PATH, body)


def event_body(node: str, reason: str, message: str, host: str) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{node}.{uuid.uuid4().hex[:16]}", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": node, "uid": node, "apiVersion": "v1"},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": {"component": COMPONENT, "host": host},
        "reportingComponent": COMPONENT,
        "reportingInstance": host,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
