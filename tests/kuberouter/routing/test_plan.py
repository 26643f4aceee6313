"""The routing plan: sessions, originated routes and policy, from Nodes and Services (pure)."""

from __future__ import annotations

import pytest

from kuberouter.model.node_bgp import BgpPeer
from kuberouter.routing import policy
from kuberouter.routing.peers import PlanError, generated_router_id
from kuberouter.routing.plan import Planner
from kuberouter.routing.settings import RouterSettings
from pybgp.policy import Result, RouteContext, evaluate
from pybgp.rib.peer import PeerInfo, local_origin
from pybgp.rib.route import Route
from pybgp.wire.constants import IPV4_UNICAST, SegmentType
from pybgp.wire.nlri import nlri_from_str
from tests.kuberouter.routing.builders import endpoints, node, service, store_of
from tests.pybgp.rib.builders import attributes

A, B, C = "node-a", "node-b", "node-c"
SETTINGS = RouterSettings()


def three_nodes(**a_notes: str) -> list:
    return [
        node(A, "192.168.1.1", "10.244.0.0/24", **a_notes),
        node(B, "192.168.1.2", "10.244.1.0/24"),
        node(C, "192.168.2.3", "10.244.2.0/24"),
    ]


def test_full_mesh_of_nodes_in_the_cluster_asn() -> None:
    plan = Planner(A, SETTINGS).plan(store_of(*three_nodes()).snapshot())
    assert plan.identity.asn == 64512 and plan.identity.router_id == "192.168.1.1"
    assert plan.identity.listen == ("192.168.1.1",)
    assert sorted(plan.peerings) == ["192.168.1.2", "192.168.2.3"]
    b = plan.peerings["192.168.1.2"].neighbor
    assert (b.peer_asn, b.local_address, b.port, b.hold_time) == (64512, "192.168.1.1", 179, 90)
    assert b.description == "node node-b" and not b.route_reflector_client
    assert {p: r.next_hop for p, r in plan.routes.items()} == {"10.244.0.0/24": "192.168.1.1"}


def test_route_reflection_clients_peer_with_servers_only() -> None:
    nodes = [
        node(A, "192.168.1.1", "10.244.0.0/24", rr_server="42"),
        node(B, "192.168.1.2", "10.244.1.0/24", rr_client="42"),
        node(C, "192.168.1.3", "10.244.2.0/24", rr_client="42"),
        node("plain", "192.168.1.4", "10.244.3.0/24"),
    ]
    server = Planner(A, SETTINGS).plan(store_of(*nodes).snapshot())
    assert server.identity.cluster_id == "0.0.0.42"
    clients = {a for a, p in server.peerings.items() if p.neighbor.route_reflector_client}
    assert clients == {"192.168.1.2", "192.168.1.3"}
    assert "192.168.1.4" in server.peerings
    client = Planner(B, SETTINGS).plan(store_of(*nodes).snapshot())
    assert sorted(client.peerings) == ["192.168.1.1"]  # the server only
    plain = Planner("plain", SETTINGS).plan(store_of(*nodes).snapshot())
    assert sorted(plain.peerings) == ["192.168.1.1"]  # never the clients


def test_per_node_asn_without_full_mesh() -> None:
    settings = RouterSettings(full_mesh=False)
    nodes = [
        node(A, "192.168.1.1", "10.244.0.0/24", node_asn="65001"),
        node(B, "192.168.1.2", "10.244.1.0/24", node_asn="65001"),
        node(C, "192.168.1.3", "10.244.2.0/24", node_asn="65002"),
    ]
    plan = Planner(A, settings).plan(store_of(*nodes).snapshot())
    assert plan.identity.asn == 65001 and sorted(plan.peerings) == ["192.168.1.2"]
    with pytest.raises(PlanError, match=r"kube-router\.io/node\.asn"):
        Planner(A, settings).plan(store_of(node(A, "192.168.1.1")).snapshot())


def test_global_peers_win_over_node_annotations() -> None:
    secret = b"md5-key"
    settings = RouterSettings(
        peers=(BgpPeer(address="192.168.1.254", asn=65000, password=secret),), multihop_ttl=3
    )
    annotated = three_nodes(peers="- {remoteip: 192.168.9.9, remoteasn: 65009}")
    plan = Planner(A, settings).plan(store_of(*annotated).snapshot())
    tor = plan.peerings["192.168.1.254"]
    assert tor.kind == "external" and tor.neighbor.md5_key == secret
    assert tor.neighbor.multihop_ttl == 3 and "192.168.9.9" not in plan.peerings
    assert secret.decode() not in repr(plan)
    plain = Planner(A, SETTINGS).plan(store_of(*annotated).snapshot())
    assert plain.peerings["192.168.9.9"].neighbor.peer_asn == 65009


def test_router_id_generate_hashes_the_primary_address() -> None:
    plan = Planner(A, RouterSettings(router_id="generate")).plan(
        store_of(*three_nodes()).snapshot()
    )
    assert plan.identity.router_id == generated_router_id("192.168.1.1") != "192.168.1.1"


def test_service_ips_by_flags_annotations_and_local_endpoints() -> None:
    settings = RouterSettings(advertise_cluster_ip=True, advertise_loadbalancer_ip=True)
    objects = [
        *three_nodes(),
        service("web", "10.96.0.10", kind="LoadBalancer", lb_ips=("198.51.100.7",)),
        service("quiet", "10.96.0.11", advertise_clusterip="false"),
        service("ext", "10.96.0.12", external_ips=("203.0.113.5",), advertise_externalip="true"),
        service("local", "10.96.0.13", kind="LoadBalancer", lb_ips=("198.51.100.8",), etp="Local"),
        service("skip", "10.96.0.14", kind="LoadBalancer", lb_ips=("198.51.100.9",),
                skiplbips="true"),
        endpoints("local", (B, True), (A, False)),
    ]  # fmt: skip
    routes = Planner(A, settings).plan(store_of(*objects).snapshot()).routes
    vips = sorted(p for p, r in routes.items() if r.kind == "service")
    assert vips == [
        "10.96.0.10/32", "10.96.0.12/32", "10.96.0.13/32", "10.96.0.14/32",
        "198.51.100.7/32", "203.0.113.5/32",
    ]  # fmt: skip
    on_b = Planner(B, settings).plan(store_of(*objects).snapshot()).routes
    assert "198.51.100.8/32" in on_b  # node-b has the ready local endpoint


def test_service_range_aggregate_replaces_cluster_ips() -> None:
    settings = RouterSettings(advertise_cluster_ip=True, service_range_aggregates=("10.96.0.0/12",))
    objects = [*three_nodes(), service("a", "10.96.0.10"), service("b", "10.100.3.4")]
    routes = Planner(A, settings).plan(store_of(*objects).snapshot()).routes
    assert {p: r.kind for p, r in routes.items() if r.kind != "pod-cidr"} == {
        "10.96.0.0/12": "service-range"
    }


def test_export_policy_is_strict_and_names_its_sets() -> None:
    """Pod CIDRs to nodes; service IPs and pod CIDRs, with the node's communities and
    prepend, to the external peer; nothing else anywhere."""
    tor = "192.168.1.254"
    settings = RouterSettings(advertise_cluster_ip=True, peers=(BgpPeer(address=tor, asn=65000),))
    objects = [
        *three_nodes(node_bgp_communities="65000:100", path__prepend_as="64512",
                     path__prepend_repeat__n="2"),
        service("web", "10.96.0.10"),
    ]  # fmt: skip
    plan = Planner(A, settings).plan(store_of(*objects).snapshot())
    names = {s.name for s in plan.policy.prefix_sets} | {s.name for s in plan.policy.neighbor_sets}
    assert {"podcidrdefinedset", "servicevipsdefinedset", "iBGPpeerset", "externalpeerset"} <= names
    compiled = policy.compiled(plan.policy_inputs)
    ours = local_origin(64512, "192.168.1.1")
    node_b = PeerInfo(address="192.168.1.2", asn=64512, router_id="192.168.1.2", ibgp=True,
                      local_asn=64512)  # fmt: skip
    external = PeerInfo(address=tor, asn=65000, router_id=tor, ibgp=False, local_asn=64512)

    def sent(prefix: str, to: PeerInfo, source: PeerInfo = ours) -> Result:
        family = IPV4_UNICAST
        route = Route(attributes(path=()), "192.168.1.1", source)
        ctx = RouteContext.for_export(nlri_from_str(prefix, family), family, route, to)
        return evaluate(compiled.export_chain(to.address), ctx)

    assert sent("10.244.0.0/24", node_b).accepted
    assert not sent("10.96.0.10/32", node_b).accepted  # service IPs: external peers only
    to_tor = sent("10.96.0.10/32", external)
    assert to_tor.accepted and to_tor.attributes.communities == ((65000 << 16) | 100,)
    assert to_tor.attributes.as_path == ((SegmentType.AS_SEQUENCE, (64512, 64512)),)
    assert sent("10.244.0.0/24", external).accepted
    assert not sent("10.244.1.0/24", external, node_b).accepted  # not ours: kept in
    assert not sent("172.16.0.0/16", external, ours).accepted  # not a pod CIDR or service


def test_bad_annotation_keeps_last_good_value() -> None:
    planner = Planner(A, RouterSettings(full_mesh=False))
    good = [node(A, "192.168.1.1", node_asn="65001"), node(B, "192.168.1.2", node_asn="65001")]
    assert planner.plan(store_of(*good).snapshot()).identity.asn == 65001
    typo = [node(A, "192.168.1.1", node_asn="65OO1"), good[1]]
    plan = planner.plan(store_of(*typo).snapshot())
    assert plan.identity.asn == 65001 and sorted(plan.peerings) == ["192.168.1.2"]
