"""Shared pieces of the data-plane tests: the three back ends, the e2e fixtures."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from kuberouter.dataplane import IptablesBackend, NftablesBackend, Runner
from kuberouter.dataplane.firewall import PlannedBackend
from kuberouter.netpol.cluster import Cluster
from kuberouter.netpol.loader import load_objects
from tests.support import require, require_root, require_tools

FIXTURES = Path(__file__).parents[3] / "fixtures" / "netpol"
BACKENDS = ("iptables-legacy", "iptables-nft", "nftables")


def make_backend(kind: str, runner: Runner) -> PlannedBackend:
    if kind == "nftables":
        return NftablesBackend(runner)
    return IptablesBackend(runner, variant="legacy" if kind == "iptables-legacy" else "nft")


def iptables_variant(kind: str) -> str:
    """The iptables variant in use next to this back end (nftables hosts: the nft one)."""
    return "legacy" if kind == "iptables-legacy" else "nft"


def require_backend(kind: str) -> None:
    require_root()
    variant = iptables_variant(kind)
    require_tools("ip", "ipset", "nft", f"iptables-{variant}", f"iptables-{variant}-restore")
    require_tools(f"ip6tables-{variant}-restore", f"iptables-{variant}-save")


def require_sctp_match(kind: str) -> None:
    """SCTP flows need netfilter's SCTP support (the xt match for iptables); SCTP
    sockets are not needed (the probes send raw INIT chunks)."""
    if kind.startswith("iptables"):
        matches = Path("/proc/net/ip_tables_matches").read_text().split()
        require("sctp" in matches, "the iptables sctp match (xt_sctp)")


@functools.cache
def _documents(path: Path) -> tuple[Any, ...]:
    return tuple(yaml.safe_load_all(path.read_text()))


def documents(scenario: str | None = None) -> list[Any]:
    """cluster.yaml plus a scenario's policies.yaml, as fresh (mutable) dicts."""
    found = list(_documents(FIXTURES / "cluster.yaml"))
    if scenario is not None:
        found += _documents(FIXTURES / scenario / "policies.yaml")
    return copy.deepcopy(found)


def cluster_of(docs: list[Any]) -> Cluster:
    loaded = load_objects(docs)
    assert loaded.problems == ()
    return loaded.cluster


def scenario_cluster(scenario: str | None = None) -> Cluster:
    return cluster_of(documents(scenario))
