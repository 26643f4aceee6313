"""Warning events on Nodes, written to the test API server as `kubectl describe node` reads
them."""

from __future__ import annotations

import pytest

from kuberouter.k8s.client import ApiClient
from kuberouter.k8s.events import NodeEvents
from kuberouter.k8s.writes import request


@pytest.mark.trio
async def test_a_warning_event_lands_on_the_node(api_client: ApiClient) -> None:
    events = NodeEvents(api_client, host="node-a")
    await events.warn("node-b", "InvalidAnnotation", "kube-router.io/node.asn: not a number")
    listed = request(api_client, "GET", "/api/v1/namespaces/default/events")["items"]
    (event,) = [e for e in listed if e["involvedObject"]["name"] == "node-b"]
    assert event["type"] == "Warning" and event["reason"] == "InvalidAnnotation"
    assert event["involvedObject"]["kind"] == "Node"
    assert event["message"] == "kube-router.io/node.asn: not a number"
    assert event["source"] == {"component": "kube-router", "host": "node-a"}


@pytest.mark.trio
async def test_a_refused_event_is_logged_not_raised(
    api_client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    events = NodeEvents(api_client, host="node-a")
    await events.warn("", "InvalidAnnotation", "no name")  # the server refuses it
    assert "not recorded" in caplog.text
