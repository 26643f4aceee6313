"""`pybgpd --fib`: best paths as kernel routes (protocol bgp), ECMP as multipath routes.

An adapter around pyroute2 (blocking; the daemon calls it from a worker thread). pyroute2 is
an optional dependency: `pip install pybgp[fib]`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

RTPROT_BGP = 186  # "bgp" in /etc/iproute2/rt_protos: what `ip route show proto bgp` lists
MAIN_TABLE = 254


class FibError(Exception):
    """The kernel refused a route (for example a next hop it cannot reach)."""


class Fib:
    """Routes we own in one kernel routing table: added, replaced, removed, flushed."""

    def __init__(self, table: int = MAIN_TABLE, netns: str | None = None) -> None:
        try:
            from pyroute2 import IPRoute, NetNS  # type: ignore[import-untyped]  # noqa: PLC0415 (optional dependency)
        except ImportError:
            raise FibError("--fib needs pyroute2: pip install 'pybgp[fib]'") from None
        self.table = table
        self._ipr: Any = NetNS(netns) if netns else IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def replace(self, prefix: str, next_hops: Iterable[str]) -> None:
        """Install `prefix` via one or more next hops (ECMP), replacing what was there."""
        hops = sorted(set(next_hops))
        if not hops:
            self.delete(prefix)
            return
        net = ipaddress.ip_network(prefix)
        args: dict[str, Any] = {
            "dst": str(net),
            "table": self.table,
            "proto": RTPROT_BGP,
            "family": 10 if net.version == 6 else 2,
        }
        if len(hops) == 1:
            args["gateway"] = hops[0]
        else:
            args["multipath"] = [{"gateway": hop} for hop in hops]
        try:
            self._ipr.route("replace", **args)
        except Exception as exc:  # pyroute2 raises NetlinkError; keep the daemon running
            raise FibError(f"cannot install {prefix} via {', '.join(hops)}: {exc}") from None

    def delete(self, prefix: str) -> None:
        net = ipaddress.ip_network(prefix)
        family = 10 if net.version == 6 else 2
        try:
            self._ipr.route("del", dst=str(net), table=self.table, proto=RTPROT_BGP, family=family)
        except Exception as exc:
            if "No such process" not in str(exc):  # already gone is fine
                raise FibError(f"cannot remove {prefix}: {exc}") from None

    def apply(self, changes: Mapping[str, Iterable[str]]) -> None:
        """prefix -> next hops (none: remove); a route the kernel refuses is logged and the
        others still go in."""
        for prefix, hops in changes.items():
            try:
                self.replace(prefix, hops)
            except FibError as exc:
                log.warning("fib: %s", exc)

    def reconcile(self, wanted: Mapping[str, Iterable[str]]) -> None:
        """Our routes in the table made exactly `wanted` (after a graceful restart, routes
        gone meanwhile are removed)."""
        stale = {prefix: () for prefix in self.routes() if prefix not in wanted}
        self.apply({**stale, **wanted})
        if stale:
            log.info("removed %d kernel routes gone while we restarted", len(stale))

    def routes(self) -> dict[str, list[str]]:
        """prefix -> next hops of the routes we own in our table."""
        out: dict[str, list[str]] = {}
        for family in (2, 10):
            for route in self._ipr.get_routes(family=family, table=self.table, proto=RTPROT_BGP):
                dst = route.get_attr("RTA_DST") or ("::" if family == 10 else "0.0.0.0")
                prefix = f"{dst}/{route['dst_len']}"
                gateway = route.get_attr("RTA_GATEWAY")
                if gateway:
                    out[prefix] = [gateway]
                else:
                    hops = route.get_attr("RTA_MULTIPATH") or []
                    out[prefix] = sorted(h.get_attr("RTA_GATEWAY") for h in hops)
        return out

    def flush(self) -> int:
        """Remove every route we own in our table (clean shutdown); how many were removed."""
        owned = self.routes()
        for prefix in owned:
            self.delete(prefix)
        return len(owned)
