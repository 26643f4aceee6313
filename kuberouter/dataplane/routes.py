"""The node's learned routes in the kernel: the routing table pybgp's Speaker writes through.

`RoutesBackend` is what the Speaker's FIB calls (from a worker thread, one call at a time):
`apply(changes)` with prefix -> next hops (none: gone), `reconcile(wanted)` to make our
routes exactly `wanted` (after a graceful restart, and on every --routes-sync-period to
repair drift: a route someone deleted comes back), `flush()` and `routes()`. How a path
becomes a route (via its next hop, through a tunnel, or not at all) is decided by
kuberouter.routing.kernel; this module only writes it.

Ownership: our routes carry protocol 17 (upstream kube-router's number, so `ip route show
proto 17` lists them as operators know) in the main table; our tunnels are named tun-*.
Nothing else in the kernel is read for writing or touched.

`KernelRoutes` does it with pyroute2 (FoU ports with `ip fou`, as pyroute2 has no call for
them); `FakeRoutes` keeps it in memory for controller tests.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from kuberouter.routing.kernel import KernelRoute, LocalNetwork, Tunnel, kernel_route, tunnels_of
from kuberouter.routing.settings import Overlay

log = logging.getLogger(__name__)

RTPROT_KUBE_ROUTER = 17
MAIN_TABLE = 254
TUNNEL_PREFIX = "tun-"


@attrs.define
class RouteCounts:
    added: int = 0
    removed: int = 0
    synced: int = 0  # reconciles (periodic repairs and after a restart)


class RoutesBackend:
    """The planning half, shared by the real and the fake back ends."""

    def __init__(self, local: Callable[[], LocalNetwork], overlay: Overlay | None) -> None:
        self._local_source, self.overlay = local, overlay
        self.local = LocalNetwork()
        self.wanted: dict[str, tuple[str, ...]] = {}  # prefix -> next hops, as the Speaker says
        self.counts = RouteCounts()

    # -- what the Speaker calls ---------------------------------------------------------
    def apply(self, changes: Mapping[str, Iterable[str]]) -> None:
        self.local = self._local_source()
        for prefix, hops in changes.items():
            hops = tuple(hops)
            if hops:
                self.wanted[prefix] = hops
            else:
                self.wanted.pop(prefix, None)
            self._set(prefix, self._route(prefix, hops))
        self._drop_unused_tunnels()

    def reconcile(self, wanted: Mapping[str, Iterable[str]]) -> None:
        """Our routes made exactly `wanted`: what differs is written, the rest untouched."""
        self.local = self._local_source()
        self.wanted = {prefix: tuple(hops) for prefix, hops in wanted.items()}
        desired = {p: r for p, h in self.wanted.items() if (r := self._route(p, h)) is not None}
        present = self.read_routes()
        for prefix in present.keys() - desired.keys():
            self._set(prefix, None)
        for tunnel in tunnels_of(desired.values()).values():
            self.ensure_tunnel(tunnel)
        for prefix, route in desired.items():
            if present.get(prefix) != route:
                self._set(prefix, route)
        self._drop_unused_tunnels()
        self.counts.synced += 1

    def flush(self) -> int:
        routes = self.read_routes()
        for prefix in routes:
            self._set(prefix, None)
        self.wanted.clear()
        self._drop_unused_tunnels()
        return len(routes)

    def routes(self) -> dict[str, list[str]]:
        return {p: list(r.gateways) or [r.tunnel.remote] for p, r in self.read_routes().items()
                if r.gateways or r.tunnel}  # fmt: skip

    # -- planning ------------------------------------------------------------------------
    def _route(self, prefix: str, hops: Iterable[str]) -> KernelRoute | None:
        return kernel_route(prefix, tuple(hops), self.local, self.overlay)

    def _set(self, prefix: str, route: KernelRoute | None) -> None:
        try:
            if route is None:
                if self.delete_route(prefix):
                    self.counts.removed += 1
                return
            if route.tunnel is not None:
                self.ensure_tunnel(route.tunnel)
            self.write_route(route)
            self.counts.added += 1
        except OSError as exc:  # the kernel refused one route: said, the others still go in
            log.warning("route %s: %s", prefix, exc)

    def _drop_unused_tunnels(self) -> None:
        used = set(tunnels_of(
            r for p, h in self.wanted.items() if (r := self._route(p, h)) is not None
        ))  # fmt: skip
        for name in self.read_tunnels() - used:
            self.delete_tunnel(name)

    # -- the kernel (overridden) ---------------------------------------------------------
    def read_routes(self) -> dict[str, KernelRoute]:
        raise NotImplementedError

    def read_tunnels(self) -> set[str]:
        raise NotImplementedError

    def write_route(self, route: KernelRoute) -> None:
        raise NotImplementedError

    def delete_route(self, prefix: str) -> bool:
        raise NotImplementedError

    def ensure_tunnel(self, tunnel: Tunnel) -> None:
        raise NotImplementedError

    def delete_tunnel(self, name: str) -> None:
        raise NotImplementedError


class FakeRoutes(RoutesBackend):
    """Routes and tunnels in dicts; `drop(prefix)` makes drift happen."""

    def __init__(self, local: LocalNetwork, overlay: Overlay | None = None) -> None:
        super().__init__(lambda: local, overlay)
        self.table: dict[str, KernelRoute] = {}
        self.tunnels: dict[str, Tunnel] = {}

    def read_routes(self) -> dict[str, KernelRoute]:
        return dict(self.table)

    def read_tunnels(self) -> set[str]:
        return set(self.tunnels)

    def write_route(self, route: KernelRoute) -> None:
        self.table[route.prefix] = route

    def delete_route(self, prefix: str) -> bool:
        return self.table.pop(prefix, None) is not None

    def ensure_tunnel(self, tunnel: Tunnel) -> None:
        self.tunnels[tunnel.name] = tunnel

    def delete_tunnel(self, name: str) -> None:
        self.tunnels.pop(name, None)

    def drop(self, prefix: str) -> None:
        del self.table[prefix]


class KernelRoutes(RoutesBackend):
    """The real kernel of this process's network namespace, through pyroute2."""

    def __init__(
        self, overlay: Overlay | None, node_addresses: Callable[[], Iterable[str]]
    ) -> None:
        from pyroute2 import IPRoute  # noqa: PLC0415 (only the real back end needs it)

        self._ipr: Any = IPRoute()
        self._addresses = node_addresses
        super().__init__(self.local_network, overlay)

    def close(self) -> None:
        self._ipr.close()

    def local_network(self) -> LocalNetwork:
        """The connected subnets of the node's addresses, and those addresses."""
        wanted = list(self._addresses())
        subnets = []
        for message in self._ipr.get_addr():
            address = message.get_attr("IFA_ADDRESS")
            if address in wanted:
                subnets.append(
                    ipaddress.ip_network(f"{address}/{message['prefixlen']}", strict=False)
                )
        return LocalNetwork(subnets=tuple(subnets), addresses=tuple(wanted))

    def read_routes(self) -> dict[str, KernelRoute]:
        found: dict[str, KernelRoute] = {}
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in self._ipr.get_links()}
        for family in (2, 10):
            for msg in self._ipr.get_routes(
                family=family, table=MAIN_TABLE, proto=RTPROT_KUBE_ROUTER
            ):
                dst = msg.get_attr("RTA_DST") or ("::" if family == 10 else "0.0.0.0")
                prefix = ipaddress.ip_network(f"{dst}/{msg['dst_len']}").compressed
                gateway = msg.get_attr("RTA_GATEWAY")
                hops = msg.get_attr("RTA_MULTIPATH") or []
                gateways = (
                    (gateway,)
                    if gateway
                    else tuple(sorted(h.get_attr("RTA_GATEWAY") for h in hops))
                )
                device = names.get(msg.get_attr("RTA_OIF"), "")
                tunnel = (
                    self._tunnel(device)
                    if not gateways and device.startswith(TUNNEL_PREFIX)
                    else None
                )
                found[prefix] = KernelRoute(
                    prefix,
                    gateways=gateways,
                    tunnel=tunnel,
                    source=msg.get_attr("RTA_PREFSRC") if tunnel else None,
                )
        return found

    def _tunnel(self, name: str) -> Tunnel | None:
        links = self._ipr.link_lookup(ifname=name)
        if not links:
            return None
        link = self._ipr.get_links(links[0])[0]
        data = link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        local = data.get_attr("IFLA_IPTUN_LOCAL") or data.get_attr("IFLA_IP6TNL_LOCAL")
        remote = data.get_attr("IFLA_IPTUN_REMOTE") or data.get_attr("IFLA_IP6TNL_REMOTE")
        encap_type = data.get_attr("IFLA_IPTUN_ENCAP_TYPE") or 0
        port = data.get_attr("IFLA_IPTUN_ENCAP_DPORT") or 0
        encap = "fou" if encap_type else "ipip"
        return Tunnel(name, local, remote, encap, port if encap == "fou" else 0)

    def read_tunnels(self) -> set[str]:
        return {
            name for link in self._ipr.get_links()
            if (name := link.get_attr("IFLA_IFNAME") or "").startswith(TUNNEL_PREFIX)
        }  # fmt: skip

    def write_route(self, route: KernelRoute) -> None:
        net = ipaddress.ip_network(route.prefix)
        args: dict[str, Any] = {
            "dst": route.prefix, "table": MAIN_TABLE, "proto": RTPROT_KUBE_ROUTER,
            "family": 10 if net.version == 6 else 2,
        }  # fmt: skip
        if route.tunnel is not None:
            args["oif"] = self._ipr.link_lookup(ifname=route.tunnel.name)[0]
            if route.source:
                args["prefsrc"] = route.source
        elif len(route.gateways) == 1:
            args["gateway"] = route.gateways[0]
        else:
            args["multipath"] = [{"gateway": hop} for hop in route.gateways]
        self._call(self._ipr.route, "replace", **args)

    def delete_route(self, prefix: str) -> bool:
        family = 10 if ":" in prefix else 2
        try:
            self._ipr.route(
                "del", dst=prefix, table=MAIN_TABLE, proto=RTPROT_KUBE_ROUTER, family=family
            )
        except Exception as exc:  # pyroute2's NetlinkError: gone already is fine
            if "No such process" in str(exc):
                return False
            raise OSError(str(exc)) from None
        return True

    def ensure_tunnel(self, tunnel: Tunnel) -> None:
        if tunnel.name in self.read_tunnels():
            if self._tunnel(tunnel.name) == tunnel:
                return
            self.delete_tunnel(tunnel.name)  # another encap or end: made again
        v6 = ":" in tunnel.remote
        if tunnel.encap == "fou":
            self._fou_port(tunnel.port, v6)
            self._ip(*(["-6"] if v6 else []), "link", "add", tunnel.name,
                     "type", "ip6tnl" if v6 else "ipip", "remote", tunnel.remote,
                     "local", tunnel.local, "ttl", "225", "encap", "gue",
                     "encap-sport", "auto", "encap-dport", str(tunnel.port),
                     *(["mode", "ipip6"] if v6 else []))  # fmt: skip
        else:
            kind = "ip6tnl" if v6 else "ipip"
            data = {"ip6tnl_local" if v6 else "ipip_local": tunnel.local,
                    "ip6tnl_remote" if v6 else "ipip_remote": tunnel.remote}  # fmt: skip
            self._call(self._ipr.link, "add", ifname=tunnel.name, kind=kind, **data)
        index = self._ipr.link_lookup(ifname=tunnel.name)[0]
        self._call(self._ipr.link, "set", index=index, state="up")
        log.info("tunnel %s to %s (%s) made", tunnel.name, tunnel.remote, tunnel.encap)

    def delete_tunnel(self, name: str) -> None:
        links = self._ipr.link_lookup(ifname=name)
        if links:
            self._call(self._ipr.link, "del", index=links[0])
            log.info("tunnel %s removed", name)

    def _fou_port(self, port: int, v6: bool) -> None:
        family = ["-6"] if v6 else []
        listed = self._ip(*family, "fou", "show", check=False)
        if f"port {port} " not in listed + " ":
            self._ip(*family, "fou", "add", "port", str(port), "gue")

    @staticmethod
    def _ip(*args: str, check: bool = True) -> str:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise OSError(f"ip {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    @staticmethod
    def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:  # pyroute2's NetlinkError and friends, as one OSError
            raise OSError(str(exc)) from None
