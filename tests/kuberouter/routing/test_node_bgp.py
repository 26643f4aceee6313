"""Node BGP annotations as upstream writes them, and what happens to malformed ones."""

from __future__ import annotations

import base64

import pytest

from kuberouter.model.node_bgp import BfdOptions, BgpPeer, NodeBgp, parse

SECRET = "s3cret-Value"
B64 = base64.b64encode(SECRET.encode()).decode()


def test_peers_yaml_as_upstream_documents_it() -> None:
    view = parse({"kube-router.io/peers": f"""
- remoteip: 192.0.2.1
  remoteasn: 65001
  password: {B64}
- remoteip: 2001:db8::1
  remoteasn: 4200000001
  localip: 2001:db8::10
  port: 1790
  bfd: {{enabled: true, detection_multiplier: 5}}
"""})
    assert view.problems == ()
    assert view.peers == (
        BgpPeer(address="192.0.2.1", asn=65001, password=SECRET.encode()),
        BgpPeer(address="2001:db8::1", asn=4200000001, port=1790,
                local_address="2001:db8::10", bfd=BfdOptions(multiplier=5)),
    )  # fmt: skip
    assert SECRET not in repr(view) and B64 not in repr(view)


def test_older_per_field_peer_annotations_match_by_position() -> None:
    view = parse({
        "kube-router.io/peer.ips": "192.0.2.1,192.0.2.2",
        "kube-router.io/peer.asns": "65001,65002",
        "kube-router.io/peer.passwords": f"{B64},",
        "kube-router.io/peer.ports": ",1790",
    })  # fmt: skip
    assert view.peers == (
        BgpPeer(address="192.0.2.1", asn=65001, password=SECRET.encode()),
        BgpPeer(address="192.0.2.2", asn=65002, port=1790),
    )


def test_communities_prepend_import_reject_and_cluster_ids() -> None:
    view = parse({
        "kube-router.io/node.bgp.communities": "65000:100, 4259840100,no-export",
        "kube-router.io/path-prepend.as": "65000",
        "kube-router.io/path-prepend.repeat-n": "3",
        "kube-router.io/node.bgp.customimportreject": "10.0.0.0/8, 2001:db8::/32",
        "kube-router.io/rr.server": "42",
        "kube-router.io/pod-cidr": "10.244.1.7/24",
    })  # fmt: skip
    assert view.problems == ()
    assert view.communities == ("65000:100", "no-export")  # duplicates (as numbers too) dropped
    assert view.prepend == (65000, 3)
    assert view.import_reject == ("10.0.0.0/8", "2001:db8::/32")
    assert view.rr_server == "0.0.0.42" and view.pod_cidrs == ("10.244.1.0/24",)


@pytest.mark.parametrize(
    ("notes", "annotation", "reason"),
    [
        ({"kube-router.io/peers": "- remoteip: [1"}, "kube-router.io/peers", "not valid YAML"),
        ({"kube-router.io/peers": "remoteip: 1.2.3.4"}, "kube-router.io/peers", "YAML list"),
        ({"kube-router.io/peers": "- remoteip: 192.0.2.1"}, "kube-router.io/peers",
         "remoteasn cannot be empty"),
        ({"kube-router.io/peers": "- {remoteip: 192.0.2.1, remoteasn: 1, pasword: x}"},
         "kube-router.io/peers", "unknown key 'pasword'"),
        ({"kube-router.io/peers": "- {remoteip: 192.0.2.1, remoteasn: 1, password: '!!'}"},
         "kube-router.io/peers", "not valid base64"),
        ({"kube-router.io/peer.ips": "192.0.2.1", "kube-router.io/peer.asns": "1,2"},
         "kube-router.io/peer.asns", "2 AS numbers for 1 peers"),
        ({"kube-router.io/node.bgp.communities": "65000:100,70000:1"},
         "kube-router.io/node.bgp.communities", "not a BGP community"),
        ({"kube-router.io/path-prepend.as": "65000", "kube-router.io/path-prepend.repeat-n": "0"},
         "kube-router.io/path-prepend.repeat-n", "outside"),
    ],
)  # fmt: skip
def test_malformed_annotations_are_named_and_read_as_absent(
    notes: dict[str, str], annotation: str, reason: str
) -> None:
    view = parse({**notes, "kube-router.io/node.asn": "65010"})
    [problem] = view.problems
    assert problem.annotation == annotation and reason in problem.message, problem
    assert view.asn == 65010  # the others still count
    assert "!!" not in str(problem)


def test_a_password_never_shows_in_a_problem() -> None:
    bad = "pa ss:wörd"  # not base64
    view = parse({"kube-router.io/peer.ips": "192.0.2.1", "kube-router.io/peer.asns": "1",
                  "kube-router.io/peer.passwords": bad})  # fmt: skip
    [problem] = view.problems
    assert bad not in str(problem) and "base64" in problem.message


def test_a_bad_annotation_keeps_the_last_good_value() -> None:
    good = parse({"kube-router.io/node.asn": "65010", "kube-router.io/rr.client": "1"})
    typo = parse({"kube-router.io/node.asn": "65O10", "kube-router.io/rr.client": "2"})
    kept = typo.keeping_last_good(good)
    assert kept.asn == 65010 and kept.rr_client == "0.0.0.2"  # the typo only is ignored
    assert typo.keeping_last_good(None).asn is None
    assert NodeBgp().keeping_last_good(good) == NodeBgp()  # removed: gone, not kept
