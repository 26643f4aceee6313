"""Real OPENs and UPDATEs captured from FRR bgpd, GoBGP and BIRD 2 (fixtures/bgp/capture.py).

For every capture: `pybgp decode` prints exactly the stored JSON, `pybgp encode` of that JSON
gives back the captured bytes, and what the daemons were configured to send (capture.py's
configs) arrives with the configured values, checked here from the decoded messages alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from pybgp.cli import main as pybgp_main
from pybgp.codec_cli import add_context_options, context_from
from pybgp.wire.capabilities import (
    FQDN,
    AddPath,
    FourOctetAS,
    GracefulRestart,
    RouteRefresh,
)
from pybgp.wire.constants import AS_TRANS, IPV4_UNICAST, IPV6_UNICAST, AttrType, Family
from pybgp.wire.context import CodecContext
from pybgp.wire.message import Message, decode_message
from pybgp.wire.nlri import nlri_path_id, nlri_to_str
from pybgp.wire.open import Open
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.update import Update
from tests.support import require_root, require_tools

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bgp"
CAPTURED = FIXTURES / "captured"
DAEMONS = ("frr", "gobgp", "bird")
SCENARIOS = ("ebgp", "ibgp", "ebgp-as2", "ebgp-addpath")
NAMES = [f"{d}-{s}" for d in DAEMONS for s in SCENARIOS]

# What capture.py configures, restated so the checks do not lean on the stored JSON.
DAEMON_AS = {"frr": 4200000001, "gobgp": 4200000002, "bird": 4200000003}
DAEMON_V4, DAEMON_V6 = "192.0.2.2", "2001:db8:ffff::2"
TAGGED = {"198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24"}
TAGGED |= {"2001:db8:100::/48", "2001:db8:101::/48"}
PREPENDED = {"203.0.113.0/25", "203.0.113.128/25"}
PLAIN = {"100.64.0.0/10", "2001:db8:200::/56"}
WITHDRAWN = {"203.0.113.128/25", "2001:db8:200::/56"}
NO_EXPORT = 0xFFFFFF01
TAG_COMMUNITIES = (65000 << 16 | 100, 65000 << 16 | 200, NO_EXPORT)
PREPEND_COMMUNITY = 65000 << 16 | 300
RT_65000_10 = bytes.fromhex("0002fde80000000a")  # route target, 2-octet AS 65000, value 10


@dataclass(frozen=True)
class Captured:
    name: str
    header: str  # the first comment line
    options: list[str]  # `pybgp decode` options of the session
    messages: list[bytes]
    json_text: str

    @property
    def daemon(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def scenario(self) -> str:
        return self.name.split("-", 1)[1]

    @property
    def asn(self) -> int:
        return DAEMON_AS[self.daemon]

    @property
    def ctx(self) -> CodecContext:
        parser = argparse.ArgumentParser()
        add_context_options(parser)
        return context_from(parser.parse_args(self.options))

    def decoded(self) -> list[Message]:
        ctx = self.ctx
        return [decode_message(m[18], m[19:], ctx) for m in self.messages]

    def updates(self) -> list[Update]:
        return [m for m in self.decoded() if isinstance(m, Update)]


def load(name: str) -> Captured:
    lines = (CAPTURED / f"{name}.hex").read_text().splitlines()
    header = lines[0]
    assert header.startswith("# ") and ", context: " in header, header
    options = header.split(", context: ", 1)[1].split()
    messages = [bytes.fromhex(line) for line in lines if line and not line.startswith("#")]
    json_text = (CAPTURED / f"{name}.json").read_text()
    return Captured(name, header, options, messages, json_text)


@pytest.fixture(params=NAMES)
def cap(request: pytest.FixtureRequest) -> Captured:
    return load(request.param)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert pybgp_main(list(argv)) == 0
    out = capsys.readouterr()
    assert out.err == ""
    return out.out


# ---------------------------------------------------------------- the files themselves


def test_every_capture_is_present() -> None:
    present = {p.stem for p in CAPTURED.glob("*.hex")}
    assert present == set(NAMES)
    assert {p.stem for p in CAPTURED.glob("*.json")} == set(NAMES)


def test_header_names_daemon_and_scenario(cap: Captured) -> None:
    product = {
        "frr": "FRR bgpd version 8.",
        "gobgp": "gobgpd version 3.",
        "bird": "BIRD version 2.",
    }
    assert cap.header.startswith(f"# {product[cap.daemon]}")
    assert f", {cap.scenario}, context: " in cap.header


def test_decode_prints_the_stored_json(cap: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    hex_text = "".join(m.hex() for m in cap.messages)
    assert run_cli(capsys, "decode", hex_text, *cap.options) == cap.json_text


def test_decodes_without_any_error(cap: Captured) -> None:
    objects = [json.loads(line) for line in cap.json_text.splitlines()]
    assert len(objects) == len(cap.messages)
    assert [o for o in objects if "error" in o] == []
    assert all(getattr(m, "problem", None) is None for m in cap.decoded())


def test_encode_gives_the_captured_bytes(cap: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_cli(capsys, "encode", cap.json_text, *cap.options)
    assert out.split() == [m.hex() for m in cap.messages]


def test_first_messages_are_open_then_keepalive(cap: Captured) -> None:
    first, second = (m[18] for m in cap.messages[:2])
    assert (first, second) == (1, 4)


# ---------------------------------------------------------------- the OPEN


def the_open(cap: Captured) -> Open:
    message = cap.decoded()[0]
    assert isinstance(message, Open)
    return message


def test_open_carries_the_configured_identity(cap: Captured) -> None:
    message = the_open(cap)
    four = message.capability(FourOctetAS)
    assert four is not None and four.asn == cap.asn
    assert message.my_as == AS_TRANS  # the ASN needs 4 octets (RFC 6793 §4.1)
    assert message.asn == cap.asn
    assert message.bgp_id == DAEMON_V4
    assert set(message.families) == {IPV4_UNICAST, IPV6_UNICAST}
    assert message.capability(RouteRefresh) is not None
    assert message.capability(GracefulRestart) is not None


def test_open_hostname(cap: Captured) -> None:
    fqdn = the_open(cap).capability(FQDN)
    assert fqdn is not None and fqdn.hostname == f"{cap.daemon}-capture"


def test_frr_sends_one_capability_per_parameter() -> None:
    message = the_open(load("frr-ebgp"))
    assert len(message.parameters) == len(message.capabilities) > 5
    assert message.hold_time == 180  # FRR's default; the recorder offered 90


def test_addpath_send_is_announced_for_both_families() -> None:
    for daemon in DAEMONS:
        add_path = the_open(load(f"{daemon}-ebgp-addpath")).capability(AddPath)
        assert add_path is not None, daemon
        sending = {e.family for e in add_path.families if e.send}
        assert sending == {IPV4_UNICAST, IPV6_UNICAST}, daemon


# ---------------------------------------------------------------- the UPDATEs


@dataclass(frozen=True)
class Route:
    family: Family
    attributes: PathAttributes
    next_hop: str
    path_id: int | None


def announced(cap: Captured) -> dict[str, Route]:
    """Prefix -> how it was announced (each prefix is announced once in these captures)."""
    routes: dict[str, Route] = {}
    for update in cap.updates():
        for family, keys, next_hop in _reachable(update):
            addpath = family in update.addpath
            for key in keys:
                prefix = nlri_to_str(key, family, addpath)
                assert prefix not in routes, f"{prefix} announced twice"
                assert update.attributes is not None
                path_id = nlri_path_id(key) if addpath else None
                routes[prefix] = Route(family, update.attributes, next_hop, path_id)
    return routes


def _reachable(update: Update) -> list[tuple[Family, tuple[bytes, ...], str]]:
    out = []
    if update.nlri:
        assert update.attributes is not None
        out.append((IPV4_UNICAST, update.nlri, str(update.attributes.next_hop)))
    if update.mp_reach is not None:
        out.append((update.mp_reach.family, update.mp_reach.nlri, update.mp_reach.next_hops[0]))
    return out


def withdrawn(cap: Captured) -> dict[str, int | None]:
    """Prefix -> path identifier (None without ADD-PATH)."""
    out: dict[str, int | None] = {}
    for update in cap.updates():
        pieces = [(IPV4_UNICAST, update.withdrawn)]
        if update.mp_unreach is not None:
            pieces.append((update.mp_unreach.family, update.mp_unreach.nlri))
        for family, keys in pieces:
            addpath = family in update.addpath
            for key in keys:
                out[nlri_to_str(key, family, addpath)] = nlri_path_id(key) if addpath else None
    return out


def test_announces_exactly_the_configured_prefixes(cap: Captured) -> None:
    assert set(announced(cap)) == TAGGED | PREPENDED | PLAIN


def test_several_prefixes_share_one_update(cap: Captured) -> None:
    v4_counts = [len(u.nlri) for u in cap.updates()]
    assert max(v4_counts) >= 2


def test_next_hops_are_the_daemons_addresses(cap: Captured) -> None:
    for prefix, route in announced(cap).items():
        expected = DAEMON_V6 if route.family == IPV6_UNICAST else DAEMON_V4
        assert route.next_hop == expected, prefix


def test_tagged_routes_carry_the_configured_values(cap: Captured) -> None:
    routes = announced(cap)
    for prefix in TAGGED:
        attrs = routes[prefix].attributes
        assert attrs.communities == TAG_COMMUNITIES, prefix
        assert attrs.large_communities == ((cap.asn, 1, 2), (cap.asn, 3, 4)), prefix
        assert attrs.extended_communities == (RT_65000_10,), prefix
        assert attrs.med == 50, prefix
        assert attrs.local_pref == (200 if cap.scenario == "ibgp" else None), prefix


def test_prepends_and_origination(cap: Captured) -> None:
    """eBGP: the daemon's AS once (plain, tagged) or three times (2 prepends + its own);
    iBGP: an empty path, and default local-pref 100 where none was set."""
    routes = announced(cap)
    ibgp = cap.scenario == "ibgp"
    for prefix, route in routes.items():
        times = 3 if prefix in PREPENDED else 1
        expected = () if ibgp else ((2, (cap.asn,) * times),)
        assert route.attributes.as_path == expected, prefix
        if ibgp and prefix not in TAGGED:
            assert route.attributes.local_pref == 100, prefix
    for prefix in PREPENDED:
        assert routes[prefix].attributes.communities == (PREPEND_COMMUNITY,)


def test_two_octet_session_uses_as_trans_and_as4_path() -> None:
    """RFC 6793 §4.2.2: toward a 2-octet peer AS_PATH holds AS_TRANS, AS4_PATH the real
    ASNs; merged (§4.2.3) they give the real path."""
    for daemon in DAEMONS:
        cap = load(f"{daemon}-ebgp-as2")
        assert "--no-asn4" in cap.options
        for prefix, route in announced(cap).items():
            values = route.attributes.values
            times = 3 if prefix in PREPENDED else 1
            assert values[AttrType.AS_PATH] == ((2, (AS_TRANS,) * times),), prefix
            assert values[AttrType.AS4_PATH] == ((2, (cap.asn,) * times),), prefix
            assert route.attributes.as_path == ((2, (cap.asn,) * times),), prefix


def test_end_of_rib_for_both_families_before_the_withdrawals(cap: Captured) -> None:
    """Each family's End-of-RIB follows all its announcements (RFC 4724 §2); we removed the
    routes only after both."""
    updates = cap.updates()
    eor = {u.end_of_rib(): i for i, u in enumerate(updates) if u.end_of_rib() is not None}
    assert set(eor) == {IPV4_UNICAST, IPV6_UNICAST}
    for family, at in eor.items():
        announcing = [i for i, u in enumerate(updates) if family in _families(u)]
        assert announcing and max(announcing) < at, family
    first_withdrawal = min(i for i, u in enumerate(updates) if _withdraws(u))
    assert max(eor.values()) < first_withdrawal


def _families(update: Update) -> set[Family]:
    return {family for family, _keys, _next_hop in _reachable(update)}


def _withdraws(update: Update) -> bool:
    unreach = update.mp_unreach
    return bool(update.withdrawn) or (unreach is not None and bool(unreach.nlri))


def test_withdraws_the_removed_routes(cap: Captured) -> None:
    gone = withdrawn(cap)
    assert set(gone) == WITHDRAWN
    routes = announced(cap)
    for prefix, path_id in gone.items():
        assert path_id == routes[prefix].path_id, prefix  # ADD-PATH: the same path goes


def test_addpath_gives_every_prefix_a_path_id() -> None:
    for daemon in DAEMONS:
        cap = load(f"{daemon}-ebgp-addpath")
        assert {"--addpath", "ipv4-unicast"} <= set(cap.options)
        routes = announced(cap)
        assert all(route.path_id is not None for route in routes.values()), daemon


# ---------------------------------------------------------------- a live capture


def load_capture_script() -> ModuleType:
    path = FIXTURES / "capture.py"
    spec = importlib.util.spec_from_file_location("bgp_capture_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.mark.privileged
def test_live_gobgp_capture_decodes() -> None:
    """GoBGP eBGP in namespaces, now: every byte decodes and the configured prefixes arrive."""
    require_root()
    require_tools("ip", "unshare", "gobgpd", "gobgp")
    script = load_capture_script()
    live = script.capture("gobgp", script.SCENARIOS["ebgp"], withdraw=False)
    assert live.seen.errors == []
    assert live.seen.open is not None and live.seen.open.asn == DAEMON_AS["gobgp"]
    assert live.seen.announced == TAGGED | PREPENDED | PLAIN
    assert live.seen.end_of_rib == {IPV4_UNICAST, IPV6_UNICAST}
    ctx = CodecContext(asn4=True, ibgp=False, peer_asn=DAEMON_AS["gobgp"])
    for frame in live.frames:
        assert decode_message(frame[18], frame[19:], ctx).encode(ctx) == frame
