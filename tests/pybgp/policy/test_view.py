"""Chain views: a policy change concerns exactly the peers whose view of it changed."""

from __future__ import annotations

from typing import Any

from pybgp.policy.config import parse
from pybgp.policy.view import ChainViews

NODES = ["192.0.2.1", "192.0.2.2"]
ROUTERS = ["198.51.100.1"]
A_NODE, NEW_NODE, ROUTER = "192.0.2.1", "192.0.2.3", "198.51.100.1"


def views(
    nodes: list[str], vips: list[str], *, invert: bool = False, default: str = "reject"
) -> ChainViews:
    """Upstream kube-router's shape: pod CIDRs to the nodes, service IPs to the routers."""
    option = "invert" if invert else "any"
    document: dict[str, Any] = {"policy": {
        "prefix_sets": [
            {"name": "pods", "prefixes": ["10.244.0.0/24"]},
            {"name": "vips", "prefixes": vips or ["192.0.2.255/32"]},
        ],
        "neighbor_sets": [
            {"name": "nodes", "neighbors": nodes},
            {"name": "routers", "neighbors": ROUTERS},
        ],
        "definitions": [{"name": "out", "statements": [
            {"name": "pods-to-nodes", "actions": {"disposition": "accept"},
             "conditions": {"prefix_set": "pods", "neighbor_set": "nodes"}},
            {"name": "vips-to-routers", "actions": {"disposition": "accept"},
             "conditions": {"prefix_set": "vips",
                            "neighbor_set": {"set": "routers", "match": option}}},
        ]}],
        "attach": {"export": ["out"], "default_export": default},
    }}  # fmt: skip
    return ChainViews(parse(document).compile())


def test_a_node_joining_concerns_that_node_only() -> None:
    before, after = views(NODES, []), views([*NODES, NEW_NODE], [])
    for peer in (A_NODE, ROUTER):
        assert before.view("export", peer) == after.view("export", peer)
        assert before.view("import", peer) == after.view("import", peer)
    assert before.view("export", NEW_NODE) != after.view("export", NEW_NODE)


def test_a_service_ip_concerns_the_routers_only() -> None:
    before, after = (
        views(NODES, ["10.96.0.10/32"]),
        views(NODES, ["10.96.0.10/32", "10.96.0.11/32"]),
    )
    assert before.view("export", A_NODE) == after.view("export", A_NODE)
    assert before.view("export", ROUTER) != after.view("export", ROUTER)


def test_inverted_neighbor_sets_and_defaults_count() -> None:
    before, after = (
        views(NODES, ["10.96.0.10/32"], invert=True),
        views(NODES, ["10.96.0.9/32"], invert=True),
    )
    assert before.view("export", A_NODE) != after.view("export", A_NODE)  # not a router: applies
    assert before.view("export", ROUTER) == after.view("export", ROUTER)  # a router: never
    assert views(NODES, []).view("export", A_NODE) != views(NODES, [], default="accept").view(
        "export", A_NODE
    )


def test_equal_views_hash_alike_and_are_kept() -> None:
    one, two = views(NODES, []), views(NODES, [])
    assert hash(one.view("export", A_NODE)) == hash(two.view("export", A_NODE))
    assert one.view("export", A_NODE) is one.view("export", A_NODE)
