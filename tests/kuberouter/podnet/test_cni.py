"""The CNI configuration as text: our template, an operator's template kept, the owned
fields (ranges, mtu) replaced, canonical so an unchanged input renders byte for byte."""

from __future__ import annotations

import json

import pytest

from kuberouter.podnet import cni

CIDRS = ("10.244.1.0/24", "fd00:0:0:1::/64")


def parsed(rendered: cni.Rendered) -> dict:  # type: ignore[type-arg]
    return dict(json.loads(rendered.text))


def test_a_fresh_conflist_is_bridge_on_kube_bridge_with_host_local_and_portmap() -> None:
    rendered = cni.render(None, conflist=True, pod_cidrs=CIDRS, mtu=1450)
    document = parsed(rendered)
    assert rendered.problem is None
    assert document["cniVersion"] == "0.3.1" and document["name"] == "mynet"
    bridge, portmap = document["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "kube-bridge"
    assert bridge["isDefaultGateway"] is True and bridge["hairpinMode"] is True
    assert bridge["mtu"] == 1450
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:0:0:1::/64"}]],
    }
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    assert rendered.text.endswith("}\n")


def test_a_conf_file_holds_the_bridge_plugin_alone() -> None:
    document = parsed(cni.render(None, conflist=False, pod_cidrs=CIDRS[:1], mtu=None))
    assert "plugins" not in document and "mtu" not in document
    assert (document["type"], document["name"], document["bridge"]) == (
        "bridge",
        "mynet",
        "kube-bridge",
    )
    assert document["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]


def test_rendering_what_was_written_gives_the_same_text() -> None:
    first = cni.render(None, conflist=True, pod_cidrs=CIDRS, mtu=1500).text
    again = cni.render(first, conflist=True, pod_cidrs=CIDRS, mtu=1500)
    assert again.text == first and again.problem is None
    changed = cni.render(first, conflist=True, pod_cidrs=CIDRS, mtu=1400).text
    assert changed != first and parsed(cni.Rendered(text=changed))["plugins"][0]["mtu"] == 1400


def test_an_operators_template_keeps_everything_we_do_not_own() -> None:
    template = {
        "cniVersion": "0.3.0",
        "name": "k8s-pod-network",
        "plugins": [
            {
                "name": "kubernetes",
                "type": "bridge",
                "bridge": "kube-bridge",
                "ipMasq": False,
                "mtu": 9000,
                "ipam": {
                    "type": "host-local",
                    "subnet": "10.9.9.0/24",  # legacy, stale: replaced by the node's ranges
                    "ranges": [[{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10"}]],
                    "dataDir": "/var/lib/x",
                },
            },
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
        ],
    }
    document = parsed(cni.render(json.dumps(template), conflist=True, pod_cidrs=CIDRS, mtu=None))
    bridge = document["plugins"][0]
    assert document["name"] == "k8s-pod-network" and document["cniVersion"] == "0.3.0"
    assert bridge["ipMasq"] is False and bridge["mtu"] == 9000  # no --auto-mtu: theirs stays
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [
            [{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10"}],  # kept as written
            [{"subnet": "fd00:0:0:1::/64"}],
        ],
        "dataDir": "/var/lib/x",
    }
    assert document["plugins"][1] == {"type": "bandwidth", "capabilities": {"bandwidth": True}}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"plugins": [{"type": "ptp"}]}', "no plugin of type bridge in plugins"),
        ('{"plugins": [{"type": "bridge", "ipam": 3}]}', "ipam is not an object"),
    ],
)
def test_an_unusable_file_is_replaced_by_ours_and_says_why(text: str, problem: str) -> None:
    rendered = cni.render(text, conflist=True, pod_cidrs=CIDRS, mtu=None)
    assert rendered.problem is not None and problem in rendered.problem
    assert parsed(rendered) == parsed(cni.render(None, conflist=True, pod_cidrs=CIDRS, mtu=None))


def test_a_pod_cidr_that_changes_replaces_the_old_range() -> None:
    first = cni.render(None, conflist=True, pod_cidrs=("10.244.1.0/24",), mtu=None).text
    moved = parsed(cni.render(first, conflist=True, pod_cidrs=("10.244.7.0/24",), mtu=None))
    assert moved["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.7.0/24"}]]
