"""The CNI network configuration the container runtime reads for this node's pods.

The template is the file already there when it is a valid configuration with a bridge
plugin (an operator's own, installed from a ConfigMap by an init container, keeps every
field we do not own); otherwise ours: the bridge plugin on kube-bridge with hairpin mode
and host-local IPAM, then portmap for hostPorts. We own two fields of the bridge plugin:
- `ipam.ranges`: one range set per pod CIDR, so a pod gets one address of each family; a
  range set already written for the same subnet is kept as it is (rangeStart, gateway,
  ...). A legacy single `ipam.subnet` is folded into the ranges, as host-local does.
- `mtu`, when --auto-mtu found one.
A file named *.conflist holds a list of plugins; any other name holds the bridge plugin
alone. Field names follow the CNI specification and the reference plugins' documentation.

The text is canonical (JSON, 2-space indent, newline at the end), so rendering the file
we wrote gives the same text again: the file is rewritten only when something changed.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

import attrs

from kuberouter.podnet.bridge import BRIDGE

CNI_VERSION = "0.3.1"
# host-local keeps its leases per network name: the name of upstream's template keeps
# them when a node moves to this agent, so running pods' addresses are not handed out.
NETWORK_NAME = "mynet"

Document = dict[str, Any]


@attrs.frozen(kw_only=True)
class Rendered:
    text: str
    problem: str | None = None  # why the file found was not used as the template


def default_document(*, conflist: bool, bridge: str = BRIDGE) -> Document:
    plugin: Document = {
        "type": "bridge",
        "bridge": bridge,
        "isDefaultGateway": True,
        "hairpinMode": True,
        "ipam": {"type": "host-local"},
    }
    if not conflist:
        return {"cniVersion": CNI_VERSION, "name": NETWORK_NAME, **plugin}
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    plugins = [{"name": "kubernetes", **plugin}, portmap]
    return {"cniVersion": CNI_VERSION, "name": NETWORK_NAME, "plugins": plugins}


def render(
    existing: str | None,
    *,
    conflist: bool,
    pod_cidrs: Iterable[str],
    mtu: int | None,
    bridge: str = BRIDGE,
) -> Rendered:
    """The configuration for `pod_cidrs` and `mtu`, built on `existing` (the file's text,
    None when there is none) where it is usable."""
    problem = None
    document = None
    if existing is not None:
        document, problem = _parse(existing, conflist=conflist)
    if document is None:
        document = default_document(conflist=conflist, bridge=bridge)
    plugin = _bridge_plugin(document, conflist=conflist)
    assert plugin is not None  # _parse and default_document guarantee it
    ipam = plugin.setdefault("ipam", {})
    ipam.setdefault("type", "host-local")
    ipam["ranges"] = _ranges(ipam, pod_cidrs)
    ipam.pop("subnet", None)
    if mtu is not None:
        plugin["mtu"] = mtu
    return Rendered(text=json.dumps(document, indent=2) + "\n", problem=problem)


def _parse(text: str, *, conflist: bool) -> tuple[Document | None, str | None]:
    try:
        document = json.loads(text)
    except ValueError as error:
        return None, f"not JSON ({error})"
    if not isinstance(document, dict):
        return None, "not a JSON object"
    plugin = _bridge_plugin(document, conflist=conflist)
    if plugin is None:
        return None, "no plugin of type bridge" + (" in plugins" if conflist else "")
    if not isinstance(plugin.get("ipam", {}), dict):
        return None, "the bridge plugin's ipam is not an object"
    return document, None


def _bridge_plugin(document: Document, *, conflist: bool) -> Document | None:
    if not conflist:
        return document if document.get("type") == "bridge" else None
    plugins = document.get("plugins")
    if not isinstance(plugins, list):
        return None
    return next((p for p in plugins if isinstance(p, dict) and p.get("type") == "bridge"), None)


def _ranges(ipam: Document, pod_cidrs: Iterable[str]) -> list[Any]:
    """One range set per CIDR; a range set already written for that subnet is kept."""
    written: dict[str, Any] = {}
    old = [[{"subnet": ipam["subnet"]}]] if isinstance(ipam.get("subnet"), str) else []
    if isinstance(ipam.get("ranges"), list):
        old += ipam["ranges"]
    for range_set in old:
        subnet = _subnet_of(range_set)
        if subnet is not None:
            written.setdefault(subnet, range_set)
    ranges = []
    for cidr in dict.fromkeys(_normal(cidr) for cidr in pod_cidrs):
        ranges.append(written.get(cidr, [{"subnet": cidr}]))
    return ranges


def _subnet_of(range_set: Any) -> str | None:
    if not (isinstance(range_set, list) and range_set and isinstance(range_set[0], dict)):
        return None
    subnet = range_set[0].get("subnet")
    try:
        return _normal(subnet) if isinstance(subnet, str) else None
    except ValueError:
        return None


def _normal(cidr: str) -> str:
    return ipaddress.ip_network(cidr, strict=False).compressed
