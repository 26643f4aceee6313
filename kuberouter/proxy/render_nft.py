"""The compiled proxy as nftables objects: tables `ip kube-router-proxy-ipv4` and
`ip6 kube-router-proxy-ipv6` (a pure function of the compiled state).

Layout (kube-proxy's nftables design, reshaped so that a Service costs map elements,
not chains, which keeps `nft -f` fast at 10,000 Services):

- nat prerouting/output jump to `services`: one lookup of (daddr, protocol, port) in the
  verdict map `service-ips`, and of (protocol, port) in `service-nodeports` for the
  node's NodePort addresses, each going to a *front* chain.
- Front chains are shared by every frontend of the same shape: `internal-<pick>` marks
  for masquerade traffic from outside the pod network; `external-<pick>` always
  masquerades; `external-local-<local pick>-<cluster pick>` sends pod traffic and the
  node's own traffic (masqueraded) to the cluster endpoints and the rest to the local ones.
- Pick chains choose the endpoint: `pick-<list>-<n>` DNATs through its endpoint map
  `<list>-<n>`, keyed by the packet's own (daddr, protocol, port) and `numgen random mod
  n`, so one chain and one map serve every Service with n endpoints (a map bound from one
  chain is also what keeps the kernel's bind check cheap). A Service with session
  affinity has its own pick chains instead: one timed set per endpoint remembers its clients
  (`update @set { saddr }`), and a cascade of `numgen random mod k == 0` rules (k = n,
  n-1, ..., 1) picks uniformly among the endpoints for new clients.
- filter chains (priority -90, dstnat+10: after DNAT) look up the frontends with no endpoint
  to go to in `no-endpoint-services` / `no-endpoint-nodeports`: reject or drop;
  `firewall-check` (priority -110, before DNAT) drops sources outside a
  LoadBalancer's loadBalancerSourceRanges.
- nat postrouting masquerades marked connections (mark 0x4000, as kube-proxy) and
  hairpin connections (set `hairpin`: an endpoint reaching itself).

`Contribution`s are keyed values (map elements, chains, timed sets), so the back end
diffs two of them to program only what a change touched.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping

import attrs

from kuberouter.netpol.ruleset import Family
from kuberouter.proxy.state import Backend, Frontend, ProxyState, VirtualService

MASQUERADE_MARK = 0x4000


def table_name(family: int) -> str:
    return f"kube-router-proxy-ipv{family}"


def table(family: int) -> str:
    return f"{'ip' if family == 4 else 'ip6'} {table_name(family)}"


@attrs.frozen(kw_only=True)
class Chain:
    rules: tuple[str, ...] = ()
    header: str = ""  # "type nat hook prerouting priority dstnat; policy accept;" for base chains


@attrs.frozen(kw_only=True)
class Flavour:
    """The settings every shared chain of one family depends on."""

    family: Family
    masquerade_all: bool = False
    pod_network: bool = False  # pod CIDRs are known: masquerade what comes from outside
    bindon_all: bool = False  # NodePorts on every local address

    @property
    def ip(self) -> str:
        return "ip" if self.family == 4 else "ip6"

    @property
    def addr_type(self) -> str:
        return "ipv4_addr" if self.family == 4 else "ipv6_addr"

    @property
    def nodeport_match(self) -> str:
        if self.bindon_all:
            loopback = "127.0.0.0/8" if self.family == 4 else "::1"
            return f"fib daddr type local {self.ip} daddr != {loopback}"
        return f"{self.ip} daddr @nodeport-ips"


def flavour(state: ProxyState, family: Family) -> Flavour:
    return Flavour(
        family=family,
        masquerade_all=state.config.masquerade_all,
        pod_network=bool(state.node.pod_cidrs_of(family)),
        bindon_all=state.config.nodeport_bindon_all_ip,
    )


# --- what never changes with the Services --------------------------------------------------


def declarations(family: Family) -> dict[str, str]:
    """Set and map name -> its declaration, for the sets every table has."""
    addr = "ipv4_addr" if family == 4 else "ipv6_addr"
    vip = f"{addr} . inet_proto . inet_service"
    return {
        "service-ips": f"map {{ type {vip} : verdict; }}",
        "service-nodeports": "map { type inet_proto . inet_service : verdict; }",
        "no-endpoint-services": f"map {{ type {vip} : verdict; }}",
        "no-endpoint-nodeports": "map { type inet_proto . inet_service : verdict; }",
        "firewall-ips": f"set {{ type {vip}; }}",
        "firewall-allow": f"set {{ type {vip} . {addr}; flags interval; }}",
        "pod-cidrs": f"set {{ type {addr}; flags interval; }}",
        "nodeport-ips": f"set {{ type {addr}; }}",
        "hairpin": f"set {{ type {addr} . {addr} . inet_proto . inet_service . {addr}; }}",
        "hairpin-nodeports": f"set {{ type {addr} . {addr} . inet_proto . inet_service; }}",
    }


def pick_map(family: Family, node_port: bool) -> str:
    """An endpoint map: (daddr, protocol, port, draw) or (protocol, port, draw) -> endpoint.

    Each pick chain has its own map, made in the same transaction: nft 1.0.6 cannot add
    a rule using a map like this one once the map exists (it misreads the declared data)."""
    ip = "ip" if family == 4 else "ip6"
    key = "meta l4proto . th dport" if node_port else f"{ip} daddr . meta l4proto . th dport"
    return f"map {{ typeof {key} . numgen random mod 1 : {ip} daddr . th dport; }}"


def base_chains(flavour: Flavour) -> dict[str, Chain]:
    ip, mark = flavour.ip, f"{MASQUERADE_MARK:#x}"
    vip_key = f"{ip} daddr . meta l4proto . th dport"
    pair = f"{ip} saddr . {ip} daddr . meta l4proto . th dport"  # an endpoint to itself

    def hook(kind: str, where: str, priority: str, *rules: str) -> Chain:
        header = f"type {kind} hook {where} priority {priority}; policy accept;"
        return Chain(header=header, rules=rules)

    return {
        "filter-prerouting": hook(
            "filter", "prerouting", "-110", "ct state new jump firewall-check"
        ),
        "filter-output": hook("filter", "output", "-110", "ct state new jump firewall-check"),
        "filter-input": hook("filter", "input", "-90", "ct state new jump endpoints-check"),
        "filter-forward": hook("filter", "forward", "-90", "ct state new jump endpoints-check"),
        "filter-output-post-dnat": hook(
            "filter", "output", "-90", "ct state new jump endpoints-check"
        ),
        "nat-prerouting": hook("nat", "prerouting", "-100", "jump services"),
        "nat-output": hook("nat", "output", "-100", "jump services"),
        "nat-postrouting": hook("nat", "postrouting", "100", "jump masquerading"),
        "firewall-check": Chain(
            rules=(f"{vip_key} @firewall-ips {vip_key} . {ip} saddr != @firewall-allow drop",)
        ),
        "endpoints-check": Chain(
            rules=(
                f"{vip_key} vmap @no-endpoint-services",
                f"{flavour.nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports",
            )
        ),
        "services": Chain(
            rules=(
                f"{vip_key} vmap @service-ips",
                f"{flavour.nodeport_match} meta l4proto . th dport vmap @service-nodeports",
            )
        ),
        "mark-for-masquerade": Chain(rules=(f"meta mark set meta mark | {mark}",)),
        "masquerading": Chain(
            rules=(
                f"{pair} . ct original {ip} daddr @hairpin masquerade fully-random",
                f"{pair} @hairpin-nodeports masquerade fully-random",
                f"meta mark & {mark} == 0 return",
                f"meta mark set meta mark ^ {mark}",
                "masquerade fully-random",
            )
        ),
        "reject-chain": Chain(rules=("reject",)),
    }


def node_elements(state: ProxyState, family: Family) -> dict[str, dict[str, str]]:
    """pod-cidrs (the cluster's pod network) and nodeport-ips (this node's addresses)."""
    networks = [ipaddress.ip_network(cidr) for cidr in state.node.pod_cidrs_of(family)]
    collapsed = ipaddress.collapse_addresses(networks)  # type: ignore[type-var]
    nodeport = () if state.config.nodeport_bindon_all_ip else state.node.addresses_of(family)
    return {
        "pod-cidrs": {interval(str(network)): "" for network in collapsed},
        "nodeport-ips": dict.fromkeys(nodeport, ""),
    }


def interval(cidr: str) -> str:
    """A network as nft lists it in an interval set: a host prefix is just the address."""
    network = ipaddress.ip_network(cidr)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return network.compressed


# --- what one Service port contributes -------------------------------------------------------


@attrs.frozen(kw_only=True)
class Contribution:
    elements: Mapping[str, Mapping[str, str]]  # set or map name -> element key -> value
    chains: Mapping[str, Chain]  # the front and pick chains it goes through
    sets: Mapping[str, str] = attrs.field(factory=dict)  # the pick maps and affinity sets


def short_hash(text: str, size: int = 8) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode()[:size].lower()


class _Builder:
    def __init__(self, service: VirtualService, flavour: Flavour) -> None:
        self.service, self.flavour = service, flavour
        self.elements: dict[str, dict[str, str]] = {}
        self.chains: dict[str, Chain] = {}
        self.sets: dict[str, str] = {}
        self.proto = service.protocol.lower()

    def add(self, name: str, key: str, value: str = "") -> None:
        self.elements.setdefault(name, {})[key] = value

    def build(self) -> Contribution:
        for frontend in self.service.frontends:
            self.frontend(frontend)
        return Contribution(elements=self.elements, chains=self.chains, sets=self.sets)

    def frontend(self, frontend: Frontend) -> None:
        service = self.service
        node_port = frontend.address is None
        key = (
            f"{self.proto} . {frontend.port}"
            if node_port
            else f"{frontend.address} . {self.proto} . {frontend.port}"
        )
        verdict = service.empty_verdict(frontend)
        if verdict is not None:
            target = "goto reject-chain" if verdict == "reject" else "drop"
            self.add("no-endpoint-nodeports" if node_port else "no-endpoint-services", key, target)
        if frontend.kind == "LoadBalancer" and service.source_ranges:
            self.firewall(frontend, key)
        if service.has_endpoints and (verdict is None or frontend.external):
            self.add(
                "service-nodeports" if node_port else "service-ips",
                key,
                f"goto {self.front(frontend, key)}",
            )
        if service.hairpins(frontend):
            self.hairpin(frontend)

    def firewall(self, frontend: Frontend, key: str) -> None:
        self.add("firewall-ips", key)
        for cidr in self.service.source_ranges:
            self.add("firewall-allow", f"{key} . {interval(cidr)}")

    def hairpin(self, frontend: Frontend) -> None:
        for backend in self.service.backends_for(frontend):
            pair = f"{backend.ip} . {backend.ip} . {self.proto} . {backend.port}"
            if frontend.address is None:
                self.add("hairpin-nodeports", pair)
            else:
                self.add("hairpin", f"{pair} . {frontend.address}")

    def front(self, frontend: Frontend, key: str) -> str:
        """The front chain this frontend goes to (made if new)."""
        service, first = self.service, "jump mark-for-masquerade"
        always = (first,) if self.flavour.masquerade_all else ()
        if not frontend.external:
            pick = self.pick(frontend, key, "local" if service.internal_local else "cluster")
            masq = always or (
                (f"{self.flavour.ip} saddr != @pod-cidrs {first}",)
                if self.flavour.pod_network
                else ()
            )
            return self.chain(f"internal-{pick}", (*masq, f"goto {pick}"))
        cluster = self.pick(frontend, key, "cluster")
        if not service.external_local:
            return self.chain(f"external-{cluster}", (first, f"goto {cluster}"))
        local = self.pick(frontend, key, "local") if service.local_backends else "none"
        rules = [
            *always,
            f"{self.flavour.ip} saddr @pod-cidrs goto {cluster}",
            f"fib saddr type local {first}",
            f"fib saddr type local goto {cluster}",
        ]
        if local != "none":
            rules.append(f"goto {local}")
        return self.chain(f"external-local-{local}-{cluster}", tuple(rules))

    def pick(self, frontend: Frontend, key: str, use: str) -> str:
        """The pick chain for one endpoint list, with this frontend's map elements."""
        backends = self.service.local_backends if use == "local" else self.service.cluster_backends
        if self.service.affinity_timeout is not None:
            return self.affinity_pick(use, backends)
        node_port = frontend.address is None
        name = f"{'nodeport-' if node_port else ''}{use}-{len(backends)}"
        self.sets[name] = pick_map(self.flavour.family, node_port)
        for index, backend in enumerate(backends):
            self.add(name, f"{key} . {index}", f"{backend.ip} . {backend.port}")
        lookup = (
            "meta l4proto . th dport"
            if node_port
            else f"{self.flavour.ip} daddr . meta l4proto . th dport"
        )
        rule = f"dnat {self.flavour.ip} to {lookup} . numgen random mod {len(backends)} map @{name}"
        return self.chain(f"pick-{name}", (rule,))

    def affinity_pick(self, use: str, backends: tuple[Backend, ...]) -> str:
        ip, service = self.flavour.ip, self.service
        prefix = f"affinity-{short_hash(service.key)}"
        sets = [f"{prefix}-{short_hash(backend.address, 6)}" for backend in backends]
        timeout = f"timeout {service.affinity_timeout}s"
        timed = f"set {{ type {self.flavour.addr_type}; flags dynamic,timeout; {timeout}; }}"
        for name in sets:
            self.sets[name] = timed
        match = f"meta l4proto {self.proto}"

        def to(backend: Backend, name: str) -> str:
            return f"update @{name} {{ {ip} saddr }} dnat {ip} to {_host_port(backend)}"

        rules = [
            f"{match} {ip} saddr @{name} {to(backend, name)}"
            for backend, name in zip(backends, sets, strict=True)
        ]
        for index, (backend, name) in enumerate(zip(backends, sets, strict=True)):
            left = len(backends) - index
            draw = f"numgen random mod {left} == 0 " if left > 1 else ""
            rules.append(f"{match} {draw}{to(backend, name)}")
        return self.chain(f"{prefix}-{use}", tuple(rules))

    def chain(self, name: str, rules: Iterable[str]) -> str:
        self.chains[name] = Chain(rules=tuple(rules))
        return name


def _host_port(backend: Backend) -> str:
    return f"[{backend.ip}]:{backend.port}" if ":" in backend.ip else f"{backend.ip}:{backend.port}"


def contribution(service: VirtualService, flavour: Flavour) -> Contribution:
    return _Builder(service, flavour).build()
