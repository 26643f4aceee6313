"""The packet-flow table through the IPVS service proxy, in a guest kernel (the host has no
IPVS): the same box, rows and checks as test_service_flows.py, each node programmed by the
IPVS back end (IPVS services via netlink, service IPs on kube-dummy-if, upstream's ipsets
and chains)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kuberouter.dataplane.services.ipvs import IpvsServices
from tests.kuberouter.dataplane.test_service_flows import ROWS, Observed, check_row, observe
from tests.kuberouter.proxy.flows import Row
from tests.support import require, require_root, require_tools

pytestmark = [pytest.mark.guest, pytest.mark.privileged]


@pytest.fixture(scope="module")
def observed_ipvs() -> Iterator[Observed]:
    require_root()
    require_tools("ip", "ipset", "iptables-nft-restore", "nft", "sysctl", "modprobe")
    for module in ("br_netfilter", "ip_vs"):
        require(netns_run("modprobe", module), f"kernel module {module}")
    with observe(IpvsServices, "ipvs", timeout=6.0) as found:  # an emulated CPU: slow
        yield found


def netns_run(*argv: str) -> bool:
    import subprocess

    return subprocess.run(list(argv), capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_real_packets_follow_the_packet_flow_table_with_ipvs(
    observed_ipvs: Observed, row: Row
) -> None:
    check_row(observed_ipvs, row)
