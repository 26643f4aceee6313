"""MRT (RFC 6396, RFC 8050) against the daemons that write it here: `pybgp decode --mrt`
reads the table dumps and update logs FRR (`dump bgp`) and BIRD (`protocol mrt`,
`mrtdump`) write while peering with pybgpd; pybgpd's own (`[[mrt]]`) are read back by GoBGP
(`gobgp mrt inject`), and their BGP messages by scapy's BGP layer. (GoBGP writes a table
dump once a minute at most: the ones it wrote here are fixtures, tests/pybgp/test_mrt.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from scapy.contrib import bgp

from pybgp.mrt.format import open_mrt, read_records
from tests.pybgp.interop.daemons import PEER_V4, MakePair, Pair, wait_for
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


def test_pybgpd_dumps_read_back_by_gobgp_and_scapy(make_pair: MakePair, tmp_path: Path) -> None:
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
    _read_back_by_gobgp(pair, dump)
    _messages_read_by_scapy(tmp_path / "updates.mrt")


def _read_back_by_gobgp(pair: Pair, dump: Path) -> None:
    """GoBGP injects pybgpd's table dump into its global RIB: GoBGP's own route comes back
    with the AS path pybgpd had for it (GoBGP's AS in front), and the IPv6 routes with the
    next hop of the abbreviated MP_REACH_NLRI."""
    gobgp = pair.peer.gobgp  # type: ignore[attr-defined]
    gobgp("mrt", "inject", "global", str(dump), "--no-ipv6")
    paths = json.loads(gobgp("global", "rib", "-a", "ipv4", "-j"))["10.1.0.0/24"]
    as_paths = [
        [asn for a in p["attrs"] if a["type"] == 2 for seg in a["as_paths"] for asn in seg["asns"]]
        for p in paths
    ]
    assert [pair.peer_asn, 64512, 64513] in as_paths, paths  # GoBGP's own had 64512 64513
    gobgp("mrt", "inject", "global", str(dump), "--no-ipv4")
    table6 = json.loads(gobgp("global", "rib", "-a", "ipv6", "-j"))
    hops = {
        a.get("nexthop") for p in table6["2001:db8:1::/48"] for a in p["attrs"] if a["type"] == 14
    }
    assert "fd00::2" in hops, table6["2001:db8:1::/48"]


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
