"""The service-proxy fixtures: fixtures/services/cluster.yaml compiled per node with the
flags it names, and the hand-written packet-flow table (flows.yaml)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import yaml  # type: ignore[import-untyped,unused-ignore]

from kuberouter.model import EndpointSlice, Node, Pod, Service
from kuberouter.model.documents import parse_documents
from kuberouter.options import parse_command_line
from kuberouter.proxy.config import ProxyConfig
from kuberouter.proxy.incremental import compile_all, node_facts
from kuberouter.proxy.state import ProxyState

FIXTURES = Path(__file__).parents[3] / "fixtures" / "services"
FLAGS = ("--service-external-ip-range=203.0.113.0/24", "--loadbalancer-ip-range=198.51.100.0/24")
CLIENT_IP = "192.168.0.100"


@attrs.frozen(kw_only=True)
class Row:
    node: str
    source: str  # a pod name, a node name or "client"
    destination: str
    port: int
    protocol: str
    verdict: str
    endpoints: tuple[str, ...] = ()
    masquerade: bool = False
    ipvs: str = ""  # the verdict in IPVS mode, where it differs

    def verdict_in(self, mode: str) -> str:
        return self.ipvs if mode == "ipvs" and self.ipvs else self.verdict

    @property
    def id(self) -> str:
        return f"{self.source}->{self.destination}:{self.port}/{self.protocol}@{self.node}"


@functools.cache
def documents() -> tuple[Any, ...]:
    return tuple(yaml.safe_load_all((FIXTURES / "cluster.yaml").read_text()))


def objects() -> dict[str, dict[str, Any]]:
    parsed = parse_documents(documents())
    assert parsed.problems == ()
    return {kind: parsed.of_kind(kind) for kind in ("Node", "Pod", "Service", "EndpointSlice")}


def config(*extra: str) -> ProxyConfig:
    return ProxyConfig.from_options(parse_command_line([*FLAGS, *extra]).options)


def state_for(node: str, proxy_config: ProxyConfig | None = None) -> ProxyState:
    found = objects()
    nodes: dict[str, Node] = found["Node"]
    services: dict[str, Service] = found["Service"]
    slices: dict[str, EndpointSlice] = found["EndpointSlice"]
    return compile_all(node_facts(node, nodes.values()), proxy_config or config(), services, slices)


def source_ip(name: str) -> str:
    found = objects()
    if name == "client":
        return CLIENT_IP
    if name in found["Node"]:
        node: Node = found["Node"][name]
        return node.internal_ips[0]
    pod: Pod = found["Pod"][f"demo/{name}"]
    return pod.ips[0]


def rows() -> list[Row]:
    table = yaml.safe_load((FIXTURES / "flows.yaml").read_text())
    found = []
    for entry in table:
        address, _, protocol = entry["to"].partition("/")
        host, _, port = address.rpartition(":")
        found.append(
            Row(
                node=entry["node"],
                source=entry["from"],
                destination=host,
                port=int(port),
                protocol=protocol,
                verdict=entry["verdict"],
                endpoints=tuple(entry.get("endpoints", ())),
                masquerade=entry.get("masquerade", False),
                ipvs=entry.get("ipvs", ""),
            )
        )
    return found
