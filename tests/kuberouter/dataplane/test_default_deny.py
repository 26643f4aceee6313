"""--netpol-default-deny with real packets: a pod of the node's pod CIDR that the
programmed state does not know yet gets no traffic in or out, until the compiled state
that knows it is applied (incrementally); without the flag the same pod is open.

Topology (topology.py): node-1 holds x/a, x/b and x/new (pod CIDR 10.0.1.0/24), node-2
holds x/c. Probes are TCP and UDP to port 80; a dropped flow ends in "timeout".
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kuberouter.dataplane import Runner
from kuberouter.dataplane.firewall import PlannedBackend
from kuberouter.netpol.cluster import Cluster
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.ruleset import DesiredState
from tests.kuberouter.dataplane.helpers import BACKENDS, make_backend, require_backend
from tests.kuberouter.dataplane.probe import Flow, Prober
from tests.kuberouter.dataplane.topology import Box, cluster_box
from tests.kuberouter.netpol.builders import cluster, pod

pytestmark = pytest.mark.privileged

POD_CIDR = "10.0.1.0/24"
KNOWN = [
    pod("x/a", "10.0.1.1", labels={"app": "a"}, node="node-1"),
    pod("x/b", "10.0.1.2", labels={"app": "b"}, node="node-1"),
    pod("x/c", "10.0.2.1", labels={"app": "c"}, node="node-2"),
]
NEW = pod("x/new", "10.0.1.3", labels={"app": "new"}, node="node-1")


def node_1(snapshot: Cluster, default_deny: bool) -> DesiredState:
    return compile_node(snapshot, "node-1", default_deny=(POD_CIDR,) if default_deny else ())


class Node1:
    """node-1's back end, applying each state on top of the last one."""

    def __init__(self, backend: PlannedBackend) -> None:
        self.backend = backend
        self.programmed: DesiredState | None = None

    def program(self, desired: DesiredState) -> None:
        stats = self.backend.apply(desired, self.programmed)
        assert stats.repaired == (self.programmed is None), stats  # incremental after the first
        self.programmed = desired


@pytest.fixture(params=BACKENDS)
def box(request: pytest.FixtureRequest) -> Iterator[tuple[Box, Node1, Prober]]:
    require_backend(request.param)
    with cluster_box(cluster([*KNOWN, NEW])) as found:
        runner = Runner(found.nodes["node-1"].netns)
        sources = [*found.pods.values(), *found.nodes.values()]
        prober = Prober(found.pods.values(), sources, ports=(80,))
        try:
            yield found, Node1(make_backend(request.param, runner)), prober
        finally:
            prober.close()


def outcomes(box: Box, prober: Prober) -> dict[tuple[str, str, str], str]:
    """(source, destination, protocol) -> outcome, for flows that touch node-1's pods."""
    sources = [*box.pods.values(), *box.nodes.values()]
    flows = [
        Flow(src, dst, protocol, 80)
        for src in sources
        for dst in box.pods.values()
        if src != dst and "node-2" not in (src.name, dst.name) and dst.name != "x/c"
        for protocol in ("TCP", "UDP")
    ]
    flows += [Flow(box.pods["x/new"], box.pods["x/c"], "TCP", 80)]
    flows += [Flow(box.nodes["node-2"], box.pods["x/new"], "TCP", 80)]
    return {(f.src.name, f.dst.name, f.protocol): seen for f, seen in prober.run(flows).items()}


def _involves_new(flow: tuple[str, str, str]) -> bool:
    return "x/new" in flow[:2]


def test_a_new_pod_gets_no_traffic_until_its_state_is_programmed(
    box: tuple[Box, Node1, Prober],
) -> None:
    topology, node, prober = box
    without_new = cluster(KNOWN)
    # Without the flag a pod the firewall does not know is simply open.
    node.program(node_1(without_new, default_deny=False))
    assert set(outcomes(topology, prober).values()) == {"open"}
    # With it, everything to and from that pod is dropped; known pods are unaffected.
    node.program(node_1(without_new, default_deny=True))
    seen = outcomes(topology, prober)
    blocked = {flow for flow, outcome in seen.items() if outcome != "open"}
    assert blocked == {flow for flow in seen if _involves_new(flow)}
    # dropped, not rejected: lost on the way, or EPERM for the node's own sends
    assert {seen[flow] for flow in blocked} == {"timeout", "EPERM"}
    assert {seen[flow] for flow in blocked if flow[0] != "node-1"} == {"timeout"}
    assert seen[("node-1", "x/a", "TCP")] == "open"  # kubelet probes of known pods
    # Once the state that knows the pod is programmed, it is open like the others.
    node.program(node_1(cluster([*KNOWN, NEW]), default_deny=True))
    assert set(outcomes(topology, prober).values()) == {"open"}
