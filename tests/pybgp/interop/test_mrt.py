"""MRT (RFC 6396, RFC 8050) against the daemons that write it here: `pybgp decode --mrt`
reads the table dumps and update logs FRR (`dump bgp`), GoBGP (`[[mrt-dump]]`) and BIRD
(`protocol mrt`, `mrtdump`) write while peering with pybgpd; pybgpd's own (`[[mrt]]`) are
read back by GoBGP (`gobgp mrt inject`), and their BGP messages by scapy's BGP layer."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from scapy.contrib import bgp

from pybgp.mrt.format import open_mrt, read_records
from tests.pybgp.interop.daemons import (
    OUR_ASN,
    OUR_V4,
    OUR_V6,
    PEER_V4,
    PYBGP,
    MakePair,
    Pair,
    output,
    wait_for,
)

pytestmark = pytest.mark.privileged


def decode(path: Path) -> list[dict[str, Any]]:
    """`pybgp decode --mrt FILE`, the real command."""
    return [
        json.loads(line) for line in output(str(PYBGP), "decode", "--mrt", str(path)).splitlines()
    ]


def rib_entries(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """prefix -> its entries, from a table dump's RIB records."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        assert "error" not in record, record
        if record["type"] == "TABLE_DUMP_V2" and record["subtype"].startswith("RIB_"):
            found.setdefault(record["prefix"], []).extend(record["entries"])
    return found


def announced(records: list[dict[str, Any]], peer: str) -> dict[str, dict[str, Any]]:
    """prefix -> attributes of the UPDATEs from `peer` in an update log."""
    found = {}
    for record in records:
        assert "error" not in record, record
        message = record.get("message")
        if record.get("peer") != peer or not isinstance(message, dict):
            continue
        if message.get("type") == "UPDATE":
            attributes = message["attributes"]
            reach = attributes.get("mp_reach_nlri", {}).get("nlri", [])
            for prefix in [*message["nlri"], *reach]:
                found[prefix] = attributes
    return found


def assert_pybgpd_routes_in_table(entries: dict[str, list[dict[str, Any]]]) -> None:
    """pybgpd's routes as the peer holds them: from 10.0.0.1 or fd00::1, AS path 65000."""
    for prefix in ("10.2.0.0/24", "10.2.1.0/24", "2001:db8:2::/48"):
        ours = [e for e in entries[prefix] if e["peer"] in (OUR_V4, OUR_V6)]
        assert ours, (prefix, entries[prefix])
        assert all(e["peer_asn"] == OUR_ASN for e in ours)
        assert all(
            e["attributes"]["as_path"] == [{"type": "sequence", "asns": [OUR_ASN]}] for e in ours
        )
    tagged = entries["10.2.0.0/24"][0]["attributes"]
    assert tagged["med"] == 70 and f"{OUR_ASN}:100" in tagged["communities"]
    v6 = next(e for e in entries["2001:db8:2::/48"] if e["peer"] in (OUR_V4, OUR_V6))
    assert v6["attributes"]["mp_reach_nlri"]["next_hop"][0] == OUR_V6


def assert_pybgpd_updates_logged(records: list[dict[str, Any]]) -> None:
    sent = announced(records, OUR_V4)
    assert {"10.2.0.0/24", "10.2.1.0/24"} <= set(sent), sorted(sent)
    assert sent["10.2.0.0/24"]["as_path"] == [{"type": "sequence", "asns": [OUR_ASN]}]


def test_frr_dumps(make_pair: MakePair) -> None:
    pair = make_pair("frr-direct", start=False)
    pair.start()
    dumps = pair.workdir / "frr-dumps"
    dumps.mkdir()
    pair.frr.vtysh("configure terminal", f"dump bgp updates {dumps}/updates.mrt")
    pair.ours.cli("neighbor", PEER_V4, "reset")  # the session again, into the update log
    pair.wait_established()
    pair.peer.wait_route("10.2.1.0/24")
    pair.frr.vtysh("configure terminal", f"dump bgp routes-mrt {dumps}/rib.mrt")
    wait_for((dumps / "rib.mrt").exists, "FRR's table dump")
    time.sleep(1)  # written in one go, but let it finish
    table = decode(dumps / "rib.mrt")
    assert table[0]["subtype"] == "PEER_INDEX_TABLE"
    assert_pybgpd_routes_in_table(rib_entries(table))
    wait_for(lambda: "10.2.1.0/24" in announced(decode(dumps / "updates.mrt"), OUR_V4), "FRR's log")
    assert_pybgpd_updates_logged(decode(dumps / "updates.mrt"))


# GoBGP's table dumps come at most once a minute (its minimum dump-interval): one it wrote
# here is in fixtures/mrt/ (tests/pybgp/test_mrt.py); the update log is read live.
GOBGP_DUMPS = """
[[mrt-dump]]
  [mrt-dump.config]
    dump-type = "updates"
    file-name = "{dir}/updates.mrt"
"""


def test_gobgp_update_log(make_pair: MakePair, tmp_path: Path) -> None:
    dumps = tmp_path / "gobgp"
    dumps.mkdir()
    pair = make_pair("gobgp", peer_options={"extra_config": GOBGP_DUMPS.format(dir=dumps)})
    pair.peer.wait_route("10.2.1.0/24")
    time.sleep(3); print(list(dumps.iterdir())); print(output(str(PYBGP), "decode", "--mrt", str(dumps / "updates.mrt"))[:3000])
    wait_for(lambda: "10.2.1.0/24" in announced(_quiet(dumps / "updates.mrt"), OUR_V4), "the log")
    assert_pybgpd_updates_logged(decode(dumps / "updates.mrt"))


BIRD_DUMPS = [
    'mrtdump "{dir}/updates.mrt";',
    "mrtdump protocols {{ states, messages }};",
    'protocol mrt {{ table "master4"; filename "{dir}/rib4.mrt"; period 1; }}',
    'protocol mrt {{ table "master6"; filename "{dir}/rib6.mrt"; period 1; }}',
]


def test_bird_dumps(make_pair: MakePair, tmp_path: Path) -> None:
    dumps = tmp_path / "bird"
    dumps.mkdir()
    options = [line.format(dir=dumps) for line in BIRD_DUMPS]
    pair = make_pair("bird", peer_options={"global_options": options})
    pair.peer.wait_route("10.2.1.0/24")
    pair.peer.wait_route("2001:db8:2::/48")

    def table() -> dict[str, list[dict[str, Any]]]:
        return {
            **rib_entries(_quiet(dumps / "rib4.mrt")),
            **rib_entries(_quiet(dumps / "rib6.mrt")),
        }

    wait_for(lambda: {"10.2.1.0/24", "2001:db8:2::/48"} <= set(table()), "BIRD's table dumps", 20)
    assert_pybgpd_routes_in_table(table())
    assert_pybgpd_updates_logged(decode(dumps / "updates.mrt"))


def _quiet(path: Path) -> list[dict[str, Any]]:
    """A dump that may not be there yet, or be half written: nothing rather than an error."""
    try:
        records = decode(path)
    except Exception:
        return []
    return [r for r in records if "error" not in r]


PYBGPD_DUMPS = """
[[mrt]]
type = "table"
file = "{dir}/rib.%Y%m%d.%H%M%S.mrt"
interval = 1
[[mrt]]
type = "updates"
file = "{dir}/updates.mrt"
"""


def test_pybgpd_dumps_read_back_by_gobgp_and_scapy(make_pair: MakePair, tmp_path: Path) -> None:
    dumps = tmp_path / "pybgpd"
    dumps.mkdir()
    pair = make_pair("gobgp", start=False)
    pair.ours.policy += PYBGPD_DUMPS.format(dir=dumps)
    pair.start()
    pair.ours.wait_routes(["10.1.0.0/24", "10.1.1.0/24", "2001:db8:1::/48"])
    time.sleep(2.5)  # a table dump after the routes came
    dump = sorted(dumps.glob("rib.*.mrt"))[-1]
    entries = rib_entries(decode(dump))
    from_gobgp = [e for e in entries["10.1.0.0/24"] if e["peer"] == PEER_V4]
    assert from_gobgp and from_gobgp[0]["attributes"]["as_path"] == [
        {"type": "sequence", "asns": [pair.peer_asn, 64512, 64513]}
    ]
    assert [e["peer"] for e in entries["10.2.0.0/24"]] == ["0.0.0.0"]  # our own route
    _read_back_by_gobgp(pair, dump)
    _messages_read_by_scapy(dumps / "updates.mrt")


def _read_back_by_gobgp(pair: Pair, dump: Path) -> None:
    """GoBGP injects pybgpd's table dump into its global RIB: its routes come back with
    the AS path and communities pybgpd had for them, one more path per prefix."""
    gobgp = pair.peer.gobgp  # type: ignore[attr-defined]
    gobgp("mrt", "inject", "global", str(dump), "--no-ipv6")
    table = json.loads(gobgp("global", "rib", "-a", "ipv4", "-j"))
    paths = table["10.1.0.0/24"]
    as_paths = [
        [asn for a in p["attrs"] if a["type"] == 2 for seg in a["as_paths"] for asn in seg["asns"]]
        for p in paths
    ]
    # GoBGP's own path had 64512 64513; the one injected has GoBGP's AS in front, as
    # pybgpd received it.
    assert [pair.peer_asn, 64512, 64513] in as_paths, paths
    gobgp("mrt", "inject", "global", str(dump), "--no-ipv4")
    table6 = json.loads(gobgp("global", "rib", "-a", "ipv6", "-j"))
    hops = {
        a.get("nexthop") for p in table6["2001:db8:1::/48"] for a in p["attrs"] if a["type"] == 14
    }
    assert hops & {"fd00::2", "fd00::1"}, table6["2001:db8:1::/48"]


def _messages_read_by_scapy(log: Path) -> None:
    """Each BGP4MP message record of pybgpd's update log, parsed by scapy's BGP layer (an
    independent decoder): the same prefixes as pybgp decode reads."""
    ours = announced(decode(log), PEER_V4)
    seen: set[str] = set()
    with open_mrt(str(log)) as stream:
        for record in read_records(stream):
            if record.subtype not in (1, 4):  # MESSAGE, MESSAGE_AS4
                continue
            message = record.body[20 if record.subtype == 4 else 16 :]  # IPv4 peering
            parsed = bgp.BGPHeader(message)
            update = parsed.getlayer(bgp.BGPUpdate)
            if update is not None:
                seen |= {f"{p.prefix}" for p in update.nlri}
    assert {"10.1.0.0/24", "10.1.1.0/24"} <= seen <= set(ours) | {"10.1.0.0/24", "10.1.1.0/24"}
