"""kube-bridge, the Linux bridge every pod of the node is plugged into.

It holds the gateway of each pod CIDR (its first address, what host-local hands pods as
their gateway by default), so pods have their default route before the first CNI call
and the node routes its pod CIDRs onto the bridge. With --auto-mtu the bridge takes the
MTU of the interface holding the node's primary address. Nothing is taken off for an
overlay: a tunnel link already gets its lower device's MTU minus its own header from the
kernel, so a second reduction here would only shrink every pod's packets twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs

BRIDGE = "kube-bridge"


@attrs.frozen(kw_only=True)
class BridgeSpec:
    name: str = BRIDGE
    addresses: tuple[str, ...] = ()  # interface form: "10.244.1.1/24"
    mtu: int | None = None  # None: the MTU is left as it is


def gateway(cidr: str) -> str | None:
    """The first address of `cidr` with its prefix length; None if the network is too
    small to hold a gateway and pods (a /31, /32, /127 or /128)."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.num_addresses < 4:
        return None
    return f"{network.network_address + 1}/{network.prefixlen}"


def family_of(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).version


def bridge_spec(pod_cidrs: Iterable[str], families: Iterable[int], mtu: int | None) -> BridgeSpec:
    """The bridge for the node's pod CIDRs of the enabled address families."""
    wanted = set(families)
    addresses = (gateway(cidr) for cidr in pod_cidrs if family_of(cidr) in wanted)
    return BridgeSpec(addresses=tuple(a for a in addresses if a is not None), mtu=mtu)
