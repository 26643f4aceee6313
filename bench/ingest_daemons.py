"""The daemons the ingest benchmark (bench/bench_ingest.py) measures: each one's config, its
command line, and how its own counters are read (pybgpd: the control socket; FRR: vtysh;
BIRD: birdc; GoBGP: its CLI; ExaBGP: a process counting its JSON stream).

Needs Debian's frr, bird2 and gobgpd, and ExaBGP from PyPI in its own virtualenv.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from bench.ingest_lab import (
    DAEMON_ADDR,
    DAEMON_ASN,
    FRR_SINK_ADDR,
    FRR_SINK_ASN,
    REPO,
    VENV_BIN,
    Peer,
    cli,
    spawn,
)


class Daemon:
    """One daemon under test: its config, its command line, and how to read its counters."""

    name = ""
    note = ""

    def __init__(self, workdir: Path, ns: str, exabgp: str) -> None:
        self.dir, self.ns, self.exabgp = workdir, ns, exabgp

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def start(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return spawn(self.ns, self.argv(), self.dir, self.env(), log)

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        """Prefixes accepted from `peers`, summed, as the daemon itself reports them."""
        raise NotImplementedError

    def established(self, peer: Peer) -> bool:
        raise NotImplementedError


class PyBGPd(Daemon):
    name = "pybgpd"
    note = "counters read over the control socket (the request `pybgp -j neighbor` sends)"

    @property
    def socket(self) -> str:
        return str(self.dir / "pybgpd.sock")

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        lines = [
            "[global]",
            f"asn = {DAEMON_ASN}",
            f'router_id = "{DAEMON_ADDR}"',
            f'listen = ["{DAEMON_ADDR}"]',
        ]
        for peer in peers:
            lines += _pybgpd_neighbor(peer, passive=True)
        if sink is not None:
            lines += _pybgpd_neighbor(sink, passive=False)
        lines += ["[policy.attach]", 'default_export = "accept"']  # relay everything
        (self.dir / "pybgpd.toml").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        return [
            str(VENV_BIN / "pybgpd"),
            "-c",
            str(self.dir / "pybgpd.toml"),
            "--socket",
            self.socket,
        ]

    def _neighbors(self) -> dict[str, dict[str, Any]]:
        from pybgp.control import request

        return {n["address"]: n for n in request(self.socket, "neighbors", timeout=10.0)}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        table = self._neighbors()
        return sum(table[p.address]["families"]["ipv4-unicast"]["accepted"] for p in peers)

    def established(self, peer: Peer) -> bool:
        with contextlib.suppress(Exception):
            return str(self._neighbors()[peer.address]["state"]).lower() == "established"
        return False


def _pybgpd_neighbor(peer: Peer, passive: bool) -> list[str]:
    return [
        "[[neighbors]]",
        f'address = "{peer.address}"',
        f"peer_asn = {peer.asn}",
        f"passive = {str(passive).lower()}",
        'families = ["ipv4-unicast"]',
    ]


class FRR(Daemon):
    name = "frr"
    note = "FRR 8.4 bgpd run directly (no zebra, no watchfrr, -Z: no FIB)"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        self.write_config(DAEMON_ADDR, DAEMON_ASN, peers, sink)

    def write_config(
        self, router_id: str, asn: int, peers: tuple[Peer, ...], active: Peer | None
    ) -> None:
        lines = [
            "frr defaults traditional",
            "hostname bench",
            "log stdout warnings",
            f"router bgp {asn}",
            f" bgp router-id {router_id}",
            " no bgp ebgp-requires-policy",
            " no bgp network import-check",
        ]
        lines += [f" neighbor {p.address} remote-as {p.asn}" for p in peers]
        lines += [f" neighbor {p.address} passive" for p in peers]
        if active is not None:
            lines.append(f" neighbor {active.address} remote-as {active.asn}")
        lines.append(" address-family ipv4 unicast")
        lines += [f"  neighbor {p.address} activate" for p in peers]
        if active is not None:
            lines.append(f"  neighbor {active.address} activate")
        lines += [" exit-address-family", ""]
        (self.dir / "bgpd.conf").write_text("\n".join(lines))

    def listen_addr(self) -> str:
        return DAEMON_ADDR

    def argv(self) -> list[str]:
        return [
            "/usr/lib/frr/bgpd",
            *("-f", str(self.dir / "bgpd.conf"), "-i", str(self.dir / "bgpd.pid")),
            *("-Z", "-S", "-u", "root", "-g", "root", "--vty_socket", str(self.dir)),
            *("-l", self.listen_addr()),
        ]

    def summary(self) -> dict[str, Any]:
        """`show bgp ipv4 unicast summary json`, asked on bgpd's vty socket as vtysh asks it
        (the command and a NUL; the answer ends with three NULs and a status octet), so a
        poll costs a Unix-socket request, as pybgpd's does, not a vtysh process."""
        out = bytearray()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(20.0)
                sock.connect(str(self.dir / "bgpd.vty"))
                sock.sendall(b"show bgp ipv4 unicast summary json\0")
                while out[-4:-1] != b"\0\0\0":
                    chunk = sock.recv(65536)
                    if not chunk:
                        return {}
                    out += chunk
            return dict(json.loads(out[:-4].decode()).get("peers", {}))
        except (OSError, ValueError):
            return {}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        table = self.summary()
        return sum(int(table.get(p.address, {}).get("pfxRcd", 0)) for p in peers)

    def established(self, peer: Peer) -> bool:
        return bool(self.summary().get(peer.address, {}).get("state") == "Established")


class FRRSink(FRR):
    """The FRR bgpd that receives from the relay (--relay runs), in its own namespace."""

    name = "frr-sink"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        self.write_config(FRR_SINK_ADDR, FRR_SINK_ASN, peers, None)

    def listen_addr(self) -> str:
        return FRR_SINK_ADDR


class FRRRelay(FRR):
    """FRR bgpd as the relay: the sender passive, the sink FRR connected actively."""


class Bird(Daemon):
    name = "bird"
    note = "BIRD 2.0 (no kernel protocol: nothing installed)"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        lines = [f"router id {DAEMON_ADDR};", "protocol device {}"]
        for index, peer in enumerate(peers):
            lines += [
                f"protocol bgp p{index} {{",
                f"  local {DAEMON_ADDR} as {DAEMON_ASN};",
                f"  neighbor {peer.address} as {peer.asn};",
                "  passive on;",
                "  error wait time 1, 5;",
                "  ipv4 { import all; export all; };",
                "}",
            ]
        (self.dir / "bird.conf").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        ctl = str(self.dir / "bird.ctl")
        return ["bird", "-f", "-c", str(self.dir / "bird.conf"), "-s", ctl]

    def _protocols(self) -> dict[str, str]:
        """BGP protocol name -> its `show protocols all` block."""
        out = cli(self.ns, "birdc", "-s", str(self.dir / "bird.ctl"), "show", "protocols", "all")
        blocks = re.split(r"\n(?=\S)", out)
        return {b.split()[0]: b for b in blocks if re.match(r"^p\d+\s+BGP", b)}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        blocks = self._protocols()
        total = 0
        for index, _peer in enumerate(peers):
            found = re.search(r"Routes:\s+(\d+) imported", blocks.get(f"p{index}", ""))
            total += int(found.group(1)) if found else 0
        return total

    def established(self, peer: Peer) -> bool:
        return "Established" in self._protocols().get("p0", "")


class GoBGP(Daemon):
    name = "gobgp"
    note = "GoBGP 3.10 gobgpd (no zebra)"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        lines = [
            "[global.config]",
            f"  as = {DAEMON_ASN}",
            f'  router-id = "{DAEMON_ADDR}"',
            f'  local-address-list = ["{DAEMON_ADDR}"]',
        ]
        for peer in peers:
            lines += [
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{peer.address}"',
                f"    peer-as = {peer.asn}",
                "  [neighbors.transport.config]",
                "    passive-mode = true",
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                '      afi-safi-name = "ipv4-unicast"',
            ]
        (self.dir / "gobgp.toml").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        config = str(self.dir / "gobgp.toml")
        return ["gobgpd", "-f", config, "--api-hosts", "127.0.0.1:50051", "-l", "warn"]

    def _neighbors(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(cli(self.ns, "gobgp", "neighbor", "-j"))
        except json.JSONDecodeError:
            return {}
        return {n["state"]["neighbor_address"]: n for n in data}

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        table, total = self._neighbors(), 0
        for peer in peers:
            for family in table.get(peer.address, {}).get("afi_safis", []):
                total += int(family.get("state", {}).get("accepted", 0))
        return total

    def established(self, peer: Peer) -> bool:
        state = self._neighbors().get(peer.address, {}).get("state", {})
        return state.get("session_state") in (6, "established", "ESTABLISHED")


class ExaBGP(Daemon):
    name = "exabgp"
    note = "ExaBGP from PyPI; count from a `process` reading its JSON stream (received updates)"

    @property
    def count_file(self) -> Path:
        return self.dir / "exabgp.count"

    def configure(self, peers: tuple[Peer, ...], sink: Peer | None) -> None:
        counter = " ".join(
            [
                "/usr/bin/env",
                f"PYTHONPATH={REPO}",
                sys.executable,
                "-m",
                "bench.ingest_daemons",
                "--exabgp-counter",
                str(self.count_file),
            ]
        )
        lines = ["process counter {", f"  run {counter};", "  encoder json;", "}"]
        for peer in peers:
            lines += [
                f"neighbor {peer.address} {{",
                f"  router-id {DAEMON_ADDR};",
                f"  local-address {DAEMON_ADDR};",
                f"  local-as {DAEMON_ASN};",
                f"  peer-as {peer.asn};",
                "  passive true;",
                "  family { ipv4 unicast; }",
                "  capability { asn4 enable; }",
                "  api { processes [ counter ]; receive { parsed; update; } }",
                "}",
            ]
        (self.dir / "exabgp.conf").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        return [self.exabgp, str(self.dir / "exabgp.conf")]

    def env(self) -> dict[str, str]:
        return os.environ | {
            "exabgp_tcp_bind": DAEMON_ADDR,
            "exabgp_tcp_port": "179",
            "exabgp_daemon_user": "root",
            "exabgp_daemon_drop": "false",
            "exabgp_api_compact": "false",
            "exabgp_log_level": "WARNING",
            "exabgp_cli_enable": "false",
        }

    def accepted(self, peers: tuple[Peer, ...]) -> int:
        try:
            return int(self.count_file.read_text() or 0)
        except (OSError, ValueError):
            return 0

    def established(self, peer: Peer) -> bool:
        return False


DAEMONS: dict[str, type[Daemon]] = {
    "pybgpd": PyBGPd,
    "frr": FRR,
    "bird": Bird,
    "gobgp": GoBGP,
    "exabgp": ExaBGP,
}
RELAYS: dict[str, type[Daemon]] = {"pybgpd": PyBGPd, "frr": FRRRelay}


def exabgp_counter(out: Path) -> None:
    """Run by ExaBGP as its `process`: count the prefixes announced in its JSON stream; a
    thread writes the running count to `out` every 0.1 s (so the counter stays cheap)."""
    count = [0]
    done = threading.Event()

    def flush() -> None:
        written = -1
        while not done.wait(0.1):
            if count[0] != written:
                written = count[0]
                _write_atomic(out, written)

    threading.Thread(target=flush, daemon=True).start()
    for line in sys.stdin:
        count[0] += line.split('"withdraw"')[0].count('"nlri"')
    done.set()
    _write_atomic(out, count[0])


def _write_atomic(path: Path, count: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(count))
    os.replace(tmp, path)


if __name__ == "__main__":  # ExaBGP's counting process
    if sys.argv[1:2] != ["--exabgp-counter"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.ingest_daemons --exabgp-counter FILE")
    exabgp_counter(Path(sys.argv[2]))
