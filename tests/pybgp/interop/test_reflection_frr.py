"""Route reflection (RFC 4456) with FRR, everyone in AS 65000: pybgpd reflecting between FRR
clients and towards an FRR non-client, and pybgpd as a client of an FRR reflector. FRR's
bgpd runs directly in its namespaces (several of them; no zebra)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.netns import netns, veth_pair
from tests.pybgp.interop.daemons import (
    ESTABLISHED,
    OUR_ASN,
    FrrDirect,
    Pybgpd,
    Route,
    Session,
    short_workdir,
    wait_for,
)
from tests.support import require, require_root, require_tools

pytestmark = pytest.mark.privileged

CLUSTER_ID = "10.255.255.1"
PYBGPD_ID = "10.255.0.1"


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_root()
    require_tools("ip", "vtysh")
    require(Path("/usr/lib/frr/bgpd").exists(), "/usr/lib/frr/bgpd (Debian frr)")


class Lab:
    """Namespaces joined pairwise by veths, FRR bgpds and one pybgpd; all removed on exit."""

    def __init__(self, stack: contextlib.ExitStack, workdir: Path) -> None:
        self.stack, self.workdir = stack, workdir
        self.subnets = 0

    def namespace(self, prefix: str) -> str:
        return self.stack.enter_context(netns(prefix))

    def link(self, a: str, b: str) -> tuple[str, str]:
        """A /24 between `a` and `b`: (a's address, b's address)."""
        self.subnets += 1
        ours, theirs = f"10.0.{self.subnets}.1", f"10.0.{self.subnets}.2"
        self.stack.enter_context(veth_pair(a, f"{ours}/24", b, f"{theirs}/24"))
        return ours, theirs

    def frr(
        self,
        ns: str,
        name: str,
        router_id: str,
        sessions: list[Session],
        *routes: str,
        reflector_clients: tuple[str, ...] = (),
    ) -> FrrDirect:
        workdir = self.workdir / name
        workdir.mkdir()
        kind = FrrReflector if reflector_clients else FrrDirect
        frr = kind(
            ns,
            workdir,
            asn=OUR_ASN,
            sessions=sessions,
            routes=[Route(r) for r in routes],
            router_id=router_id,
        )
        if isinstance(frr, FrrReflector):
            frr.clients = reflector_clients
        self.stack.callback(frr.close)
        frr.start()
        return frr

    def pybgpd(
        self, ns: str, neighbors: list[dict[str, Any]], listen: list[str], *routes: str
    ) -> Pybgpd:
        ours = Pybgpd(
            ns,
            self.workdir,
            neighbors=neighbors,
            routes=[Route(r) for r in routes],
            router_id=PYBGPD_ID,
            listen=listen,
        )
        ours.global_["cluster_id"] = CLUSTER_ID
        self.stack.callback(ours.close)
        ours.start()
        return ours


class FrrReflector(FrrDirect):
    """FRR as a route reflector: its `clients`, and every route passed on (no out filter)."""

    clients: tuple[str, ...] = ()

    def config_text(self) -> str:
        lines = []
        for line in super().config_text().splitlines():
            if line.endswith("route-map OUT4 out"):
                neighbor = line.split()[1]
                if neighbor in self.clients:
                    lines.append(f"  neighbor {neighbor} route-reflector-client")
                continue
            lines.append(line)
        return "\n".join(lines) + "\n"


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    with contextlib.ExitStack() as stack:
        yield Lab(stack, stack.enter_context(short_workdir("rr")))


def best_path(frr: FrrDirect, prefix: str) -> dict[str, Any] | None:
    for path in frr.show(f"show bgp ipv4 unicast {prefix}").get("paths", []):
        if path.get("bestpath", {}).get("overall"):
            return dict(path)
    return None


def ibgp(address: str, **extra: Any) -> dict[str, Any]:
    return {
        "address": address,
        "peer_asn": OUR_ASN,
        "families": ["ipv4-unicast"],
        "connect_retry": 1,
        **extra,
    }


def test_pybgpd_reflects_between_frr_clients_and_to_a_non_client() -> None:
    with lab() as net:
        rr, c1, c2, nc = (net.namespace(p) for p in ("rrp", "rrc", "rrc", "rrn"))
        (p1, a1), (p2, a2), (p3, a3) = net.link(rr, c1), net.link(rr, c2), net.link(rr, nc)
        clients = {
            "c1": net.frr(c1, "c1", "10.255.0.11", [Session(p1, a1, ("ipv4",))], "10.11.0.0/24"),
            "c2": net.frr(c2, "c2", "10.255.0.12", [Session(p2, a2, ("ipv4",))], "10.12.0.0/24"),
        }
        other = net.frr(nc, "nc", "10.255.0.13", [Session(p3, a3, ("ipv4",))], "10.13.0.0/24")
        ours = net.pybgpd(
            rr,
            [
                ibgp(a1, route_reflector_client=True),
                ibgp(a2, route_reflector_client=True),
                ibgp(a3),
            ],
            [p1, p2, p3],
        )
        wait_for(lambda: all(ours.state(a) == ESTABLISHED for a in (a1, a2, a3)), "sessions up")

        # A client's route goes to the other client and to the non-client, reflected.
        for frr, prefix, origin, hop in (
            (clients["c2"], "10.11.0.0/24", "10.255.0.11", a1),
            (other, "10.11.0.0/24", "10.255.0.11", a1),
            (clients["c1"], "10.12.0.0/24", "10.255.0.12", a2),
        ):
            path = wait_for(lambda f=frr, p=prefix: best_path(f, p), f"{prefix} reflected")
            assert path["originatorId"] == origin
            assert path["clusterList"]["list"] == [CLUSTER_ID]
            assert path["nexthops"][0]["ip"] == hop  # iBGP: the next hop is left alone
        # The non-client's route goes to the clients only.
        for frr in clients.values():
            path = wait_for(lambda f=frr: best_path(f, "10.13.0.0/24"), "10.13.0.0/24 reflected")
            assert path["originatorId"] == "10.255.0.13"


def test_pybgpd_as_a_client_of_an_frr_reflector() -> None:
    with lab() as net:
        ours_ns, rr, other = net.namespace("rrp"), net.namespace("rrr"), net.namespace("rrc")
        (ours_addr, rr_addr1), (rr_addr2, other_addr) = net.link(ours_ns, rr), net.link(rr, other)
        reflector = net.frr(
            rr,
            "rr",
            "10.255.0.20",
            [Session(ours_addr, rr_addr1, ("ipv4",)), Session(other_addr, rr_addr2, ("ipv4",))],
            reflector_clients=(ours_addr, other_addr),
        )
        client = net.frr(
            other, "c", "10.255.0.21", [Session(rr_addr2, other_addr, ("ipv4",))], "10.21.0.0/24"
        )
        ours = net.pybgpd(ours_ns, [ibgp(rr_addr1)], [ours_addr], "10.31.0.0/24")
        wait_for(lambda: ours.state(rr_addr1) == ESTABLISHED, "pybgpd up with the reflector")
        rib = ours.wait_routes(["10.21.0.0/24"])
        learned = rib["10.21.0.0/24"]
        assert learned["originator_id"] == "10.255.0.21"
        assert learned["cluster_list"] == ["10.255.0.20"]  # FRR's cluster ID: its router ID
        assert learned["next_hop"] == other_addr
        path = wait_for(lambda: best_path(client, "10.31.0.0/24"), "pybgpd's route at the client")
        assert path["originatorId"] == PYBGPD_ID
        assert reflector.state(ours_addr) == ESTABLISHED
