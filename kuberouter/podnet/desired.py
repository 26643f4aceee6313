"""What one node's pod network should be, from the store's Node objects and the options."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import attrs

from kuberouter.model import Node
from kuberouter.netpol.ruleset import Family
from kuberouter.podnet import cni
from kuberouter.podnet.bridge import BridgeSpec, bridge_spec, family_of
from kuberouter.podnet.egress import NO_EGRESS, EgressState, egress_state

CNI_CONF_ENV = "KUBE_ROUTER_CNI_CONF_FILE"  # upstream's way to name the CNI file
CNI_CONF_DEFAULT = "/etc/cni/net.d/10-kuberouter.conflist"


@attrs.frozen(kw_only=True)
class Settings:
    """The options the pod network reads (see the flags' help)."""

    node_name: str
    families: tuple[Family, ...] = (4,)
    enable_cni: bool = True
    auto_mtu: bool = True
    enable_pod_egress: bool = True
    cni_conf_file: Path = Path(CNI_CONF_DEFAULT)

    @property
    def conflist(self) -> bool:
        return self.cni_conf_file.suffix == ".conflist"


@attrs.frozen(kw_only=True)
class NodeNetwork:
    bridge: BridgeSpec
    cni: cni.Rendered | None  # None: no pod CIDR yet, so no file (host-local needs ranges)


def pod_cidrs(settings: Settings, node: Node) -> tuple[str, ...]:
    """The node's pod CIDRs of the enabled families."""
    return tuple(c for c in node.effective_pod_cidrs if family_of(c) in settings.families)


def primary_address(node: Node) -> str | None:
    """The address whose interface gives --auto-mtu its MTU: the first InternalIP (else
    ExternalIP) of the first enabled family that has one."""
    return node.primary_ip(4) or node.primary_ip(6)


def node_network(
    settings: Settings, node: Node, *, mtu: int | None, existing_conf: str | None
) -> NodeNetwork:
    """kube-bridge and the CNI file for `node`; `mtu` as --auto-mtu found it (or None),
    `existing_conf` the CNI file's current text (None: no file)."""
    cidrs = pod_cidrs(settings, node)
    wanted_mtu = mtu if settings.auto_mtu else None
    rendered = None
    if cidrs:
        rendered = cni.render(
            existing_conf, conflist=settings.conflist, pod_cidrs=cidrs, mtu=wanted_mtu
        )
    return NodeNetwork(bridge=bridge_spec(cidrs, settings.families, wanted_mtu), cni=rendered)


def cluster_egress(settings: Settings, nodes: Iterable[Node]) -> EgressState:
    if not settings.enable_pod_egress:
        return NO_EGRESS
    return egress_state(nodes, settings.families)
