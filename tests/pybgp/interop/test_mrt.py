"""MRT (RFC 6396, RFC 8050) against the daemons that write it here: `pybgp decode --mrt`
reads the table dumps and update logs FRR (`dump bgp`) and BIRD (`protocol mrt`,
`mrtdump`) write while peering with pybgpd; pybgpd's own (`[[mrt]]`) are read back by GoBGP
(`gobgp mrt inject`), and their BGP messages by scapy's BGP layer. (GoBGP writes a table
dump once a minute at most: the ones it wrote here are fixtures, tests/pybgp/test_mrt.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from scapy.contrib import bgp

from pybgp.mrt.format import TableDumpV2, open_mrt, read_records
from tests.pybgp.interop.daemons import PEER_V4, MakePair, wait_for
from tests.pybgp.test_mrt import (
    announced,
    check_pybgpds_routes,
    check_pybgpds_updates,
    decode,
    rib_entries,
)

pytestmark = pytest.mark.privileged


def written(path: Path) -> bool:
    """A file that is there and decodes without error, read afresh (a daemon may be
    writing it still)."""
    decode.cache_clear()
    try:
        return bool(path.exists() and decode(path))
    except Exception:  # half written: not yet
        return False


def test_frr_dumps(make_pair: MakePair, tmp_path: Path) -> None:
    pair = make_pair("frr-direct")
    pair.frr.vtysh("configure terminal", f"dump bgp updates {tmp_path}/updates.mrt")
    pair.ours.cli("neighbor", PEER_V4, "reset")  # the IPv4 session again, into the log
    pair.wait_established()
    pair.peer.wait_route("10.2.1.0/24")
    pair.frr.vtysh("configure terminal", f"dump bgp routes-mrt {tmp_path}/rib.mrt")
    wait_for(lambda: written(tmp_path / "rib.mrt"), "FRR's table dump")
    check_pybgpds_routes(rib_entries(tmp_path / "rib.mrt"))
    log = tmp_path / "updates.mrt"
    wait_for(lambda: written(log) and "10.2.1.0/24" in announced(log, "10.0.0.1"), "FRR's log")
    check_pybgpds_updates(log, ipv6=False)


def test_bird_dumps(make_pair: MakePair, tmp_path: Path) -> None:
    options = [
        f'mrtdump "{tmp_path}/updates.mrt";',
        "mrtdump protocols { states, messages };",
        f'protocol mrt {{ table "master4"; filename "{tmp_path}/rib4.mrt"; period 1; }}',
        f'protocol mrt {{ table "master6"; filename "{tmp_path}/rib6.mrt"; period 1; }}',
    ]
    pair = make_pair("bird", peer_options={"global_options": options})
    pair.peer.wait_route("10.2.1.0/24")
    pair.peer.wait_route("2001:db8:2::/48")
    time.sleep(2.5)  # a dump of each table after the routes came
    wait_for(lambda: written(tmp_path / "rib4.mrt") and written(tmp_path / "rib6.mrt"), "dumps")
    check_pybgpds_routes(rib_entries(tmp_path / "rib4.mrt", tmp_path / "rib6.mrt"))
    check_pybgpds_updates(tmp_path / "updates.mrt")


PYBGPD_DUMPS = """
[[mrt]]
type = "table"
file = "{dir}/rib.%Y%m%d.%H%M%S.mrt"
interval = 1
[[mrt]]
type = "updates"
file = "{dir}/updates.mrt"
"""


def test_pybgpd_dumps_read_back_by_scapy(make_pair: MakePair, tmp_path: Path) -> None:
    pair = make_pair("gobgp", start=False)
    pair.ours.policy += PYBGPD_DUMPS.format(dir=tmp_path)
    pair.start()
    pair.ours.wait_routes(["10.1.0.0/24", "10.1.1.0/24", "2001:db8:1::/48"])
    time.sleep(2.5)  # a table dump after the routes came
    dump = sorted(tmp_path.glob("rib.*.mrt"))[-1]
    entries = rib_entries(dump)
    from_gobgp = [e for e in entries["10.1.0.0/24"] if e["peer"] == PEER_V4]
    assert from_gobgp and from_gobgp[0]["attributes"]["as_path"] == [
        {"type": "sequence", "asns": [pair.peer_asn, 64512, 64513]}
    ]
    assert [e["peer"] for e in entries["10.2.0.0/24"]] == ["0.0.0.0"]  # our own route
    # GoBGP's route, with the path pybgpd had for it (GoBGP's AS in front), read by scapy
    assert [pair.peer_asn, 64512, 64513] in _rib_read_by_scapy(dump)["10.1.0.0/24"]
    _messages_read_by_scapy(tmp_path / "updates.mrt")


def _rib_read_by_scapy(dump: Path) -> dict[str, list[list[int]]]:
    """The IPv4 RIB entries of pybgpd's table dump, each entry's attributes parsed by scapy's
    BGP layer (an independent decoder): prefix -> the AS path of each entry. (GoBGP's `mrt
    inject` is no reader to rely on here: it adds paths after it returns, drops some, and
    reads a RIB entry's MP_REACH_NLRI whole, where RFC 6396 §4.3.4 writes only its
    next-hop fields.)"""
    saved = bgp.bgp_module_conf.use_2_bytes_asn
    bgp.bgp_module_conf.use_2_bytes_asn = False  # TABLE_DUMP_V2 paths are 4-octet (§4.3.4)
    paths: dict[str, list[list[int]]] = {}
    try:
        with open_mrt(str(dump)) as stream:
            for record in read_records(stream):
                if record.subtype != TableDumpV2.RIB_IPV4_UNICAST:
                    continue
                body, length = record.body, record.body[4]
                octets = (length + 7) // 8
                network = bytes(body[5 : 5 + octets]).ljust(4, b"\0")
                prefix = f"{'.'.join(map(str, network))}/{length}"
                pos = 5 + octets + 2  # the entry count
                while pos < len(body):
                    size = int.from_bytes(body[pos + 6 : pos + 8], "big")
                    blob = body[pos + 8 : pos + 8 + size]
                    update = bgp.BGPUpdate(
                        b"\0\0" + size.to_bytes(2, "big") + blob  # no withdrawn routes, no NLRI
                    )
                    paths.setdefault(prefix, []).append(
                        [
                            asn
                            for attr in update.path_attr
                            if attr.type_code == 2
                            for segment in attr.attribute.segments
                            for asn in segment.segment_value
                        ]
                    )
                    pos += 8 + size
    finally:
        bgp.bgp_module_conf.use_2_bytes_asn = saved
    return paths


def _messages_read_by_scapy(log: Path) -> None:
    """Each BGP4MP message record of pybgpd's update log, parsed by scapy's BGP layer (an
    independent decoder) from the bytes after the peering fields: the same IPv4 prefixes
    as `pybgp decode --mrt` reads."""
    seen: set[str] = set()
    with open_mrt(str(log)) as stream:
        for record in read_records(stream):
            if record.subtype != 4:  # MESSAGE_AS4; over IPv4: 4+4+2+2+4+4 octets first
                continue
            if int.from_bytes(record.body[10:12], "big") != 1:
                continue
            update = bgp.BGPHeader(record.body[20:]).getlayer(bgp.BGPUpdate)
            if update is not None:
                seen |= {str(p.prefix) for p in update.nlri}
    ours = {p for p in announced(log, PEER_V4) if ":" not in p}
    assert seen == ours and {"10.1.0.0/24", "10.1.1.0/24"} <= seen
