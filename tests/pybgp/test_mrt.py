"""MRT (RFC 6396, RFC 8050) without a daemon: the files FRR, BIRD, GoBGP and pybgpd wrote here
(fixtures/mrt/, see its capture.py) read by `pybgp decode --mrt`, plain, gzip and bzip2;
hand-written ADD-PATH records; what pybgp writes read back; and clear errors for files that
are not MRT or end early."""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from pybgp.config import ConfigError, parse
from pybgp.mrt.config import MrtConfig
from pybgp.mrt.decode import Decoder
from pybgp.mrt.dumper import TableDumper, UpdateLog
from pybgp.mrt.encode import DumpPeer, RibEntry, peer_index_table, rib
from pybgp.mrt.format import MrtType, header, read_records
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from pybgp.wire.nlri import nlri_from_str
from tests.pybgp.test_client_cli import LEAF, hub_speaker, leaf_speaker

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mrt"
PYBGPD_V4, PYBGPD_V6, PYBGPD_AS = "10.0.0.1", "fd00::1", 65000
SEQUENCE = [{"type": "sequence", "asns": [PYBGPD_AS]}]


@functools.cache
def decode(path: Path) -> list[dict[str, Any]]:
    """`pybgp decode --mrt FILE`, the real command; no error on any record."""
    done = subprocess.run(
        [sys.executable, "-m", "pybgp.cli", "decode", "--mrt", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert not [r for r in records if "error" in r]
    return records


def rib_entries(*paths: Path) -> dict[str, list[dict[str, Any]]]:
    """prefix -> entries of the RIB records of the table dumps."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        for record in decode(path):
            if record["subtype"].startswith("RIB_"):
                found.setdefault(record["prefix"], []).extend(record["entries"])
    return found


def announced(path: Path, *peers: str) -> dict[str, dict[str, Any]]:
    """prefix -> attributes, from the UPDATEs of `peers` in an update log."""
    found = {}
    for record in decode(path):
        message = record.get("message")
        if record.get("peer") in peers and isinstance(message, dict):
            reach = message.get("attributes", {}).get("mp_reach_nlri", {}).get("nlri", [])
            for prefix in [*message.get("nlri", []), *reach]:
                found[prefix] = message["attributes"]
    return found


def check_pybgpds_routes(entries: dict[str, list[dict[str, Any]]]) -> None:
    """A table dump holds the routes pybgpd sent its writer, as pybgpd sent them."""
    for prefix in ("10.2.0.0/24", "10.2.1.0/24", "2001:db8:2::/48"):
        ours = [e for e in entries[prefix] if e["peer"] in (PYBGPD_V4, PYBGPD_V6)]
        assert ours and all(e["peer_asn"] == PYBGPD_AS for e in ours), entries[prefix]
        assert all(e["attributes"]["as_path"] == SEQUENCE for e in ours)
    tagged = next(e for e in entries["10.2.0.0/24"] if e["peer"] == PYBGPD_V4)["attributes"]
    assert tagged["med"] == 70
    assert tagged["communities"] == ["65000:100", "65000:200"]
    assert tagged["large_communities"] == ["65000:1:2"]
    assert tagged["next_hop"] == PYBGPD_V4
    v6 = next(e for e in entries["2001:db8:2::/48"] if e["peer"] in (PYBGPD_V4, PYBGPD_V6))
    assert v6["attributes"]["mp_reach_nlri"]["next_hop"][0] == PYBGPD_V6  # abbreviated form


def check_pybgpds_updates(log: Path, ipv6: bool = True) -> None:
    """An update log holds the UPDATEs pybgpd sent its writer."""
    sent = announced(log, PYBGPD_V4, PYBGPD_V6)
    assert {"10.2.0.0/24", "10.2.1.0/24"} <= set(sent), sorted(sent)
    assert sent["10.2.0.0/24"]["as_path"] == SEQUENCE
    assert sent["10.2.0.0/24"]["next_hop"] == PYBGPD_V4
    if ipv6:
        assert sent["2001:db8:2::/48"]["mp_reach_nlri"]["next_hop"][0] == PYBGPD_V6


@pytest.mark.parametrize(
    "names",
    [("frr-rib.mrt",), ("bird-rib4.mrt", "bird-rib6.mrt"), ("gobgp-rib.mrt",)],
    ids=["frr", "bird", "gobgp"],
)
def test_table_dumps_hold_pybgpds_routes(names: tuple[str, ...]) -> None:
    check_pybgpds_routes(rib_entries(*(FIXTURES / name for name in names)))


@pytest.mark.parametrize("name", ["frr-updates.mrt", "bird-updates.mrt", "gobgp-updates.mrt"])
def test_update_logs_hold_pybgpds_updates(name: str) -> None:
    """(FRR's log began after its IPv6 session was up: only the IPv4 session is in it.)"""
    check_pybgpds_updates(FIXTURES / name, ipv6=name != "frr-updates.mrt")


def test_bird_logs_states_and_every_message() -> None:
    records = decode(FIXTURES / "bird-updates.mrt")
    states = [(r["old_state"], r["new_state"]) for r in records if "new_state" in r]
    assert ("OpenConfirm", "Established") in states
    kinds = {r["message"]["type"] for r in records if isinstance(r.get("message"), dict)}
    assert {"OPEN", "KEEPALIVE", "UPDATE"} <= kinds


def test_pybgpds_own_dumps() -> None:
    """pybgpd's table dump: its own routes under its identifier and 0.0.0.0, the peer's as
    received (AS 65001 64512 64513); its log: every state of both sessions and the UPDATEs."""
    records = decode(FIXTURES / "pybgpd-rib.mrt")
    assert records[0]["peers"][0] == {"bgp_id": "10.0.0.1", "address": "0.0.0.0", "asn": 65000}
    entries = rib_entries(FIXTURES / "pybgpd-rib.mrt")
    assert [e["attributes"]["next_hop"] for e in entries["10.2.1.0/24"]] == ["0.0.0.0"]
    peers = [e for e in entries["10.1.0.0/24"] if e["peer"] == "10.0.0.2"]
    path = [{"type": "sequence", "asns": [65001, 64512, 64513]}]
    assert peers and peers[0]["attributes"]["as_path"] == path
    log = decode(FIXTURES / "pybgpd-updates.mrt")
    states = [(r["peer"], r["new_state"]) for r in log if "new_state" in r]
    assert ("10.0.0.2", "Established") in states and ("fd00::2", "Established") in states
    assert {"10.1.0.0/24", "10.1.1.0/24"} <= set(
        announced(FIXTURES / "pybgpd-updates.mrt", "10.0.0.2")
    )


@pytest.mark.parametrize(
    ("plain", "packed"), [("frr-rib.mrt", ".gz"), ("bird-updates.mrt", ".bz2")]
)
def test_compressed_files_read_as_the_plain_ones(plain: str, packed: str) -> None:
    assert decode(FIXTURES / (plain + packed)) == decode(FIXTURES / plain)


def hand_written() -> bytes:
    lines = (FIXTURES / "rfc8050-addpath.hex").read_text().splitlines()
    return bytes.fromhex(
        "".join("".join(line.split()) for line in lines if not line.startswith("#"))
    )


def test_rfc8050_addpath_records() -> None:
    decoder = Decoder()
    index, rib_record, message = [
        decoder.decode(r) for r in read_records(io.BytesIO(hand_written()))
    ]
    assert index["peers"] == [{"bgp_id": "10.0.0.2", "address": "10.0.0.2", "asn": 65001}]
    assert rib_record["subtype"] == "RIB_IPV4_UNICAST_ADDPATH"
    assert rib_record["prefix"] == "10.1.0.0/24"
    assert [
        (e["path_id"], e["peer"], e["attributes"].get("med")) for e in rib_record["entries"]
    ] == [
        (1, "10.0.0.2", None),
        (2, "10.0.0.2", 100),
    ]
    assert (message["type"], message["subtype"]) == ("BGP4MP_ET", "MESSAGE_AS4_ADDPATH")
    assert message["timestamp"] == 1600000000.25
    assert (message["peer"], message["peer_asn"], message["local_asn"]) == (
        "10.0.0.2",
        65001,
        65000,
    )
    assert message["message"]["nlri"] == [{"prefix": "10.1.0.0/24", "path_id": 7}]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2**32 - 1), st.integers(0, 3)),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["10.1.0.0/24", "0.0.0.0/0", "2001:db8::/32", "::/0", "10.1.2.3/32"]),
)
def test_what_pybgp_writes_reads_back(paths: list[tuple[int, int, int]], prefix: str) -> None:
    """A table dump written with pybgp.mrt.encode decodes to what was written: peers,
    prefix, entries with their path ids (ADD-PATH subtype exactly when one is set)."""
    family = IPV6_UNICAST if ":" in prefix else IPV4_UNICAST
    peers = [DumpPeer("10.0.0.1", "0.0.0.0", 65000), DumpPeer("10.0.0.2", "fd00::2", 4200000000)]
    peers.append(DumpPeer("10.0.0.3", "10.0.0.3", 65003))
    attributes = bytes.fromhex("40010100" + "40020602010000fde9")
    entries = [
        RibEntry(peer, originated, path_id, attributes) for peer, originated, path_id in paths
    ]
    subtype, body = rib(7, family, nlri_from_str(prefix, family), entries)
    data = header(1.0, MrtType.TABLE_DUMP_V2, 1, peer_index_table("10.0.0.1", "v", peers))
    data += header(1.0, MrtType.TABLE_DUMP_V2, subtype, body)
    decoder = Decoder()
    index, record = [decoder.decode(r) for r in read_records(io.BytesIO(data))]
    assert index["peers"] == [p._asdict() | {"asn": p.asn} for p in peers]
    assert record["prefix"] == prefix and record["sequence"] == 7
    addpath = any(path_id for _, _, path_id in paths)
    assert record["subtype"].endswith("_ADDPATH") == addpath
    got = [(e["peer_index"], e["originated"], e.get("path_id", 0)) for e in record["entries"]]
    assert got == paths
    assert all(e["peer"] == peers[e["peer_index"]].address for e in record["entries"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not an MRT file at all, just some text\n", "length"),
        (hand_written()[:30], "announced"),  # the first record cut short
        (hand_written()[:5], "header truncated"),
        (gzip.compress(hand_written())[:40], "ends early"),
        (bz2.compress(hand_written())[:40], "ends early"),
    ],
    ids=["text", "cut-record", "cut-header", "cut-gzip", "cut-bzip2"],
)
def test_bad_files_are_refused_clearly(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.mrt"
    path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "pybgp.cli", "decode", "--mrt", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"pybgp decode: --mrt {path}: ") and message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_record_of_another_type_is_shown_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.mrt"
    path.write_bytes(header(5.0, 99, 1, b"\x01\x02") + hand_written())
    records = subprocess.run(
        [sys.executable, "-m", "pybgp.cli", "decode", "--mrt", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    first = json.loads(records[0])
    assert first["type"] == 99 and "not decoded" in first["error"] and first["body"] == "0102"
    assert len(records) == 4


@pytest.mark.parametrize(
    ("mrt", "message"),
    [
        ({"type": "tabel", "file": "x"}, "mrt[0].type: expected one of table, updates"),
        ({"type": "table"}, "mrt[0].file: missing (required)"),
        ({"type": "table", "file": "x", "interval": 0}, "mrt[0].interval: a table dump needs"),
        ({"type": "updates", "file": "x", "intervall": 3}, "(did you mean interval?)"),
    ],
)
def test_mrt_configuration_mistakes_name_the_key(mrt: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse({"global": {"asn": 65000, "router_id": "10.0.0.1"}, "mrt": [mrt]})


async def test_dumps_of_a_running_speaker(tmp_path: Path) -> None:
    """pybgpd's dumps, in process over loopback: the hub's table dump holds its own routes
    and the leaf's accepted one; its update log every state of the session and the UPDATEs
    as received (the one its import policy rejects too)."""
    hub, leaf = hub_speaker(), leaf_speaker()
    log_path = tmp_path / "updates.mrt"
    log = UpdateLog(MrtConfig(type="updates", file=str(log_path)), hub)
    table_dump = TableDumper(MrtConfig(type="table", file=str(tmp_path / "rib.mrt")), hub)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            nursery.start_soon(log.run)
            await nursery.start(leaf.run)
            while "10.2.0.0/24" not in hub.loc_rib(IPV4_UNICAST):
                await trio.sleep(0.05)
            dumped = await table_dump.dump()
            nursery.cancel_scope.cancel()  # the log is written on the way out
    entries = rib_entries(dumped)
    assert sorted(entries) == ["10.1.0.0/24", "10.2.0.0/24", "10.9.0.0/24"]
    assert [(e["peer"], e["peer_asn"]) for e in entries["10.2.0.0/24"]] == [(LEAF, 65001)]
    assert [e["peer"] for e in entries["10.1.0.0/24"]] == ["0.0.0.0"]
    records = decode(log_path)
    states = [r["new_state"] for r in records if r.get("peer") == LEAF and "new_state" in r]
    assert states[-1] == "Established" and "OpenConfirm" in states
    assert {"10.2.0.0/24", "10.3.0.0/24"} <= set(announced(log_path, LEAF))
