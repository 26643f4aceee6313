"""BFD (RFC 5880, 5881) between pybgpd and FRR 8.4's bfdd, both tied to BGP (RFC 5882).

FRR runs as zebra + bfdd + bgpd, the Debian package's daemons started directly in the peer
namespace (bgpd hands its BFD sessions to bfdd through zebra, so all three are needed). Two
BGP sessions, one over IPv4 and one over IPv6, with `neighbor X bfd` on FRR's side and
`bfd = true` on pybgpd's, both at the default 300 ms x 3, and a BGP hold time of 30 s.

The test cuts the path in pybgpd's namespace (iptables and ip6tables DROP of UDP 3784 and
TCP 179, both directions), measures how long each side's BGP session stays Established
(BFD must take it down well inside the hold time), then heals the cut and waits for BFD
and BGP to come back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    OUR_ASN,
    OUR_V4,
    OUR_V6,
    PEER_V4,
    PEER_V6,
    Pybgpd,
    end,
    linked_namespaces,
    output,
    short_workdir,
    spawn,
    tail,
    wait_for,
)
from tests.support import require, require_root, require_tools

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

FRR_ASN = 65001
HOLD_TIME = 30
FRR_LIB = Path("/usr/lib/frr")
SESSIONS = ((PEER_V4, OUR_V4, "ipv4"), (PEER_V6, OUR_V6, "ipv6"))  # (peer, ours, family)
CUT_RULES = (  # both directions of BFD (UDP 3784) and BGP (TCP 179)
    ("INPUT", "-p", "udp", "--dport", "3784"),
    ("OUTPUT", "-p", "udp", "--dport", "3784"),
    ("INPUT", "-p", "tcp", "--dport", "179"),
    ("INPUT", "-p", "tcp", "--sport", "179"),
    ("OUTPUT", "-p", "tcp", "--dport", "179"),
    ("OUTPUT", "-p", "tcp", "--sport", "179"),
)


class FrrWithBfd:
    """zebra, bfdd and bgpd in namespace `ns`, as user frr (zebra and bfdd cannot skip the
    privilege drop, and root is not in the frrvty group), every file in `workdir/frr`."""

    def __init__(self, ns: str, workdir: Path) -> None:
        self.ns = ns
        self.dir = workdir / "frr"
        self.dir.mkdir()
        shutil.chown(self.dir, "frr", "frr")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def bgpd_config(self) -> str:
        lines = [
            "hostname frr-bfd",
            f"router bgp {FRR_ASN}",
            f" bgp router-id {PEER_V4}",
            " no bgp ebgp-requires-policy",
            " no bgp default ipv4-unicast",
            f" timers bgp {HOLD_TIME // 3} {HOLD_TIME}",
        ]
        for peer, ours, _family in SESSIONS:
            lines += [
                f" neighbor {ours} remote-as {OUR_ASN}",
                f" neighbor {ours} update-source {peer}",
                f" neighbor {ours} timers connect 1",
                f" neighbor {ours} bfd",
            ]
        for _peer, ours, family in SESSIONS:
            lines += [f" address-family {family} unicast", f"  neighbor {ours} activate"]
            lines.append(" exit-address-family")
        return "\n".join(lines) + "\n"

    def common(self, daemon: str) -> list[str]:
        d = self.dir
        return [
            str(FRR_LIB / daemon),
            *("-f", str(d / f"{daemon}.conf"), "-i", str(d / f"{daemon}.pid")),
            *("-z", str(d / "zserv.api"), "--vty_socket", str(d)),
            *("-u", "frr", "-g", "frr", "-P", "0", "--log", "stdout"),
        ]

    def start(self) -> None:
        (self.dir / "zebra.conf").write_text("hostname frr-bfd\n")
        (self.dir / "bfdd.conf").write_text("hostname frr-bfd\n")
        (self.dir / "bgpd.conf").write_text(self.bgpd_config())
        self.launch("zebra", [])
        wait_for((self.dir / "zserv.api").exists, "zebra's zserv socket", 10)
        self.launch("bfdd", ["--bfdctl", str(self.dir / "bfdd.sock")])
        self.launch("bgpd", ["-l", PEER_V4, "-l", PEER_V6])
        wait_for(lambda: self.show("bgpd", "show bgp summary"), "FRR bgpd's CLI", 20)
        wait_for(lambda: self.show("bfdd", "show bfd peers") is not None, "FRR bfdd's CLI", 20)

    def launch(self, daemon: str, extra: list[str]) -> None:
        self.procs[daemon] = spawn(self.ns, [*self.common(daemon), *extra], self.log(daemon))

    def log(self, daemon: str) -> Path:
        return self.dir.parent / f"frr-{daemon}.log"  # written by us (root), not by frr

    def vtysh(self, daemon: str, command: str) -> str:
        return output("vtysh", "--vty_socket", str(self.dir), "-d", daemon, "-c", command)

    def show(self, daemon: str, command: str) -> Any:
        return json.loads(self.vtysh(daemon, f"{command} json"))

    def neighbor(self, address: str) -> dict[str, Any]:
        shown: dict[str, Any] = self.show("bgpd", f"show bgp neighbors {address}")
        return shown.get(address, {})

    def state(self, address: str) -> str:
        return str(self.neighbor(address).get("bgpState", ""))

    def bfd_peers(self) -> dict[str, dict[str, Any]]:
        return {p["peer"]: p for p in self.show("bfdd", "show bfd peers")}

    def close(self) -> None:
        for daemon in ("bgpd", "bfdd", "zebra"):  # never raises (end() does not)
            end(self.procs.get(daemon), signal.SIGTERM, timeout=5)

    def diagnostics(self) -> str:
        return "\n".join(
            f"--- FRR {d} log:\n{tail(self.log(d), 40)}" for d in ("zebra", "bfdd", "bgpd")
        )


@contextlib.contextmanager
def bfd_pair() -> Iterator[tuple[Any, FrrWithBfd, Pybgpd]]:
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(short_workdir("bfd"))
        os.chmod(workdir, 0o755)  # FRR's daemons (user frr) reach their own directory
        link = stack.enter_context(linked_namespaces())
        frr = FrrWithBfd(link.peer, workdir)
        stack.callback(frr.close)
        neighbors = [
            {
                "address": peer,
                "peer_asn": FRR_ASN,
                "families": [f"{family}-unicast"],
                "connect_retry": 1,
                "hold_time": HOLD_TIME,
                "bfd": True,
            }
            for peer, _ours, family in SESSIONS
        ]
        ours = Pybgpd(link.ours, workdir, neighbors=neighbors)
        stack.callback(ours.close)
        try:
            frr.start()
            ours.start()
            yield link, frr, ours
        except Exception as exc:
            exc.add_note(f"{ours.diagnostics()}\n{frr.diagnostics()}")
            raise


def both_established(frr: FrrWithBfd, ours: Pybgpd) -> bool:
    return all(
        ours.state(peer) == ESTABLISHED and frr.state(our) == ESTABLISHED
        for peer, our, _ in SESSIONS
    )


def bfd_up_both_sides(frr: FrrWithBfd, ours: Pybgpd) -> dict[str, Any] | None:
    peers = frr.bfd_peers()
    shown = {}
    for peer, our, _ in SESSIONS:
        frr_side = peers.get(our, {})
        our_side = ours.neighbor(peer).get("bfd") or {}
        if frr_side.get("status") != "up" or our_side.get("state") != "Up":
            return None
        shown[peer] = {"frr": frr_side, "pybgpd": our_side}
    return shown


def watch(probe: Callable[[], bool], seconds: float, found: dict[str, float], key: str) -> None:
    """Record in found[key] when `probe` first says the session left Established."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            if probe():
                found[key] = time.monotonic()
                return
        except Exception:  # a CLI hiccup is "not yet"
            pass
        time.sleep(0.02)


def iptables(ns: str, action: str) -> None:
    for tool in ("iptables", "ip6tables"):
        for chain, *match in CUT_RULES:
            output(tool, action, chain, *match, "-j", "DROP", netns=ns)


def test_bfd_takes_bgp_down_fast_and_recovers() -> None:
    require_root()
    require_tools("ip", "vtysh", "iptables", "ip6tables")
    for daemon in ("zebra", "bfdd", "bgpd"):
        require((FRR_LIB / daemon).exists(), f"{FRR_LIB / daemon} (Debian frr)")
    with bfd_pair() as (link, frr, ours):
        wait_for(lambda: both_established(frr, ours), "both BGP sessions Established", 30)
        shown = wait_for(lambda: bfd_up_both_sides(frr, ours), "BFD Up on both sides", 20)
        assert shown is not None
        for peer, our, _ in SESSIONS:
            frr_bfd, our_bfd = shown[peer]["frr"], shown[peer]["pybgpd"]
            print(f"BFD {our}<->{peer}: FRR {json.dumps(frr_bfd)}\n  pybgpd {our_bfd}")
            assert frr_bfd["remote-id"] == our_bfd["local_discriminator"]
            assert frr_bfd["id"] == our_bfd["remote_discriminator"]
            assert frr_bfd["remote-detect-multiplier"] == 3
            assert frr_bfd["remote-receive-interval"] == 300
            assert frr_bfd["remote-transmit-interval"] == 300  # after our Poll Sequence
            assert our_bfd["detection_time_ms"] == 900.0
            peer_info = frr.neighbor(our).get("peerBfdInfo", {})
            assert peer_info.get("status") == "Up", peer_info
        detail = ours.cli("neighbor", PEER_V4)
        print(detail)
        assert "BFD: Up (remote Up)" in detail

        # -- cut: BFD and BGP packets dropped both ways in pybgpd's namespace
        found: dict[str, float] = {}
        watchers = []
        for peer, our, _ in SESSIONS:
            probes = {
                f"pybgpd {peer}": lambda p=peer: ours.state(p) != ESTABLISHED,
                f"FRR {our}": lambda o=our: frr.state(o) != ESTABLISHED,
            }
            for key, probe in probes.items():
                thread = threading.Thread(target=watch, args=(probe, 15.0, found, key))
                watchers.append(thread)
        cut_at = time.monotonic()
        iptables(link.ours, "-I")
        cut_done = time.monotonic()
        for thread in watchers:
            thread.start()
        for thread in watchers:
            thread.join()
        figures = {key: found[key] - cut_at for key in found}
        print(f"cut took {cut_done - cut_at:.3f} s to apply; BGP left Established after:")
        for key in sorted(figures):
            print(f"  {key}: {figures[key]:.3f} s (hold time {HOLD_TIME} s)")
        assert len(figures) == 4, f"some side stayed Established: {figures}"
        assert all(seconds < 3.0 for seconds in figures.values()), figures
        for peer, our, _ in SESSIONS:
            frr_view = frr.neighbor(our)
            print(f"FRR {our}: {frr_view.get('lastNotificationReason')}, ", end="")
            print(f"BFD {frr_view.get('peerBfdInfo', {}).get('status')}")
            # FRR closed the session for BFD as well: it sent Cease (6) / BFD Down (10).
            assert frr_view.get("lastErrorCodeSubcode") == "060A", frr_view
            assert frr_view.get("lastResetDueTo") == "BGP Notification send"
            our_view = ours.neighbor(peer)
            assert our_view["bfd"]["state"] == "Down"
            assert our_view["bfd"]["diag"] == "control_detection_time_expired"
            assert "sent Cease/BFD Down" in our_view["last_error"]
        frr_peers = frr.bfd_peers()
        assert all(frr_peers[our]["status"] == "down" for _, our, _ in SESSIONS)

        # -- heal: BFD comes back Up and BGP re-establishes on both sides
        healed_at = time.monotonic()
        iptables(link.ours, "-D")
        wait_for(lambda: bfd_up_both_sides(frr, ours), "BFD Up again after the heal", 30)
        bfd_back = time.monotonic() - healed_at
        wait_for(lambda: both_established(frr, ours), "BGP Established again", 45)
        bgp_back = time.monotonic() - healed_at
        print(f"after the heal: BFD Up in {bfd_back:.2f} s, BGP Established in {bgp_back:.2f} s")
