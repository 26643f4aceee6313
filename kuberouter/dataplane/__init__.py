"""Data-plane adapters: the network-policy firewall as iptables + ipset or nftables, and
the pod network (kube-bridge, the CNI file, egress masquerading).

firewall.py   the FirewallBackend Protocol, ApplyStats, the apply/reconcile/cleanup loop
plan.py       what to change (diff of DesiredStates, or of desired and programmed)
iptables.py   iptables-restore --noflush (legacy or nft variant) + ipset.py (restore/swap)
nftables.py   one `nft -f` transaction per change, tables kube-router-filter-ipv4/-ipv6
cleanup.py    --cleanup-config: everything of ours in both iptables variants, ipset, nft
fake.py       an in-memory back end for controller tests
commands.py   every tool call, optionally inside a network namespace
bridge.py     kube-bridge through `ip`: gateways, MTU, hairpin on its ports, link events
cniconf.py    the CNI file: written atomically and only when its text changes
egress.py     pod egress: kube-router-pod-subnets/-node-ips sets + the MASQUERADE rule
fake_podnet.py  in-memory bridge and egress back ends for controller tests
"""

from __future__ import annotations

from kuberouter.dataplane.commands import CommandError, Runner
from kuberouter.dataplane.fake import FakeBackend
from kuberouter.dataplane.firewall import ApplyStats, FirewallBackend
from kuberouter.dataplane.iptables import IptablesBackend, Variant, detect_variant
from kuberouter.dataplane.nftables import NftablesBackend
from kuberouter.dataplane.plan import Programmed

__all__ = [
    "ApplyStats",
    "CommandError",
    "FakeBackend",
    "FirewallBackend",
    "IptablesBackend",
    "NftablesBackend",
    "Programmed",
    "Runner",
    "Variant",
    "detect_variant",
    "firewall_backend",
]


def firewall_backend(
    *,
    use_nftables: bool = False,
    runner: Runner | None = None,
    iptables_variant: Variant | None = None,
) -> FirewallBackend:
    """The back end `--use-nftables-for-netpol` asks for; the iptables variant is
    detected unless forced."""
    if use_nftables:
        return NftablesBackend(runner)
    return IptablesBackend(runner, variant=iptables_variant)
