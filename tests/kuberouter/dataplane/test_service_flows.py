"""Real packets through the nftables service proxy follow the packet-flow table.

fixtures/services/cluster.yaml becomes namespaces (service_box.py): two nodes, five pods
answering with their names (echo.py), a client outside. Each node programs its own
compiled state with the nftables back end, then every row of fixtures/services/flows.yaml
is sent as real connections: a DNAT row many times (each a new connection) and it must
reach exactly the listed endpoints (one of them, for session affinity), with the
client's address kept or replaced by the node's as the row says; REJECT must be refused,
DROP and "none" must get no answer. `service trace` agrees with the same rows
(tests/kuberouter/proxy/test_trace.py), so trace and kernel agree with each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import attrs
import pytest

from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.services import ServiceBackend
from kuberouter.dataplane.services.nftables import NftablesServices
from kuberouter.model import Node, Pod
from kuberouter.proxy.trace import trace
from tests.kuberouter.dataplane.echo import EchoPods, Outcome
from tests.kuberouter.dataplane.service_box import ServiceBox, service_box
from tests.kuberouter.proxy.flows import Row, config, objects, rows, source_ip, state_for
from tests.support import require_root, require_tools

pytestmark = pytest.mark.privileged
ROWS = rows()
TRIES = 16  # per DNAT row: the chance to miss one of two endpoints is 2**-15


@attrs.frozen
class Observed:
    box: ServiceBox
    mode: str
    outcomes: dict[Row, list[Outcome]]


def node_addresses(box: ServiceBox, node: str) -> set[str]:
    """What a masqueraded connection may show as its source: the node's own addresses."""
    found = objects()["Node"][node]
    gateway = found.pod_cidrs[0].rsplit(".", 1)[0] + ".1"
    return {box.nodes[node].ip, gateway}


@contextlib.contextmanager
def observe(
    make_backend: Callable[[Runner], ServiceBackend], mode: str, timeout: float = 1.5
) -> Iterator[Observed]:
    """The box built, every node programmed by its back end, every row sent (a probe not
    answered within `timeout` seconds counts as dropped)."""
    found = objects()
    nodes: list[Node] = list(found["Node"].values())
    pods: list[Pod] = list(found["Pod"].values())
    with service_box(nodes, pods) as box:
        for node in nodes:
            backend = make_backend(Runner(box.nodes[node.name].netns))
            backend.apply(state_for(node.name, config(f"--service-proxy-mode={mode}")), None)
        echo = EchoPods(box.pods.values(), tcp=(8080, 5353), udp=(5353,), sctp=True)
        try:
            probes = [
                (row, (box.place(row.source), row.destination, row.port, row.protocol))
                for row in ROWS
                for _ in range(TRIES if row.verdict_in(mode) == "dnat" else 2)
            ]
            results = echo.probe_many((probe for _, probe in probes), timeout)
            outcomes: dict[Row, list[Outcome]] = {}
            for (row, _), outcome in zip(probes, results, strict=True):
                outcomes.setdefault(row, []).append(outcome)
            yield Observed(box=box, mode=mode, outcomes=outcomes)
        finally:
            echo.close()


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    require_root()
    require_tools("ip", "nft", "sysctl")
    with observe(NftablesServices, "nftables") as found:
        yield found


def sticky(row: Row) -> bool:
    state = state_for(row.node)
    result = trace(state, source_ip(row.source), row.destination, row.port, row.protocol)
    service = next(vs for vs in state.virtual_services() if vs.key == result.service)
    return service.affinity_timeout is not None


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_real_packets_follow_the_packet_flow_table(observed: Observed, row: Row) -> None:
    check_row(observed, row)


def check_row(observed: Observed, row: Row) -> None:
    outcomes = observed.outcomes[row]
    results = {outcome.result for outcome in outcomes}
    verdict = row.verdict_in(observed.mode)
    if verdict == "reject":
        assert results == {"refused"}
        return
    if verdict in ("drop", "none"):
        assert results <= {"timeout", "EHOSTUNREACH", "ENETUNREACH"}, outcomes
        return
    assert results == {"answered"}, outcomes
    pod_ips = {name: place.ip for name, place in observed.box.pods.items()}
    reached = {pod_ips[outcome.pod] for outcome in outcomes}
    wanted = {endpoint.rsplit(":", 1)[0] for endpoint in row.endpoints}
    if sticky(row):
        assert len(reached) == 1 and reached <= wanted  # one client keeps one endpoint
    else:
        assert reached == wanted
    seen = {outcome.seen for outcome in outcomes}
    if row.masquerade:
        assert seen <= node_addresses(observed.box, row.node), seen
    else:
        assert seen == {source_ip(row.source)}
