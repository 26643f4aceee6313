"""kube-bridge in the kernel, through `ip` (run by the Runner, so in the node's namespace).

- `ensure(spec)`: the bridge exists, is up, has the spec's MTU and exactly its gateway
  addresses (other global addresses on kube-bridge are stale gateways of a pod CIDR the
  node no longer has: their connected routes would pull that CIDR's traffic here);
  returns what it changed. The bridge is never deleted: pods hang off it.
- `set_hairpin(name)`: hairpin mode on every port of the bridge that lacks it, so a pod
  reaches itself through a service address. New pods' ports get it from the CNI bridge
  plugin (hairpinMode in the conflist); this covers ports made otherwise or before.
- `node_mtu(address)`: the MTU of the interface holding `address` (--auto-mtu).
- `link_events(netns)`: a socket that wakes on every link change (a port that appears).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any, Protocol

from kuberouter.cluster.netns import call_in
from kuberouter.dataplane.commands import CommandError, Runner
from kuberouter.podnet.bridge import BridgeSpec

_RTMGRP_LINK = 1  # netlink multicast group of link changes (rtnetlink.h)


class BridgeError(RuntimeError):
    """kube-bridge could not be made as wanted (e.g. a non-bridge link holds the name)."""


class BridgeBackend(Protocol):
    def ensure(self, spec: BridgeSpec) -> tuple[str, ...]:
        """Make the bridge match `spec`; what was changed, for the log."""
        ...

    def set_hairpin(self, name: str) -> int:
        """Hairpin mode on every port of bridge `name`; how many ports were changed."""
        ...

    def node_mtu(self, address: str) -> int | None:
        """The MTU of the interface holding `address`; None if no interface has it."""
        ...


class IpBridge:
    def __init__(self, runner: Runner | None = None) -> None:
        self.runner = runner or Runner()

    def ensure(self, spec: BridgeSpec) -> tuple[str, ...]:
        link = self._link(spec.name)
        if link is not None and link.get("linkinfo", {}).get("info_kind") != "bridge":
            raise BridgeError(f"{spec.name} exists and is not a bridge")
        commands = [] if link is not None else [f"link add {spec.name} type bridge"]
        link = link or {}
        if spec.mtu is not None and link.get("mtu") != spec.mtu:
            commands.append(f"link set {spec.name} mtu {spec.mtu}")
        have = _global_addresses(self._addresses(spec.name)) if link else set()
        wanted = {_normal(address): address for address in spec.addresses}
        for normal, address in wanted.items():
            if normal not in have:
                nodad = " nodad" if ":" in address else ""
                commands.append(f"addr add {address} dev {spec.name}{nodad}")
        commands += [f"addr del {a} dev {spec.name}" for a in sorted(have - set(wanted))]
        if "UP" not in link.get("flags", []):
            commands.append(f"link set {spec.name} up")
        if commands:
            self._batch(commands)
        return tuple(commands)

    def set_hairpin(self, name: str) -> int:
        shown = self.runner.run("ip", "-j", "-d", "link", "show", "master", name, check=False)
        if shown.returncode != 0:  # no such bridge (yet): no ports either
            return 0
        ports = [
            port["ifname"]
            for port in _json(shown.stdout)
            if not port.get("linkinfo", {}).get("info_slave_data", {}).get("hairpin", False)
        ]
        if ports:
            self._batch([f"link set dev {port} type bridge_slave hairpin on" for port in ports])
        return len(ports)

    def node_mtu(self, address: str) -> int | None:
        wanted = ipaddress.ip_address(address)
        for link in _json(self.runner.run("ip", "-j", "addr", "show").stdout):
            for info in link.get("addr_info", []):
                if ipaddress.ip_address(info.get("local", "0.0.0.0")) == wanted:
                    return int(link["mtu"])
        return None

    def _link(self, name: str) -> dict[str, Any] | None:
        shown = self.runner.run("ip", "-j", "-d", "link", "show", "dev", name, check=False)
        if shown.returncode != 0:
            if "does not exist" in shown.stderr:
                return None
            raise CommandError(shown.argv, shown.returncode, shown.stderr, None)
        links = _json(shown.stdout)
        return links[0] if links else None

    def _addresses(self, name: str) -> list[dict[str, Any]]:
        links = _json(self.runner.run("ip", "-j", "addr", "show", "dev", name).stdout)
        return list(links[0].get("addr_info", [])) if links else []

    def _batch(self, commands: list[str]) -> None:
        self.runner.run("ip", "-batch", "-", input="".join(f"{c}\n" for c in commands))


def _json(text: str) -> list[dict[str, Any]]:
    return list(json.loads(text or "[]"))


def _global_addresses(infos: list[dict[str, Any]]) -> set[str]:
    return {
        _normal(f"{info['local']}/{info['prefixlen']}")
        for info in infos
        if info.get("scope") == "global" and "local" in info
    }


def _normal(address: str) -> str:
    return ipaddress.ip_interface(address).with_prefixlen


def link_events(netns: str | None = None) -> socket.socket:
    """A non-blocking netlink socket that receives every link change of `netns` (None:
    ours). A socket stays in the namespace it was made in: made on a thread that joined
    `netns`, so the calling thread never leaves its own."""
    if netns is not None:
        return call_in(netns, link_events)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.bind((0, _RTMGRP_LINK))
    sock.setblocking(False)
    return sock
