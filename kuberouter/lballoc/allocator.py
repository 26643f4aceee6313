"""The LoadBalancer address allocator, pure half: which pool addresses each Service should hold.

Rules (upstream kube-router's allocator, and what it leaves to chance):
- Ours: type LoadBalancer with spec.loadBalancerClass "kube-router", or without a class
  (or "default") under --loadbalancer-default-class.
- One address per family of spec.ipFamilies that has a pool. RequireDualStack without
  pools of both families, or a family without a pool, gets nothing and a problem to report.
  An ingress address of that family from outside our pools (another implementation's)
  already satisfies the family, as upstream.
- spec.loadBalancerIP is honoured when it is in a pool and free (upstream ignores it).
- Never twice: an address is used while any Service has it in its status ingress or
  spec.externalIPs, or we wrote it and the watch has not shown it yet (`hold` seconds at
  most). Two Services with the same address keep it for, in order, the externalIP, then
  the first by namespace/name; the others give theirs up and get another.
- A Service that stops being a LoadBalancer gives back the pool addresses of its status,
  as does an ours that no longer wants a family. A deleted Service just stops holding.
  LoadBalancers of another class keep what they have (it counts as used).

Time arrives as an argument; the controller (kuberouter.controllers.loadbalancer) does
the reading and writing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from kuberouter.lballoc.pools import Pools, family_of
from kuberouter.model.service import IPFamily, Service

CLASS_NAME = "kube-router"  # upstream's spec.loadBalancerClass
UNREADABLE = "(unreadable)"  # the class of stand-ins for Services the model refuses


@attrs.frozen
class Plan:
    """What one Service should hold in our pools; a write is due when `changed`."""

    key: str
    keep: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    release: tuple[str, ...] = ()
    problem: str = ""  # why something wanted is not allocated ("": nothing missing)

    @property
    def changed(self) -> bool:
        return bool(self.add or self.release)

    @property
    def holds(self) -> tuple[str, ...]:
        return self.keep + self.add


def _int(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


def unreadable(raw: Mapping[str, Any]) -> Service | None:
    """A stand-in for a Service the model refuses: it keeps holding the addresses of its
    status and externalIPs (so none is handed out twice) and is never written to."""
    meta = _mapping(raw, "metadata")
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    entries = _list(_mapping(_mapping(raw, "status"), "loadBalancer"), "ingress")
    ingress = [entry.get("ip") for entry in entries if isinstance(entry, Mapping)]
    return Service(
        namespace=namespace, name=name, type="LoadBalancer", load_balancer_class=UNREADABLE,
        load_balancer_ips=_addresses(ingress),
        external_ips=_addresses(_list(_mapping(raw, "spec"), "externalIPs")),
    )  # fmt: skip


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def _addresses(values: Iterable[Any]) -> tuple[str, ...]:
    found = []
    for value in values:
        try:
            found.append(ipaddress.ip_address(value).compressed)
        except ValueError:  # not an address: holds nothing
            continue
    return tuple(dict.fromkeys(found))


class Allocator:
    def __init__(self, pools: Pools, *, default_class: bool = True, hold: float = 60.0) -> None:
        self.pools, self.default_class, self.hold = pools, default_class, hold
        self._services: dict[str, Service] = {}
        self._held: dict[str, tuple[tuple[str, ...], float]] = {}  # key -> (written, until)
        self._owners: dict[str, set[str]] = {}  # pool address -> keys holding it
        self._in_use: dict[IPFamily, int] = {"IPv4": 0, "IPv6": 0}  # len(_owners) per family
        self._cursor: dict[IPFamily, int] = {}

    # What the cluster holds.

    def reset(self, services: Iterable[Service]) -> None:
        """Start over from a fresh, complete list (what we wrote is in it)."""
        self._services.clear()
        self._held.clear()
        self._owners.clear()
        self._in_use = {"IPv4": 0, "IPv6": 0}
        for service in services:
            self.observe(service.key, service)

    def observe(self, key: str, service: Service | None) -> None:
        """The latest view of one Service (None: deleted)."""
        self._unindex(key)
        if service is None:
            self._services.pop(key, None)
            self._held.pop(key, None)
            return
        self._services[key] = service
        held = self._held.get(key)
        if held is not None and held[0] == self._pool_ingress(service):
            del self._held[key]  # the watch has caught up with our write
        self._index(key)

    def commit(self, plan: Plan, now: float) -> None:
        """`plan` was written: its addresses are held until the watch shows them."""
        self._unindex(plan.key)
        self._held[plan.key] = (plan.holds, now + self.hold)
        self._index(plan.key)
        for ip in plan.add:
            self._cursor[family_of(ip)] = _int(ip)

    def expire(self, now: float) -> None:
        for key in [k for k, (_, until) in self._held.items() if until <= now]:
            self._unindex(key)
            del self._held[key]
            self._index(key)

    def known(self) -> list[str]:
        return sorted(self._services)

    def service(self, key: str) -> Service | None:
        return self._services.get(key)

    def allocated(self, family: IPFamily) -> int:
        """Pool addresses of `family` in use."""
        return self._in_use[family]

    def is_ours(self, service: Service) -> bool:
        if service.type != "LoadBalancer":
            return False
        cls = service.load_balancer_class
        return cls == CLASS_NAME or (self.default_class and cls in ("", "default"))

    # Decisions.

    def plan(self, service: Service) -> Plan:
        """What `service` (possibly fresher than what was observed) should hold now."""
        current = self._pool_ingress(service)
        if not self.is_ours(service):
            if service.type == "LoadBalancer" or not current:
                return Plan(service.key, keep=current)
            return Plan(service.key, release=current)  # no longer a LoadBalancer
        families, problem = self._families(service)
        keep: dict[IPFamily, str] = {}
        release: list[str] = []
        requested = service.requested_load_balancer_ip
        for ip in current:
            family = family_of(ip)
            replaced = bool(requested) and family_of(requested) == family and ip != requested
            if family not in families or family in keep or replaced or self._loses(service, ip):
                release.append(ip)
            else:
                keep[family] = ip
        add, problems = self._allocate(service, families, keep, release)
        return Plan(
            service.key,
            keep=tuple(keep.values()),
            add=tuple(add),
            release=tuple(release),
            problem="; ".join(filter(None, [problem, *problems])),
        )

    def _allocate(
        self, service: Service, families: tuple[IPFamily, ...], keep: dict[IPFamily, str],
        release: list[str],
    ) -> tuple[list[str], list[str]]:  # fmt: skip
        """New addresses for the wanted families that have none, and why some could not."""
        satisfied = set(keep) | self._foreign_families(service)
        requested = service.requested_load_balancer_ip
        add: list[str] = []
        problems: list[str] = []
        if requested and family_of(requested) not in families:
            problems.append(f"spec.loadBalancerIP {requested} is not of the families it gets")
        for family in (f for f in families if f not in satisfied):
            if requested and family_of(requested) == family:
                problem = self._check_requested(service, requested)
                ip = None if problem else requested
            else:
                ip = self.pools.first_free(family, self._owners, self._cursor.get(family))
                problem = "" if ip else f"no free {family} address left in --loadbalancer-ip-range"
            if ip is None or ip in release:
                problems.append(problem)
            else:
                add.append(ip)
        if service.ip_family_policy == "RequireDualStack" and problems:
            return [], problems  # both or nothing, as upstream
        return add, problems

    def _check_requested(self, service: Service, ip: str) -> str:
        if not self.pools.contains(ip):
            return f"spec.loadBalancerIP {ip} is outside --loadbalancer-ip-range"
        others = self._owners.get(ip, set()) - {service.key}
        if others:
            return f"spec.loadBalancerIP {ip} is already used by {min(others)}"
        return ""

    def _families(self, service: Service) -> tuple[tuple[IPFamily, ...], str]:
        """The families to allocate, in the service's order, or () and why not."""
        wanted = service.ip_families or tuple(dict.fromkeys(map(family_of, service.cluster_ips)))
        wanted = wanted or self.pools.families()[:1]
        pooled = tuple(f for f in wanted if self.pools.has(f))
        if service.ip_family_policy == "RequireDualStack" and len(self.pools.families()) < 2:
            return (), "RequireDualStack needs IPv4 and IPv6 ranges in --loadbalancer-ip-range"
        if not pooled:
            return (), f"no {' or '.join(wanted) or 'IP'} range in --loadbalancer-ip-range"
        return pooled, ""

    def _loses(self, service: Service, ip: str) -> bool:
        """Another Service holds `ip` too and comes first (externalIP, then name)."""
        others = self._owners.get(ip, set()) - {service.key}
        mine = self._rank(service.key, service, ip)
        return any(self._rank(key, self._services.get(key), ip) < mine for key in others)

    @staticmethod
    def _rank(key: str, service: Service | None, ip: str) -> tuple[int, str]:
        return (0 if service is not None and ip in service.external_ips else 1), key

    # The index of who holds what.

    def _pool_ingress(self, service: Service) -> tuple[str, ...]:
        return tuple(ip for ip in service.load_balancer_ips if self.pools.contains(ip))

    def _foreign_families(self, service: Service) -> set[IPFamily]:
        return {family_of(ip) for ip in service.load_balancer_ips if not self.pools.contains(ip)}

    def _holding(self, key: str) -> set[str]:
        service = self._services.get(key)
        held = self._held.get(key)
        ingress = held[0] if held is not None else ()
        if service is None:
            return set(ingress)
        if held is None:
            ingress = self._pool_ingress(service)
        external = (ip for ip in service.external_ips if self.pools.contains(ip))
        return {*ingress, *external}

    def _index(self, key: str) -> None:
        for ip in self._holding(key):
            if ip not in self._owners:
                self._owners[ip] = set()
                self._in_use[family_of(ip)] += 1
            self._owners[ip].add(key)

    def _unindex(self, key: str) -> None:
        for ip in self._holding(key):
            owners = self._owners.get(ip)
            if owners is not None:
                owners.discard(key)
                if not owners:
                    del self._owners[ip]
                    self._in_use[family_of(ip)] -= 1
