"""The incremental compiler against the reference `compile_node`.

Property: after any sequence of pod adds, deletes and label changes, namespace label
changes (and deletes), and policy adds, changes and deletes, recomputed in random
batches, the incremental state equals a from-scratch compile of the final objects, and
programming each batch's state incrementally (FakeBackend, `apply(desired, previous)`)
leaves exactly that from-scratch state programmed.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuberouter.dataplane import FakeBackend
from kuberouter.model import Namespace, NetworkPolicy, Pod
from kuberouter.model.labels import Labels
from kuberouter.netpol import names
from kuberouter.netpol.cluster import Cluster
from kuberouter.netpol.compiler import compile_node
from kuberouter.netpol.incremental import IncrementalCompiler
from kuberouter.netpol.ruleset import DesiredState
from tests.kuberouter.netpol.builders import namespace, pod_dict
from tests.kuberouter.netpol.test_equivalence import CIDRS, NAMESPACES, PORT_CATALOGUE

NODE = "node-1"
NODE_IPS = ("192.168.0.1", "fd00:ffff::1")  # what the Node object says
POD_CIDRS = ("10.0.0.0/24", "fd00::/120")  # for --netpol-default-deny
# A small label vocabulary, so selectors often flip when a label changes.
keys = st.sampled_from(("app", "team"))
values = st.sampled_from(("a", "b"))
label_maps = st.dictionaries(keys, values, max_size=2)


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("all", "labels", "labels", "expression")))
    if kind == "all":
        return {}
    if kind == "labels":
        return {"matchLabels": draw(st.dictionaries(keys, values, min_size=1, max_size=1))}
    operator = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
    expression: dict[str, Any] = {"key": draw(keys), "operator": operator}
    if operator in ("In", "NotIn"):
        expression["values"] = [draw(values)]
    return {"matchExpressions": [expression]}


@st.composite
def peers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("pod", "namespace", "both", "both", "ipBlock")))
    if kind == "ipBlock":
        return {"ipBlock": draw(st.sampled_from(CIDRS))}
    peer: dict[str, Any] = {}
    if kind != "namespace":
        peer["podSelector"] = draw(selectors())
    if kind != "pod":
        peer["namespaceSelector"] = draw(selectors())
    return peer


@st.composite
def rules(draw: st.DrawFn, peers_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {peers_key: draw(st.lists(peers(), min_size=1, max_size=2))}
    if draw(st.booleans()):
        name = draw(st.sampled_from(("http", "dns", "sctp", "missing", 80)))
        rule["ports"] = [{"port": name, "protocol": "UDP" if name == "dns" else "TCP"}]
    return rule


@st.composite
def policies(draw: st.DrawFn, number: int) -> NetworkPolicy:
    spec: dict[str, Any] = {
        "podSelector": draw(selectors()),
        "ingress": draw(st.lists(rules("from"), max_size=2)),
        "egress": draw(st.lists(rules("to"), max_size=1)),
    }
    types = draw(st.sampled_from((None, ["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    if types:
        spec["policyTypes"] = types
    meta = {"namespace": draw(st.sampled_from(NAMESPACES)), "name": f"p{number}"}
    return NetworkPolicy.from_k8s({"kind": "NetworkPolicy", "metadata": meta, "spec": spec})


@st.composite
def pods(draw: st.DrawFn, number: int) -> Pod:
    node = draw(st.sampled_from(("node-1", "node-1", "node-2")))
    family = draw(st.sampled_from(("4", "4", "6", "46")))
    ips = (f"10.0.0.{number + 1}",) * ("4" in family)
    ips += (f"fd00::{number + 1}",) * ("6" in family)
    odd = draw(st.integers(0, 9))
    raw = pod_dict(
        f"{draw(st.sampled_from(NAMESPACES))}/pod{number}",
        ("192.168.0.2",) if odd == 0 else ips,
        labels=draw(label_maps),
        node=node,
        ports=tuple(draw(st.lists(st.sampled_from(PORT_CATALOGUE), max_size=2, unique=True))),
        host_network=odd == 0,
        phase="Failed" if odd == 1 else "Running",
    )
    return Pod.from_k8s(raw)


class World:
    """The objects as the store would hold them, and both compilers' views of them."""

    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {}
        self.pods: dict[str, Pod] = {}
        self.policies: dict[str, NetworkPolicy] = {}
        self.default_deny: tuple[str, ...] = ()
        self.incremental = IncrementalCompiler(NODE)
        self.incremental.set_node_ips(NODE_IPS)

    def set_default_deny(self, cidrs: tuple[str, ...]) -> None:
        self.default_deny = cidrs
        self.incremental.set_default_deny(cidrs)

    def set_pod(self, key: str, value: Pod | None) -> None:
        _put(self.pods, key, value)
        self.incremental.set_pod(key, value)

    def set_namespace(self, name: str, value: Namespace | None) -> None:
        _put(self.namespaces, name, value)
        self.incremental.set_namespace(name, value)

    def set_policy(self, key: str, value: NetworkPolicy | None) -> None:
        _put(self.policies, key, value)
        self.incremental.set_policy(key, value)

    def fresh(self) -> DesiredState:
        cluster = Cluster.build(
            namespaces=self.namespaces.values(),
            pods=self.pods.values(),
            policies=self.policies.values(),
            node_ips={NODE: NODE_IPS},
        )
        return compile_node(cluster, NODE, default_deny=self.default_deny)


def _put(table: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def assert_same(got: DesiredState, want: DesiredState) -> None:
    assert set(got.rulesets) == set(want.rulesets)
    for family, ruleset in want.rulesets.items():
        mine = got.rulesets[family]
        assert mine.local_addresses == ruleset.local_addresses, family
        assert list(mine.sets.items()) == list(ruleset.sets.items()), family
        assert list(mine.chains.items()) == list(ruleset.chains.items()), family


@st.composite
def operations(draw: st.DrawFn, world_size: int) -> tuple[str, Any]:
    """One change: (what, argument)."""
    what = draw(
        st.sampled_from(
            [
                "pod",
                "pod",
                "label",
                "label",
                "delete-pod",
                "namespace",
                "policy",
                "delete-policy",
                "deny",
            ]
        )
    )
    number = draw(st.integers(0, world_size - 1))
    if what == "pod":
        return what, draw(pods(number))
    if what == "policy":
        return what, draw(policies(number))
    if what == "label":
        return what, (number, draw(label_maps))
    if what == "namespace":
        name = draw(st.sampled_from(NAMESPACES))
        deleted = draw(st.integers(0, 5)) == 0
        labels = draw(label_maps)
        return what, (name, None if deleted else namespace(name, **labels))
    if what == "deny":
        return what, draw(st.sampled_from(((), POD_CIDRS, POD_CIDRS[:1])))
    return what, number


def _apply(world: World, what: str, argument: Any) -> None:
    if what == "pod":
        world.set_pod(argument.key, argument)
    elif what == "policy":
        world.set_policy(argument.key, argument)
    elif what == "label":
        number, labels = argument
        found = sorted(world.pods)
        if found:
            key = found[number % len(found)]
            old = world.pods[key]
            world.set_pod(key, attrs.evolve(old, labels=Labels(labels)))
    elif what == "namespace":
        world.set_namespace(*argument)
    elif what == "deny":
        world.set_default_deny(argument)
    elif what == "delete-pod":
        found = sorted(world.pods)
        if found:
            world.set_pod(found[argument % len(found)], None)
    elif what == "delete-policy":
        found = sorted(world.policies)
        if found:
            world.set_policy(found[argument % len(found)], None)


def _start(data: st.DataObject, world: World, size: int) -> None:
    """A first cluster: the namespaces, `size` pods, some policies."""
    for name in NAMESPACES:
        world.set_namespace(name, namespace(name, **data.draw(label_maps)))
    for number in range(size):
        found = data.draw(pods(number))
        world.set_pod(found.key, found)
    for number in range(data.draw(st.integers(1, size))):
        rule = data.draw(policies(number))
        world.set_policy(rule.key, rule)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_incremental_changes_end_as_a_fresh_compile(data: st.DataObject) -> None:
    world, backend = World(), FakeBackend()
    size = data.draw(st.integers(3, 10), label="world size")
    if data.draw(st.booleans(), label="default deny"):
        world.set_default_deny(POD_CIDRS)
    _start(data, world, size)
    previous: DesiredState | None = None
    # (change, whether the batch ends after it): a batch is recomputed and applied at once
    changes = data.draw(
        st.lists(st.tuples(operations(size), st.booleans()), min_size=1, max_size=30),
        label="changes",
    )
    for (what, argument), sync in [(("start", None), True), *changes]:
        _apply(world, what, argument)
        if sync:
            state = world.incremental.state()
            assert_same(state, world.fresh())
            backend.apply(state, previous)
            previous = state
    state = world.incremental.state()
    want = world.fresh()
    assert_same(state, want)
    backend.apply(state, previous)
    assert backend.holds(want)


# -- what a change recomputes --------------------------------------------------------------

ALLOW_FROM = {
    "podSelector": {"matchLabels": {"app": "a"}},
    "ingress": [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
            "ports": [{"port": "http"}],
        }
    ],
}
FROM_TEAM_NAMESPACES = {
    "podSelector": {"matchLabels": {"app": "a"}},
    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}],
}


def _pod(key: str, number: int, app: str, node: str = NODE, http: int = 0) -> Pod:
    ports = (("http", http, "TCP"),) if http else ()
    return Pod.from_k8s(
        pod_dict(key, (f"10.0.0.{number}",), labels={"app": app}, node=node, ports=ports)
    )


def _small_world() -> World:
    """Two namespaces, each with a local target and a remote peer, and two policies per
    namespace; everything compiled once."""
    world = World()
    for name in ("x", "y"):
        world.set_namespace(name, namespace(name))
    world.set_pod("x/a", _pod("x/a", 1, "a"))
    world.set_pod("x/b", _pod("x/b", 2, "b", node="node-2"))
    world.set_pod("y/a", _pod("y/a", 3, "a"))
    world.set_pod("y/b", _pod("y/b", 4, "b", node="node-2"))
    world.set_pod("z/b", _pod("z/b", 5, "b", node="node-2"))
    for name in ("x", "y"):
        rule = NetworkPolicy.from_k8s(
            {
                "kind": "NetworkPolicy",
                "metadata": {"namespace": name, "name": "from-b"},
                "spec": ALLOW_FROM,
            }
        )
        world.set_policy(rule.key, rule)
    team = NetworkPolicy.from_k8s(
        {
            "kind": "NetworkPolicy",
            "metadata": {"namespace": "y", "name": "team"},
            "spec": FROM_TEAM_NAMESPACES,
        }
    )
    world.set_policy(team.key, team)
    world.incremental.state()
    world.incremental.recomputed = 0
    return world


def _changed_chains(before: DesiredState, after: DesiredState) -> set[str]:
    old, new = before.rulesets[4].chains, after.rulesets[4].chains
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


def _changed_sets(before: DesiredState, after: DesiredState) -> set[str]:
    old, new = before.rulesets[4].sets, after.rulesets[4].sets
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


def test_a_remote_peer_label_change_changes_only_the_set_it_feeds() -> None:
    world = _small_world()
    before = world.incremental.state()
    world.set_pod("x/b", _pod("x/b", 2, "c", node="node-2"))  # leaves x/from-b's peers
    after = world.incremental.state()
    assert world.incremental.recomputed == 0  # no policy is compiled again
    assert _changed_chains(before, after) == set()
    peers = names.rule_pods_set("x", "from-b", "ingress", 0, 4)
    assert _changed_sets(before, after) == {peers}
    assert set(after.rulesets[4].sets[peers].entries) == set()
    assert_same(after, world.fresh())


def test_a_namespace_label_change_changes_only_namespace_selecting_sets() -> None:
    world = _small_world()
    before = world.incremental.state()
    world.set_namespace("z", namespace("z", team="a"))
    after = world.incremental.state()
    assert world.incremental.recomputed == 0
    # y/team now takes z/b in; the from-b policies do not care
    peers = names.rule_pods_set("y", "team", "ingress", 0, 4)
    assert _changed_sets(before, after) == {peers}
    assert "10.0.0.5" in after.rulesets[4].sets[peers].entries
    assert_same(after, world.fresh())


def test_a_new_local_pod_gets_its_chains_and_leaves_other_pods_alone() -> None:
    world = _small_world()
    before = world.incremental.state()
    world.set_pod("x/a2", _pod("x/a2", 6, "a"))
    after = world.incremental.state()
    assert world.incremental.recomputed == 0  # x/from-b now selects it: reshaped, not compiled
    targets = names.target_set("x", "from-b", "ingress", 4)
    assert _changed_sets(before, after) == {targets}
    [pod_chain] = [
        name for name, chain in after.rulesets[4].chains.items() if chain.owner == "x/a2"
    ]
    # its ingress chain and the jumps to it (ingress: from FORWARD and OUTPUT only)
    changed = {pod_chain, "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT"}
    assert _changed_chains(before, after) == changed
    assert_same(after, world.fresh())


def test_a_named_port_change_refreshes_the_shared_set_without_recompiling_policies() -> None:
    world = _small_world()
    world.set_pod("z/b", _pod("z/b", 5, "b", node="node-2", http=8080))
    state = world.incremental.state()
    assert world.incremental.recomputed == 0
    shared = [ipset for ipset in state.rulesets[4].sets.values() if ipset.type == "hash:ip,port"]
    assert [sorted(ipset.entries) for ipset in shared] == [["10.0.0.5,tcp:8080"]]
    assert_same(state, world.fresh())


def test_a_policy_change_recomputes_that_policy_only() -> None:
    world = _small_world()
    changed = NetworkPolicy.from_k8s(
        {
            "kind": "NetworkPolicy",
            "metadata": {"namespace": "x", "name": "from-b"},
            "spec": {**ALLOW_FROM, "policyTypes": ["Ingress", "Egress"]},
        }
    )
    world.set_policy(changed.key, changed)
    assert_same(world.incremental.state(), world.fresh())
    assert world.incremental.recomputed == 1
