"""The cluster in a box in a guest kernel (it has ipip): pods on nodes in two subnets reach
each other through the tunnels the agents make (--enable-overlay and --overlay-type=subnet,
upstream's defaults).

`kube-router-ctl cluster up --subnets 2 --no-static-routes`: node1 on 10.240.0.0/24, node2
on 10.240.1.0/24. The ToR routes between the two subnets only (its bgpd installs nothing),
so a pod's packet can cross it only inside a tunnel between the nodes: each agent learns
the other node's pod CIDR over BGP with a next hop on another subnet, and routes it
through tun-<hash of that address>, an IPIP link to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kuberouter.cluster import bgp
from tests.kuberouter.cluster.bgp import ok, pod, pod_cidr, pod_ip
from tests.kuberouter.cluster.conftest import new_box, torn_down

pytestmark = [pytest.mark.guest, pytest.mark.privileged, pytest.mark.slow]

ADDRESSES = {1: "10.240.0.11", 2: "10.240.1.12"}  # one node on each subnet


def test_pods_on_two_subnets_reach_each_other_through_the_agents_ipip_tunnels(
    tmp_path: Path,
) -> None:
    box = new_box(tmp_path, prefix="bo")
    with torn_down(box):
        ok(box.ctl("up", "--nodes", "2", "--pods-per-node", "1", "--no-static-routes",
                   "--subnets", "2", "--timeout", "600", timeout=900))  # fmt: skip
        tor = bgp.tor(box, "show bgp ipv4 unicast json")["routes"]
        assert set(tor) == {pod_cidr(1), pod_cidr(2)}
        unrouted = box.exec_in(f"{box.name}-tor", "ip", "route", "get", pod_ip(2))
        assert unrouted.returncode != 0, "the ToR must not route pod addresses itself"
        for here, there in ((1, 2), (2, 1)):
            node = bgp.node(box, here)
            [route] = [r for r in bgp.routes(box, here) if r.get("protocol") == "17"]
            assert route["dst"] == pod_cidr(there) and route["dev"].startswith("tun-"), route
            [link] = json.loads(
                ok(box.exec_in(node, "ip", "-d", "-j", "link", "show", route["dev"]))
            )
            info = link["linkinfo"]["info_data"]
            assert link["linkinfo"]["info_kind"] == "ipip", link
            assert (info["local"], info["remote"]) == (ADDRESSES[here], ADDRESSES[there]), link
        assert bgp.unreachable_pairs(box, (1, 2)) == []
        # the pings crossed the tunnels: each one counted the packets it carried
        for here in (1, 2):
            [route] = [r for r in bgp.routes(box, here) if r.get("protocol") == "17"]
            stats = ok(
                box.exec_in(bgp.node(box, here), "ip", "-s", "-j", "link", "show", route["dev"])
            )
            counted = json.loads(stats)[0]["stats64"]
            assert counted["tx"]["packets"] > 0 and counted["rx"]["packets"] > 0, counted
        print(f"box in the guest: pods {pod(box, 1)} and {pod(box, 2)} reach each other over IPIP")
