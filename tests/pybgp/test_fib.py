"""--fib: routes in a real kernel table of a network namespace, as `ip route` shows them."""

from __future__ import annotations

import pytest

from pybgp.fib import Fib, FibError
from tests.netns import netns, run, veth_pair
from tests.support import require_root, require_tools

pytestmark = pytest.mark.privileged


def ip_routes(ns: str, family: str = "-4") -> str:
    return run("ip", family, "route", "show", "proto", "bgp", netns=ns).stdout


def test_routes_appear_change_and_leave_the_kernel() -> None:
    require_root()
    require_tools("ip")
    with netns("fib") as a, netns("fibp") as b, veth_pair(a, "10.9.0.1/24", b, "10.9.0.2/24"):
        run(
            "ip", "-n", a, "addr", "add", "10.9.0.3/24", "dev", "lo"
        )  # a second local gateway-able addr
        run("ip", "-n", a, "-6", "addr", "add", "2001:db8:9::1/64", "dev", "lo")
        fib = Fib(netns=a)
        try:
            fib.replace("192.0.2.0/24", ["10.9.0.2"])
            assert "192.0.2.0/24 via 10.9.0.2" in ip_routes(a)
            fib.replace("198.51.100.0/24", ["10.9.0.2", "10.9.0.4"])  # ECMP
            shown = ip_routes(a)
            assert "198.51.100.0/24" in shown and "nexthop via 10.9.0.2" in shown
            assert "nexthop via 10.9.0.4" in shown
            assert fib.routes() == {
                "192.0.2.0/24": ["10.9.0.2"],
                "198.51.100.0/24": ["10.9.0.2", "10.9.0.4"],
            }
            fib.delete("192.0.2.0/24")
            assert "192.0.2.0/24" not in ip_routes(a)
            with pytest.raises(FibError, match=r"cannot install 203\.0\.113\.0/24"):
                fib.replace("203.0.113.0/24", ["172.16.99.1"])  # not reachable
            run("ip", "-n", a, "route", "add", "10.99.0.0/16", "via", "10.9.0.2")  # not ours
            assert fib.flush() == 1
            assert ip_routes(a) == ""
            assert "10.99.0.0/16" in run("ip", "route", netns=a).stdout  # other routes stay
        finally:
            fib.close()
