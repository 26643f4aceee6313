"""Equal model values share one object, and a value nobody uses leaves the table."""

from __future__ import annotations

import gc
import weakref

from kuberouter.model import NetworkPolicy, Pod
from kuberouter.model.labels import Labels
from kuberouter.model.shared import _TABLE, shared


def _pod(name: str, labels: dict[str, str]) -> Pod:
    return Pod.from_k8s(
        {
            "metadata": {"namespace": "web", "name": name, "labels": labels},
            "spec": {"nodeName": "node-1", "containers": [{"ports": [{"containerPort": 80}]}]},
            "status": {"podIPs": [{"ip": f"10.0.0.{len(name)}"}], "hostIP": "192.168.0.1"},
        }
    )


def test_pods_with_equal_labels_ports_and_strings_share_them() -> None:
    a, b = _pod("a", {"app": "web"}), _pod("bb", {"app": "web"})
    assert a.labels is b.labels and a.container_ports is b.container_ports
    assert a.host_ips is b.host_ips and a.namespace is b.namespace
    assert a.ips != b.ips


def test_policies_stamped_out_per_namespace_share_their_rules() -> None:
    spec = {
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
    }
    first, second = (
        NetworkPolicy.from_k8s({"metadata": {"namespace": ns, "name": "p"}, "spec": spec})
        for ns in ("x", "y")
    )
    assert first.pod_selector is second.pod_selector and first.ingress is second.ingress


def test_a_value_no_one_holds_leaves_the_table() -> None:
    value = shared(Labels({"unique-key-for-this-test": "1"}))
    assert shared(Labels({"unique-key-for-this-test": "1"})) is value
    assert Labels({"unique-key-for-this-test": "1"}) in _TABLE
    gone = weakref.ref(value)
    del value
    gc.collect()
    assert gone() is None  # the table did not keep it alive
    assert Labels({"unique-key-for-this-test": "1"}) not in _TABLE
