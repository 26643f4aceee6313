"""ADD-PATH (RFC 7911) against FRR (in its container), both ways.

Two paths for one prefix need two origins: two small "feeder" pybgpd instances (AS 65010 and
65020) in the peer's namespace, each on an address of its own (10.0.1.2, 10.0.2.2), originate
10.9.0.0/24.
- receive: the feeders peer with FRR; FRR sends both of its paths to pybgpd with
  `addpath-tx-all-paths`; pybgpd (`add_path_receive = true`) keeps and shows both.
- send: the feeders peer with pybgpd itself; pybgpd (`add_path_send = 2`) sends both of its
  paths to FRR, which shows two paths from pybgpd, each with its `addpathRxId`; a feeder's
  withdrawal takes exactly one of them away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.pybgp.interop.daemons import (
    OUR_V4,
    PEER_ASN,
    PEER_V4,
    MakePair,
    Pair,
    Pybgpd,
    Session,
    feeder_pybgpd,
    wait_for,
)

pytestmark = pytest.mark.privileged

KIND = "frr"
ASN = PEER_ASN[KIND]
PREFIX = "10.9.0.0/24"
FEEDERS = {65010: 1, 65020: 2}  # AS -> subnet index (10.0.INDEX.2 in the peer namespace)

Feed = Callable[[Pair, str], list[Pybgpd]]


@pytest.fixture
def feed() -> Iterator[Feed]:
    """`feed(pair, to)`: start one feeder per FEEDERS entry in the peer namespace, peering
    with `to` ("frr", or "pybgpd"; the pair's subnets must be added); stopped after the test."""
    started: list[Pybgpd] = []

    def start(pair: Pair, to: str) -> list[Pybgpd]:
        for asn, index in FEEDERS.items():
            if to == "frr":
                neighbor = {"address": PEER_V4, "peer_asn": ASN}
            else:
                neighbor = {"address": f"10.0.{index}.1", "peer_asn": 65000}
            feeder = feeder_pybgpd(pair, asn, index, neighbor, PREFIX)
            started.append(feeder)
            feeder.start()
        return started

    yield start
    for feeder in started:
        feeder.close()


def frr_paths(pair: Pair) -> list[dict[str, Any]]:
    paths: list[dict[str, Any]] = pair.frr.show(f"show bgp ipv4 unicast {PREFIX}").get("paths", [])
    return paths


def our_paths(pair: Pair) -> list[dict[str, Any]]:
    return [r for r in pair.ours.cli_json("rib", PREFIX) if r["prefix"] == PREFIX]


def test_pybgpd_receives_both_paths_frr_sends_with_addpath(make_pair: MakePair, feed: Feed) -> None:
    to_us = Session(
        OUR_V4, PEER_V4, ("ipv4",), export_all=True, frr_options=("addpath-tx-all-paths",)
    )
    to_feeders = [
        Session(f"10.0.{index}.2", PEER_V4, ("ipv4",), remote_asn=asn)
        for asn, index in FEEDERS.items()
    ]
    neighbor = {
        "address": PEER_V4,
        "peer_asn": ASN,
        "families": ["ipv4-unicast"],
        "connect_retry": 1,
        "add_path_receive": True,
    }
    pair = make_pair(
        KIND,
        start=False,
        sessions=[to_us, *to_feeders],
        routes=[],
        neighbors=[neighbor],
        our_routes=(),
    )
    for index in FEEDERS.values():
        pair.link.add_subnet(index)
    pair.start(wait=False)
    feed(pair, "frr")
    pair.wait_established(timeout=30)
    wait_for(lambda: len(frr_paths(pair)) == 2, "two paths for the prefix at FRR", 30)

    paths = wait_for(lambda: len(our_paths(pair)) == 2 and our_paths(pair), "both paths in pybgpd")
    assert {p["as_path"] for p in paths} == {f"{ASN} 65010", f"{ASN} 65020"}
    assert {p["peer"] for p in paths} == {PEER_V4}
    assert len({p["path_id"] for p in paths}) == 2  # FRR's path ids, one per path
    assert [p["best"] for p in paths] == [True, False]
    counts = pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]
    assert (counts["received"], counts["accepted"]) == (2, 2)
    # The path FRR prefers goes: FRR withdraws that path id only, the other one stays.
    first = pair.ours.rib_cli()[PREFIX]["as_path"].split()[-1]
    gone = next(f for f in FEEDERS if str(f) == first)
    pair.frr.configure(f"neighbor 10.0.{FEEDERS[gone]}.2 shutdown")
    (left,) = wait_for(lambda: len(our_paths(pair)) == 1 and our_paths(pair), "one path left")
    assert left["as_path"] != f"{ASN} {gone}" and left["best"]


def test_pybgpd_sends_several_paths_to_frr(make_pair: MakePair, feed: Feed) -> None:
    base = {"families": ["ipv4-unicast"], "connect_retry": 1}
    feeders = [
        {
            "address": f"10.0.{index}.2",
            "peer_asn": asn,
            "local_address": f"10.0.{index}.1",
            **base,
        }
        for asn, index in FEEDERS.items()
    ]
    pair = make_pair(
        KIND,
        start=False,
        sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))],
        routes=[],
        neighbors=[{"address": PEER_V4, "peer_asn": ASN, "add_path_send": 2, **base}, *feeders],
        our_routes=(),
    )
    pair.ours.global_["listen"] = [OUR_V4, *(f"10.0.{index}.1" for index in FEEDERS.values())]
    for index in FEEDERS.values():
        pair.link.add_subnet(index)
    pair.start(wait=False)
    started = feed(pair, "pybgpd")
    pair.wait_established(timeout=30)

    paths = wait_for(lambda: len(frr_paths(pair)) == 2 and frr_paths(pair), "two paths at FRR", 30)
    assert {p["aspath"]["string"] for p in paths} == {"65000 65010", "65000 65020"}
    assert {p["peer"]["peerId"] for p in paths} == {OUR_V4}
    rx_ids = {p.get("addpathRxId") for p in paths}
    assert None not in rx_ids and len(rx_ids) == 2, paths
    assert sum(bool(p.get("bestpath", {}).get("overall")) for p in paths) == 1
    assert pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]["advertised"] == 2

    # One feeder withdraws: FRR loses that path (its id) and keeps the other one, same id.
    kept = next(p for p in paths if p["aspath"]["string"] == "65000 65010")
    started[1].cli("rib", "del", PREFIX)  # AS 65020's feeder
    (left,) = wait_for(lambda: len(frr_paths(pair)) == 1 and frr_paths(pair), "one path at FRR")
    assert left["aspath"]["string"] == "65000 65010"
    assert left["addpathRxId"] == kept["addpathRxId"]
