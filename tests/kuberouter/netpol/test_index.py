"""The label index answers as a scan of every pod and namespace would, whatever the
order of adds, removes and namespace changes, on both sides of the size at which a
namespace gets its own label index."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kuberouter.model import LabelSelector, Namespace, Pod
from kuberouter.netpol.index import PodIndex
from tests.kuberouter.netpol.builders import namespace, pod

SPACES = ("x", "y")
keys = st.sampled_from(("app", "team"))
values = st.sampled_from(("a", "b", "c"))
label_maps = st.dictionaries(keys, values, max_size=2)


@st.composite
def selectors(draw: st.DrawFn) -> LabelSelector:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["matchLabels"] = draw(st.dictionaries(keys, values, max_size=2))
    if draw(st.booleans()):
        operator = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
        expression: dict[str, Any] = {"key": draw(keys), "operator": operator}
        if operator in ("In", "NotIn"):
            expression["values"] = draw(st.lists(values, min_size=1, max_size=2))
        spec["matchExpressions"] = [expression]
    return LabelSelector.from_k8s(spec)


def _check(
    index: PodIndex, pods: dict[str, Pod], spaces: dict[str, Namespace], sel: LabelSelector
) -> None:
    for name in SPACES:
        expected = {key for key, p in pods.items() if p.namespace == name and sel.matches(p.labels)}
        assert index.select(name, sel) == expected
    holding = {p.namespace for p in pods.values()}
    labels = {
        name: (spaces[name] if name in spaces else Namespace.implicit(name)).labels
        for name in holding
    }
    assert index.select_namespaces(sel) == {name for name in holding if sel.matches(labels[name])}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_selections_equal_a_scan(data: st.DataObject) -> None:
    index, pods, spaces = PodIndex(), {}, {}
    checks = data.draw(st.lists(selectors(), min_size=1, max_size=4), label="selectors")
    steps = data.draw(
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 79), label_maps), min_size=80, max_size=160
        )
    )
    for what, number, labels in steps:
        name = SPACES[number % 2]
        key = f"{name}/p{number}"
        if what == 0 and key in pods:
            index.remove(key)
            del pods[key]
        elif what == 3:
            spaces[name] = namespace(name, **labels)
            index.set_namespace(name, spaces[name])
        else:
            pods[key] = pod(key, f"10.0.0.{number + 1}", labels=labels)
            index.add(pods[key])
        for sel in checks:
            _check(index, pods, spaces, sel)


def test_a_big_namespace_gets_a_label_index_and_answers_the_same() -> None:
    index = PodIndex()
    members = [pod(f"x/p{n}", f"10.0.1.{n}", labels={"app": "ab"[n % 2]}) for n in range(40)]
    for member in members:
        index.add(member)
    app_a = LabelSelector.from_k8s({"matchLabels": {"app": "a"}})
    assert index.select("x", app_a) == {m.key for m in members if m.labels["app"] == "a"}
    for member in members[:30]:
        index.remove(member.key)
    assert index.select("x", app_a) == {m.key for m in members[30:] if m.labels["app"] == "a"}
