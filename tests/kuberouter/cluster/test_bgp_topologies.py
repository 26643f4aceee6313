"""The routing controller in other shapes of the box, each built as a user would build it:

- route reflection by annotations (`--node-annotation node1:kube-router.io/rr.server=42`,
  the others rr.client): clients peer only with the reflector (and the ToR); then node 3
  leaves the cluster (its Node object deleted with kubectl, its agent stopped) and its
  routes leave the other nodes' kernels and the ToR;
- per-node AS numbers (`--agent-arg=--nodes-full-mesh=false`, kube-router.io/node.asn) with
  eBGP to a ToR of its own AS (`--tor-asn`);
- nodes on two subnets (`--subnets 2`) without an overlay: sessions cross the ToR, pod
  routes are installed towards nodes on the same subnet only. (The overlay across subnets
  needs an IPIP tunnel, which this kernel lacks: that is a guest-kernel test.)

Each box has three nodes with one pod each, no static routes, and goes away after its test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.kuberouter.cluster import bgp
from tests.kuberouter.cluster.bgp import ok, pod, pod_cidr, pod_ip, wait_until
from tests.kuberouter.cluster.conftest import Box, new_box, torn_down

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

NODES = (1, 2, 3)
TOR = "10.240.0.254"


def _up(box: Box, *args: str) -> None:
    ok(box.ctl("up", "--nodes", "3", "--pods-per-node", "1", "--no-static-routes", *args,
               timeout=180))  # fmt: skip


def _address(index: int, subnets: int = 1) -> str:
    return f"10.240.{(index - 1) % subnets}.{10 + index}"


@pytest.fixture(scope="class")
def rr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    """One box for TestRouteReflection's tests, in order (the second one removes node 3)."""
    box = new_box(tmp_path_factory.mktemp("rr"), prefix="br")
    with torn_down(box):
        _up(box, "--node-annotation", "node1:kube-router.io/rr.server=42",
            "--node-annotation", "node2:kube-router.io/rr.client=42",
            "--node-annotation", "node3:kube-router.io/rr.client=0.0.0.42")  # fmt: skip
        yield box


class TestRouteReflection:
    def test_clients_peer_only_with_the_reflector_and_pods_still_reach_each_other(
        self, rr: Box
    ) -> None:
        box = rr
        assert set(bgp.sessions(box, 1)) == {_address(2), _address(3), TOR}
        for client in (2, 3):
            found = bgp.sessions(box, client)
            assert set(found) == {_address(1), TOR}, found
            assert {s["state"] for s in found.values()} == {"Established"}
        for i in NODES:
            others = {pod_cidr(j): _address(j) for j in NODES if j != i}
            wait_until(
                f"node{i}'s routes", lambda i=i, others=others: bgp.bgp_routes(box, i) == others
            )
        assert bgp.unreachable_pairs(box, NODES) == []
        # node2 has node3's pod CIDR from the reflector, next hop kept, cluster ID 42.
        paths = json.loads(bgp.pybgp(box, 2, "-j", "rib", pod_cidr(3)))
        reflected = [p for p in paths if p["peer"] == _address(1)]
        assert reflected and reflected[0]["next_hop"] == _address(3), paths
        assert reflected[0]["cluster_list"] == ["0.0.0.42"], paths
        # Without a password the ToR takes an unsigned connection (the MD5 check's contrast).
        assert bgp.plain_connect(box, 1, TOR) == "connected"

    def test_a_node_that_leaves_takes_its_routes_from_every_kernel_and_the_tor(
        self, rr: Box
    ) -> None:
        box = rr
        leaving = pod_cidr(3)
        wait_until("node3's pod CIDR everywhere", lambda: leaving in bgp.tor_prefixes(box)
                   and all(leaving in bgp.bgp_routes(box, i) for i in (1, 2)))  # fmt: skip
        ok(box.kubectl("delete", "node", bgp.node(box, 3)))
        ok(box.ctl("agent", "stop", "node3"))
        for i in (1, 2):
            wait_until(f"node3's pod CIDR gone from node{i}",
                       lambda i=i: bgp.bgp_routes(box, i) == {pod_cidr(3 - i): _address(3 - i)})  # fmt: skip
        wait_until("node3's pod CIDR gone from the ToR",
                   lambda: bgp.tor_prefixes(box) == {pod_cidr(1), pod_cidr(2)})  # fmt: skip
        assert set(bgp.sessions(box, 1)) == {_address(2), TOR}  # its session went with it
        assert set(bgp.sessions(box, 2)) == {_address(1), TOR}
        assert bgp.unreachable_pairs(box, (1, 2)) == []
        status = box.ctl("status")
        assert (
            status.returncode == 1
            and f"node {bgp.node(box, 3)}: agent not running" in status.stdout
        )


@pytest.fixture
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    made = new_box(tmp_path_factory.mktemp("bgp"), prefix="bt")
    with torn_down(made):
        yield made


def test_per_node_asns_peer_over_ebgp_with_the_tor(box: Box) -> None:
    asns = {1: 65001, 2: 65002, 3: 65003}
    notes = [arg for i, asn in asns.items()
             for arg in ("--node-annotation", f"node{i}:kube-router.io/node.asn={asn}")]  # fmt: skip
    _up(box, "--tor-asn", "64999", "--agent-arg=--nodes-full-mesh=false", *notes)
    for i in NODES:  # no node shares another's AS: the ToR is everyone's only peer
        found = bgp.sessions(box, i)
        assert {a: (s["peer_asn"], s["state"]) for a, s in found.items()} == {
            TOR: (64999, "Established")
        }
    neighbors = bgp.tor_neighbors(box)
    assert {ip: n["remoteAs"] for ip, n in neighbors.items()} == {
        _address(i): asn for i, asn in asns.items()
    }
    assert all(n["localAs"] == 64999 for n in neighbors.values())
    for i in NODES:  # the ToR passes each route on with the AS path and next hop it came with
        [path] = bgp.tor_paths(box, pod_cidr(i)).values()
        assert path["aspath"]["string"] == str(asns[i])
        assert [hop["ip"] for hop in path["nexthops"]] == [_address(i)]
    for i in NODES:
        others = {pod_cidr(j): _address(j) for j in NODES if j != i}
        wait_until(f"node{i}'s routes", lambda i=i, others=others: bgp.bgp_routes(box, i) == others)
        for j in NODES:
            if j != i:
                [path] = json.loads(bgp.pybgp(box, i, "-j", "rib", pod_cidr(j)))
                assert path["as_path"] == f"64999 {asns[j]}", path
    assert bgp.unreachable_pairs(box, NODES) == []


def test_nodes_on_two_subnets_route_pods_directly_only_within_a_subnet(box: Box) -> None:
    _up(box, "--subnets", "2", "--agent-arg=--enable-overlay=false")
    # node1 and node3 on 10.240.0.0/24, node2 on 10.240.1.0/24, the ToR on both
    assert {a: s["state"] for a, s in bgp.sessions(box, 2).items()} == {
        _address(1, 2): "Established", _address(3, 2): "Established", "10.240.1.254": "Established",
    }  # fmt: skip
    expected = {1: {pod_cidr(3): _address(3, 2)}, 2: {}, 3: {pod_cidr(1): _address(1, 2)}}
    for i in NODES:
        wait_until(f"node{i}'s routes", lambda i=i: bgp.bgp_routes(box, i) == expected[i])
        learned = {p["prefix"] for p in json.loads(bgp.pybgp(box, i, "-j", "rib"))}
        assert learned == {pod_cidr(j) for j in NODES}, i  # learned, but across the ToR
    assert bgp.unreachable_pairs(box, (1, 3)) == []
    assert not bgp.ping(box, pod(box, 1), pod_ip(2))  # no overlay: no way to node2's pods
    assert ok(box.ctl("status")).count("Established") == 9 + 3
