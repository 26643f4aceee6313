"""The store on its own: differences only, copy-on-write snapshots, subscribers, refusals."""

from __future__ import annotations

import logging

import pytest
import trio

from kuberouter.k8s import Store
from kuberouter.model import InvalidObject, Labels, Namespace, NetworkPolicy, Pod
from tests.kuberouter.k8s.conftest import pending


def pod(name: str, namespace: str = "web", **labels: str) -> Pod:
    return Pod(namespace=namespace, name=name, labels=Labels(labels))


def test_equal_writes_are_no_change_and_versions_count_changes() -> None:
    store = Store()
    first = store.apply("Pod", "web/a", pod("a"))
    assert first is not None and first.type == "ADDED" and store.version == 1
    assert store.apply("Pod", "web/a", pod("a")) is None  # equal view: nothing happened
    modified = store.apply("Pod", "web/a", pod("a", app="x"))
    assert modified is not None and modified.type == "MODIFIED" and modified.old == pod("a")
    deleted = store.apply("Pod", "web/a", None)
    assert deleted is not None and deleted.type == "DELETED" and deleted.new is None
    assert store.apply("Pod", "web/a", None) is None
    assert store.version == 3 and store.changes["Pod"] == 3


def test_replace_yields_only_the_differences() -> None:
    store = Store()
    store.replace("Pod", {"web/a": pod("a"), "web/b": pod("b"), "web/c": pod("c")})
    changes = store.replace("Pod", {"web/a": pod("a"), "web/b": pod("b", v="2"), "web/d": pod("d")})
    assert sorted((c.type, c.key) for c in changes) == [
        ("ADDED", "web/d"),
        ("DELETED", "web/c"),
        ("MODIFIED", "web/b"),
    ]
    assert set(store.items(Pod)) == {"web/a", "web/b", "web/d"}
    assert store.replace("Pod", dict(store.items(Pod))) == []


def test_snapshots_are_copy_on_write() -> None:
    store = Store()
    store.apply("Pod", "web/a", pod("a"))
    store.apply("Pod", "db/b", pod("b", namespace="db"))
    store.apply("Namespace", "web", Namespace.implicit("web"))
    before = store.snapshot()
    assert store.snapshot() is before  # nothing changed: the same snapshot
    store.apply("Pod", "web/a", None)
    store.apply("Pod", "web/c", pod("c"))
    after = store.snapshot()
    assert set(before.items(Pod)) == {"web/a", "db/b"}
    assert set(after.items(Pod)) == {"web/c", "db/b"}
    assert dict(before.kind("Namespace")) == dict(after.kind("Namespace"))
    assert (before.version, after.version) == (3, 5)
    assert set(after.in_namespace(Pod, "web")) == {"web/c"}
    assert set(after.in_namespace(Pod, "nowhere")) == set()
    assert after.get(Pod, "db/b") == pod("b", namespace="db")
    with pytest.raises(TypeError):
        after.items(Pod)["web/x"] = pod("x")  # type: ignore[index]


async def test_subscribers_get_their_kinds_in_order_and_can_leave() -> None:
    store = Store()
    everything = store.subscribe()
    pods = store.subscribe(["Pod"])
    leaving = store.subscribe()
    leaving.close()
    store.apply("Namespace", "web", Namespace.implicit("web"))
    store.apply("Pod", "web/a", pod("a"))
    store.apply("Pod", "web/a", pod("a", v="2"))
    assert [(c.kind, c.type) for c in pending(everything)] == [
        ("Namespace", "ADDED"),
        ("Pod", "ADDED"),
        ("Pod", "MODIFIED"),
    ]
    assert [c.type for c in pending(pods)] == ["ADDED", "MODIFIED"]
    assert len(store._subscribers) == 2
    with pytest.raises(trio.ClosedResourceError):
        leaving.receive_nowait()


def test_a_refused_object_is_absent_and_logged_once_per_problem(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kuberouter.k8s")
    store = Store()
    good = NetworkPolicy(namespace="db", name="p")
    store.apply("NetworkPolicy", "db/p", good)
    bad = InvalidObject("NetworkPolicy", "db/p", "spec.podSelector: bad")
    change = store.apply("NetworkPolicy", "db/p", bad)
    assert change is not None and change.type == "DELETED" and change.old == good
    for _ in range(3):  # watch events and resyncs with the same problem
        assert store.apply("NetworkPolicy", "db/p", bad) is None
        assert store.replace("NetworkPolicy", {"db/p": bad}) == []
    worse = InvalidObject("NetworkPolicy", "db/p", "spec.ingress: worse")
    store.apply("NetworkPolicy", "db/p", worse)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "ignoring NetworkPolicy db/p until it is fixed: spec.podSelector: bad",
        "ignoring NetworkPolicy db/p until it is fixed: spec.ingress: worse",
    ]
    assert store.invalid() == {("NetworkPolicy", "db/p"): "spec.ingress: worse"}

    fixed = store.apply("NetworkPolicy", "db/p", good)
    assert fixed is not None and fixed.type == "ADDED"
    assert store.invalid() == {}
    assert "db/p is valid again" in caplog.text


def test_deleted_while_refused_leaves_nothing_behind() -> None:
    store = Store()
    store.replace("Pod", {"web/a": InvalidObject("Pod", "web/a", "bad"), "web/b": pod("b")})
    assert set(store.items(Pod)) == {"web/b"} and store.invalid() == {("Pod", "web/a"): "bad"}
    assert store.replace("Pod", {"web/b": pod("b")}) == []
    assert store.invalid() == {}
    assert store.sizes()["Pod"] == 1
