"""Real packets through the programmed firewall agree with `policy simulate`.

The e2e topology (fixtures/netpol/cluster.yaml: 9 pods on node-1 and node-2) becomes
namespaces (topology.py); each node programs its own compiled rules with the back end
under test, scenario after scenario, each change applied incrementally on top of the
previous one. Every ordered pair of distinct pods, and each node towards every pod, is
probed on TCP, UDP and SCTP ports 80 and 81; the outcome must equal the compiled
evaluator's verdict (Simulator, what `kube-router-ctl policy simulate` prints) and the
e2e truth tables. A pod's traffic to itself never reaches the firewall, so the
diagonal is not probed. Blocked flows must be positively refused (REJECT), not lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from kuberouter.dataplane import Runner
from kuberouter.dataplane.firewall import PlannedBackend
from kuberouter.netpol.cluster import Cluster
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.ruleset import DesiredState
from kuberouter.netpol.simulate import Simulator
from kuberouter.netpol.truthtable import parse_table
from tests.kuberouter.dataplane.helpers import (
    BACKENDS,
    FIXTURES,
    make_backend,
    require_backend,
    require_sctp_match,
    scenario_cluster,
)
from tests.kuberouter.dataplane.probe import Endpoint, Flow, Prober
from tests.kuberouter.dataplane.topology import Box, cluster_box

pytestmark = pytest.mark.privileged

# Applied in this order, each on top of the last (incremental applies).
SCENARIOS = (
    "default-deny-ingress",
    "allow-from-pod-in-same-namespace",
    "pod-in-other-namespace",
    "named-port-ingress",
    "endport-ingress",
    "deny-egress-from-namespace",
    "egress-cidr-except",
    "ports-sctp",
    "ingress-any-port-on-protocol",
    "named-port-egress",
    "no-policies",
)
PROBES = tuple((protocol, port) for protocol in ("TCP", "UDP", "SCTP") for port in (80, 81))


@attrs.define
class Node:
    endpoint: Endpoint
    backend: PlannedBackend
    programmed: DesiredState | None = None


@attrs.define
class Harness:
    box: Box
    prober: Prober
    nodes: dict[str, Node]

    def program(self, cluster: Cluster) -> None:
        for name, node in self.nodes.items():
            desired = compile_node(cluster, name)
            stats = node.backend.apply(desired, node.programmed)
            # after the first apply each change is incremental, never a fallback repair
            assert stats.repaired == (node.programmed is None), stats
            node.programmed = desired

    def flows(self) -> list[Flow]:
        sources = [*self.box.pods.values(), *self.box.nodes.values()]
        return [
            Flow(src, dst, protocol, port)
            for src in sources
            for dst in self.box.pods.values()
            if src != dst
            for protocol, port in PROBES
        ]


@contextlib.contextmanager
def _harness(kind: str) -> Iterator[Harness]:
    with cluster_box(scenario_cluster()) as box:
        nodes = {
            name: Node(endpoint, make_backend(kind, Runner(endpoint.netns)))
            for name, endpoint in box.nodes.items()
        }
        sources = [*box.pods.values(), *box.nodes.values()]
        prober = Prober(box.pods.values(), sources, ports=(80, 81))
        try:
            yield Harness(box=box, prober=prober, nodes=nodes)
        finally:
            prober.close()


@pytest.fixture(scope="module", params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    require_backend(request.param)
    require_sctp_match(request.param)
    with _harness(request.param) as found:
        yield found


def _expected(sim: Simulator, cluster: Cluster, flow: Flow) -> bool:
    if flow.src.name in cluster.pods_by_key:
        src, dst = cluster.pods_by_key[flow.src.name], cluster.pods_by_key[flow.dst.name]
        return sim.allowed(src, dst, flow.port, flow.protocol)
    return sim.flow(flow.src.ip, flow.dst.ip, flow.port, flow.protocol).allowed


def _fixture_tables(scenario: str) -> dict[tuple[str, int], dict[str, dict[str, bool]]]:
    tables = {}
    for path in sorted((FIXTURES / scenario).glob("expected-*.txt")):
        port, protocol = Path(path).stem.removeprefix("expected-").split("-")
        tables[(protocol, int(port))] = parse_table(path.read_text())
    return tables


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probes_agree_with_simulate(harness: Harness, scenario: str) -> None:
    cluster = scenario_cluster(scenario)
    harness.program(cluster)
    outcomes = harness.prober.run(harness.flows())
    sim = Simulator(cluster)
    wrong = [
        f"{flow.src.name}->{flow.dst.name} {flow.port}/{flow.protocol}: {outcome}"
        for flow, outcome in outcomes.items()
        if (outcome == "open") != _expected(sim, cluster, flow)
    ]
    assert wrong == []
    lost = {outcome for outcome in outcomes.values()} - {"open", "refused"}
    assert lost == set(), "flows neither accepted nor rejected: a topology problem"
    for (protocol, port), table in _fixture_tables(scenario).items():
        seen = {
            (flow.src.name, flow.dst.name): outcome == "open"
            for flow, outcome in outcomes.items()
            if (flow.protocol, flow.port) == (protocol, port)
        }
        for (src, dst), allowed in seen.items():
            if src in table:
                assert table[src][dst] == allowed, (scenario, src, dst, protocol, port)
