"""Property: for generated clusters, the compiled rules (walked by the evaluator) and the
reference evaluator agree on every flow: pod to pod, pod to node, node to pod, and to or
from addresses outside the cluster, over both families."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuberouter.netpol import reference
from kuberouter.netpol.loader import load_objects
from kuberouter.netpol.simulate import Simulator
from tests.kuberouter.netpol.builders import NODE_IPS, pod_dict

NODES = {**NODE_IPS, "node-3": ("192.168.0.3", "fd00:ffff::3")}
NAMESPACES = ("x", "y", "z")
OUTSIDE = ("10.0.0.200", "192.0.2.1", "fd00::99", "2001:db8::1")
PORT_CATALOGUE = (
    ("http", 80, "TCP"),
    ("dns", 53, "UDP"),
    ("dns-tcp", 53, "TCP"),
    ("sctp", 80, "SCTP"),
    (None, 81, "TCP"),
)
CIDRS = (
    {"cidr": "10.0.0.0/24"},
    {"cidr": "10.0.0.0/29", "except": ["10.0.0.2/32"]},
    {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/30", "10.0.0.0/31"]},
    {"cidr": "10.0.0.3/32"},
    {"cidr": "192.168.0.0/24"},
    {"cidr": "fd00::/64", "except": ["fd00::2/128"]},
    {"cidr": "::/0"},
    {"cidr": "fd00::4/126"},
)

label_values = st.sampled_from(("a", "b", "c"))
keys = st.sampled_from(("app", "role", "team"))


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    if draw(st.booleans()):
        selector["matchLabels"] = draw(st.dictionaries(keys, label_values, max_size=2))
    if draw(st.booleans()):
        expressions = []
        for _ in range(draw(st.integers(0, 2))):
            operator = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
            expression: dict[str, Any] = {"key": draw(keys), "operator": operator}
            if operator in ("In", "NotIn"):
                expression["values"] = draw(
                    st.lists(label_values, min_size=1, max_size=2, unique=True)
                )
            expressions.append(expression)
        selector["matchExpressions"] = expressions
    return selector


@st.composite
def peers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("pod", "namespace", "both", "ipBlock")))
    if kind == "ipBlock":
        return {"ipBlock": draw(st.sampled_from(CIDRS))}
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selectors())
    if kind in ("namespace", "both"):
        peer["namespaceSelector"] = draw(selectors())
    return peer


@st.composite
def policy_ports(draw: st.DrawFn) -> dict[str, Any]:
    port: dict[str, Any] = {}
    protocol = draw(st.sampled_from((None, "TCP", "UDP", "SCTP")))
    if protocol:
        port["protocol"] = protocol
    shape = draw(st.sampled_from(("none", "number", "range", "name")))
    if shape == "number":
        port["port"] = draw(st.sampled_from((53, 80, 81, 8080)))
    elif shape == "range":
        port["port"], port["endPort"] = draw(st.sampled_from(((53, 80), (80, 81), (81, 8080))))
    elif shape == "name":
        port["port"] = draw(st.sampled_from(("http", "dns", "dns-tcp", "sctp", "missing")))
    return port


@st.composite
def rules(draw: st.DrawFn, peers_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule[peers_key] = draw(st.lists(peers(), max_size=3))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(policy_ports(), max_size=3))
    return rule


@st.composite
def policies(draw: st.DrawFn, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selectors())}
    types = draw(st.sampled_from((None, ["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    if types:
        spec["policyTypes"] = types
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(rules("to"), max_size=2))
    namespace = draw(st.sampled_from(NAMESPACES))
    return {
        "kind": "NetworkPolicy",
        "metadata": {"namespace": namespace, "name": f"p{index}"},
        "spec": spec,
    }


@st.composite
def pods(draw: st.DrawFn, index: int) -> dict[str, Any]:
    node = draw(st.sampled_from(sorted(NODES)))
    host_network = draw(st.integers(0, 9)) == 0
    family = draw(st.sampled_from(("4", "6", "46")))
    ips: tuple[str, ...] = ()
    if host_network:
        ips = NODES[node]
    else:
        ips = (f"10.0.0.{index + 1}",) * ("4" in family) + (f"fd00::{index + 1}",) * ("6" in family)
    chosen = draw(
        st.lists(st.sampled_from(PORT_CATALOGUE), max_size=3, unique_by=lambda p: p[0] or p[1])
    )
    raw = pod_dict(
        f"{draw(st.sampled_from(NAMESPACES))}/pod{index}",
        ips,
        labels=draw(st.dictionaries(keys, label_values, max_size=2)),
        node=node,
        ports=tuple(chosen),
        host_network=host_network,
        phase="Succeeded" if draw(st.integers(0, 9)) == 0 else "Running",
    )
    raw["status"]["hostIPs"] = [{"ip": ip} for ip in NODES[node]]
    return raw


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for name in NAMESPACES:
        labels = draw(st.dictionaries(keys, label_values, max_size=2))
        documents.append({"kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    documents += [draw(pods(i)) for i in range(draw(st.integers(1, 6)))]
    documents += [draw(policies(i)) for i in range(draw(st.integers(0, 4)))]
    return documents


def _addresses(documents: list[dict[str, Any]]) -> set[str]:
    found = set(OUTSIDE)
    for ips in NODES.values():
        found.update(ips)
    for document in documents:
        if document["kind"] == "Pod":
            found.update(entry["ip"] for entry in document["status"]["podIPs"])
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    documents=clusters(),
    probes=st.lists(
        st.tuples(st.sampled_from((53, 80, 81, 8080)), st.sampled_from(("TCP", "UDP", "SCTP"))),
        min_size=1,
        max_size=3,
        unique=True,
    ),
)
def test_compiled_rules_agree_with_the_reference(
    documents: list[dict[str, Any]], probes: list[tuple[int, str]]
) -> None:
    loaded = load_objects(documents)
    assert loaded.problems == ()
    sim = Simulator(loaded.cluster)
    addresses = sorted(_addresses(documents))
    for port, protocol in probes:
        for src in addresses:
            for dst in addresses:
                if (":" in src) != (":" in dst) or (src == dst and src in OUTSIDE):
                    continue
                want = reference.flow_allowed(loaded.cluster, src, dst, port, protocol)
                got = sim.flow(src, dst, port, protocol)
                assert got.allowed == want, (src, dst, port, protocol, got.walks)
        for a in loaded.cluster.pods:
            for b in loaded.cluster.pods:
                assert sim.allowed(a, b, port, protocol) == reference.allowed(
                    loaded.cluster, a, b, port, protocol
                )
