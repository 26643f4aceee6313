"""IPVS through netlink (pyroute2): read, add, change and delete services and their
destinations, in one network namespace. The only module that speaks IPVS' netlink."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
from pyroute2 import IPVS, IPVSDest, IPVSService  # type: ignore[import-untyped,attr-defined,unused-ignore]

from kuberouter.dataplane.commands import Runner
from kuberouter.proxy.ipvs_plan import Dest, IpvsService, Key

FLAGS = {"persistent": 0x0001, "flag-1": 0x0008, "flag-2": 0x0010, "flag-3": 0x0020}
_HASHED = 0x0002  # the kernel's own bookkeeping, never ours to set
MASQUERADE = 0  # IP_VS_CONN_F_MASQ: NAT
TUNNEL = 2  # IP_VS_CONN_F_TUNNEL: DSR over IPIP


@attrs.frozen(kw_only=True)
class Found:
    """A destination as the kernel holds it, with its connection counts."""

    dest: Dest
    active: int = 0
    inactive: int = 0
    tunnel: bool = False


def _family(number: int) -> int:
    return 6 if number == socket.AF_INET6 else 4


def _service(key: Key, wanted: IpvsService | None = None) -> Any:
    af = socket.AF_INET6 if key.family == 6 else socket.AF_INET
    if key.fwmark:
        fields: dict[str, Any] = {"fwmark": key.fwmark, "af": af}
    else:
        fields = {"addr": key.address, "af": af, "port": key.port, "protocol": key.protocol}
    if wanted is not None:
        flags = sum(FLAGS[name] for name in wanted.flags)
        fields |= {"sched_name": wanted.scheduler, "timeout": wanted.timeout,
                   "flags": {"flags": flags, "mask": 0xFFFF},
                   # The kernel wants a netmask: all ones, or for IPv6 the prefix length
                   # 128 as a host-order u32 (pyroute2 sends this field in network order).
                   "netmask": "128.0.0.0" if key.family == 6 else "255.255.255.255"}  # fmt: skip
    return IPVSService(**fields)


def _dest(dest: Dest, tunnel: bool = False) -> Any:
    method = TUNNEL if tunnel else MASQUERADE
    return IPVSDest(addr=dest.ip, port=dest.port, weight=dest.weight, fwd_method=method)


class IpvsKernel:
    def __init__(self, netns: str | None = None, runner: Runner | None = None) -> None:
        self.netns = netns
        self.runner = runner or Runner(netns)
        self.requests = 0

    @contextlib.contextmanager
    def _socket(self) -> Iterator[Any]:
        ipvs = IPVS(netns=self.netns) if self.netns else IPVS()
        try:
            yield ipvs
        finally:
            ipvs.close()

    def restore(self, services: Iterable[IpvsService]) -> None:
        """Add many services and their destinations at once, with `ipvsadm --restore`
        (one process instead of a netlink round trip per object: a full sync's floor)."""
        lines = []
        for service in services:
            where = _ipvsadm_service(service.key)
            flags = f" -p {service.timeout}" if "persistent" in service.flags else ""
            lines.append(f"-A {where} -s {service.scheduler}{flags}")
            lines += [
                f"-a {where} -r {_host_port(d.ip, d.port)} -m -w {d.weight}" for d in service.dests
            ]
        if lines:
            self.runner.run("ipvsadm", "--restore", input="\n".join(lines) + "\n")
            self.requests += 1

    def services(self) -> dict[Key, IpvsService]:
        """Every IPVS service of the namespace, with its destinations."""
        found: dict[Key, IpvsService] = {}
        with self._socket() as ipvs:
            self.requests += 1
            for message in ipvs.service("dump"):
                raw = IPVSService.from_message(message)
                key = _key(raw)
                dests = tuple(found_dest.dest for found_dest in self._dests(ipvs, key))
                found[key] = IpvsService(
                    key=key,
                    scheduler=str(raw.get("IPVS_SVC_ATTR_SCHED_NAME", "")),
                    flags=_flag_names(raw.get("IPVS_SVC_ATTR_FLAGS")),
                    timeout=int(raw.get("IPVS_SVC_ATTR_TIMEOUT", 0) or 0),
                    dests=dests,
                )
        return found

    def counters(self) -> dict[Key, dict[str, int]]:
        """Every IPVS service's counters (the kernel's IPVS_STATS_ATTR_*, lower case:
        conns, inpkts, outpkts, inbytes, outbytes, cps, inpps, outpps, inbps, outbps)."""
        found: dict[Key, dict[str, int]] = {}
        with self._socket() as ipvs:
            self.requests += 1
            for message in ipvs.service("dump"):
                attrs_ = message.get_attr("IPVS_CMD_ATTR_SERVICE")
                stats = attrs_.get_attr("IPVS_SVC_ATTR_STATS64") or attrs_.get_attr(
                    "IPVS_SVC_ATTR_STATS"
                )
                if stats is None:
                    continue
                found[_key(IPVSService.from_message(message))] = {
                    name.removeprefix("IPVS_STATS_ATTR_").lower(): int(value)
                    for name, value in stats["attrs"]
                    if name != "IPVS_STATS_ATTR_UNSPEC"
                }
        return found

    def destinations(self, key: Key) -> list[Found]:
        with self._socket() as ipvs:
            return list(self._dests(ipvs, key))

    def _dests(self, ipvs: Any, key: Key) -> Iterator[Found]:
        self.requests += 1
        for message in ipvs.dest("dump", service=_service(key)):
            raw = IPVSDest.from_message(message)
            yield Found(
                dest=Dest(str(raw["addr"]), int(raw["port"]), int(raw.get("weight", 1))),
                active=int(raw.get("IPVS_DEST_ATTR_ACTIVE_CONNS", 0) or 0),
                inactive=int(raw.get("IPVS_DEST_ATTR_INACT_CONNS", 0) or 0),
                tunnel=int(raw.get("IPVS_DEST_ATTR_FWD_METHOD", 0) or 0) & 0x7 == TUNNEL,
            )

    def add(self, wanted: IpvsService, tunnel: bool = False) -> None:
        with self._socket() as ipvs:
            ipvs.service("add", service=_service(wanted.key, wanted))
            for dest in wanted.dests:
                ipvs.dest("add", service=_service(wanted.key), dest=_dest(dest, tunnel))
        self.requests += 1 + len(wanted.dests)

    def change(self, wanted: IpvsService) -> None:
        with self._socket() as ipvs:
            ipvs.service("set", service=_service(wanted.key, wanted))
        self.requests += 1

    def delete(self, key: Key) -> None:
        with self._socket() as ipvs:
            ipvs.service("del", service=_service(key))
        self.requests += 1

    def add_dest(self, key: Key, dest: Dest, tunnel: bool = False) -> None:
        with self._socket() as ipvs:
            ipvs.dest("add", service=_service(key), dest=_dest(dest, tunnel))
        self.requests += 1

    def set_dest(self, key: Key, dest: Dest, tunnel: bool = False) -> None:
        with self._socket() as ipvs:
            ipvs.dest("set", service=_service(key), dest=_dest(dest, tunnel))
        self.requests += 1

    def delete_dest(self, key: Key, dest: Dest) -> None:
        with self._socket() as ipvs:
            ipvs.dest("del", service=_service(key), dest=_dest(dest))
        self.requests += 1


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _ipvsadm_service(key: Key) -> str:
    if key.fwmark:
        return f"-f {key.fwmark}" + (" -6" if key.family == 6 else "")
    flag = {socket.IPPROTO_TCP: "-t", socket.IPPROTO_UDP: "-u"}.get(key.protocol, "--sctp-service")
    return f"{flag} {_host_port(key.address, key.port)}"


def _key(raw: Any) -> Key:
    family = _family(int(raw.get("af", socket.AF_INET)))
    mark = int(raw.get("fwmark", 0) or 0)
    if mark:
        return Key(family, 0, "", 0, mark)
    return Key(family, int(raw["protocol"]), str(raw["addr"]), int(raw["port"]))


def _flag_names(value: Any) -> tuple[str, ...]:
    """The kernel's IPVS_SVC_ATTR_FLAGS as our names (pyroute2's own "flags" field is
    its default for requests, not what the kernel said)."""
    bits = int(value.get("flags", 0) if isinstance(value, dict) else value or 0) & ~_HASHED
    names = tuple(name for name, bit in FLAGS.items() if bits & bit and name != "persistent")
    return names + (("persistent",) if bits & FLAGS["persistent"] else ())
