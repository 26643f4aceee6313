"""The BGP guide's example runs as written: pybgpd and FRR bgpd, each with the guide's own
configuration file, in two namespaces joined by a veth pair, exchange their routes over an
MD5-signed eBGP session."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.pybgp.interop.conftest import require_peer
from tests.pybgp.interop.daemons import (
    PYBGP,
    PYBGPD,
    end,
    linked_namespaces,
    output,
    secret_file,
    short_workdir,
    spawn,
    tail,
    wait_for,
)

pytestmark = [pytest.mark.privileged]

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "bgp.md"
FILE = re.compile(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```", re.DOTALL)


def guide_files() -> dict[str, str]:
    """The guide's files: each fenced block right after a `<!-- file: NAME -->` line."""
    return dict(FILE.findall(GUIDE.read_text()))


def test_the_guide_names_its_files() -> None:
    assert set(guide_files()) == {"pybgpd.toml", "frr.key", "bgpd.conf"}


def test_the_guides_pybgpd_and_frr_exchange_routes(request: pytest.FixtureRequest) -> None:
    require_peer("frr-direct", request)
    files = guide_files()
    with linked_namespaces() as link, short_workdir("guide") as work:
        key = secret_file(work, "frr.key", files["frr.key"].strip())
        (work / "pybgpd.toml").write_text(files["pybgpd.toml"].replace("/etc/pybgpd/frr.key", key))
        (work / "bgpd.conf").write_text(files["bgpd.conf"])
        frr = spawn(link.peer, ["/usr/lib/frr/bgpd", "-f", str(work / "bgpd.conf"), "-Z", "-S",
                                "-u", "root", "-g", "root", "--vty_socket", str(work),
                                "-l", "10.0.0.2"], work / "bgpd.log")  # fmt: skip
        socket = str(work / "pybgpd.sock")
        pybgpd = spawn(link.ours, [str(PYBGPD), "-c", str(work / "pybgpd.toml"),
                                   "--socket", socket], work / "pybgpd.log")  # fmt: skip
        try:

            def frr_has(prefix: str) -> bool:
                shown = output("vtysh", "--vty_socket", str(work), "-d", "bgpd",
                               "-c", "show bgp ipv4 unicast json")  # fmt: skip
                return prefix in json.loads(shown).get("routes", {})

            def pybgpd_has(prefix: str) -> bool:
                rib = json.loads(output(str(PYBGP), "--socket", socket, "-j", "rib"))
                return any(route["prefix"] == prefix and route["best"] for route in rib)

            wait_for(lambda: pybgpd_has("10.2.0.0/24"), "FRR's route in pybgpd", 30)
            wait_for(lambda: frr_has("10.1.0.0/24"), "pybgpd's route in FRR", 30)
            neighbors = json.loads(output(str(PYBGP), "--socket", socket, "-j", "neighbor"))
            assert [(n["address"], n["state"]) for n in neighbors] == [("10.0.0.2", "Established")]
            assert files["frr.key"].strip() not in (work / "pybgpd.log").read_text()
        except AssertionError as failure:
            failure.add_note(
                f"pybgpd:\n{tail(work / 'pybgpd.log')}\nFRR:\n{tail(work / 'bgpd.log')}"
            )
            raise
        finally:
            end(pybgpd)
            end(frr)
