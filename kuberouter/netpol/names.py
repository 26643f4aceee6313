"""Chain and ipset names, upstream style: PREFIX + first 16 characters of
base32(sha256(inputs)).

The prefixes are what operators grep for (compat.md). Hash inputs follow upstream where
the object is the same (a policy's target sets, a rule's pod and ipBlock sets) and add
the direction where we split a chain upstream shares. Names stay stable across syncs
(no sync version in the hash), so an unchanged object keeps its chain and set. ipsets
live in one namespace for both families, so IPv6 set names carry upstream's "inet6:"
prefix; the longest name is 31 characters, ipset's limit, and chains stay within 28.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from kuberouter.model.networkpolicy import Direction
from kuberouter.netpol.ruleset import Family

COMMON_CHAIN = "KUBE-NWPLCY-COMMON"
# --netpol-default-deny: traffic of this node's pod CIDRs from / to pods not programmed yet
DENY_NEW_SRC_CHAIN = "KUBE-NWPLCY-DENY-NEW-SRC"
DENY_NEW_DST_CHAIN = "KUBE-NWPLCY-DENY-NEW-DST"
POD_CHAIN_PREFIX = "KUBE-POD-FW-"
POLICY_CHAIN_PREFIX = "KUBE-NWPLCY-"
SRC_SET_PREFIX = "KUBE-SRC-"
DST_SET_PREFIX = "KUBE-DST-"
IPV6_SET_PREFIX = "inet6:"


@functools.lru_cache(maxsize=65536)
def short_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def ip_family(family: Family) -> str:
    return "IPv4" if family == 4 else "IPv6"


def _set(prefix: str, text: str, family: Family) -> str:
    name = prefix + short_hash(text)
    return IPV6_SET_PREFIX + name if family == 6 else name


def pod_chain(namespace: str, pod: str, direction: Direction, family: Family) -> str:
    return POD_CHAIN_PREFIX + short_hash(namespace + pod + direction + ip_family(family))


def policy_chain(namespace: str, policy: str, direction: Direction, family: Family) -> str:
    return POLICY_CHAIN_PREFIX + short_hash(namespace + policy + direction + ip_family(family))


def target_set(namespace: str, policy: str, direction: Direction, family: Family) -> str:
    """The policy's selected (local) pods: matched as destination for ingress, source for
    egress, as upstream's policyDestinationPodIPSetName / policySourcePodIPSetName."""
    prefix = DST_SET_PREFIX if direction == "ingress" else SRC_SET_PREFIX
    return _set(prefix, namespace + policy + ip_family(family), family)


def _peer_prefix(direction: Direction) -> str:
    return SRC_SET_PREFIX if direction == "ingress" else DST_SET_PREFIX


def rule_pods_set(
    namespace: str, policy: str, direction: Direction, rule: int, family: Family
) -> str:
    text = f"{namespace}{policy}{direction}rule{rule}{ip_family(family)}pod"
    return _set(_peer_prefix(direction), text, family)


def rule_ip_block_set(
    namespace: str, policy: str, direction: Direction, *, rule: int, peer: int, family: Family
) -> str:
    text = f"{namespace}{policy}{direction}rule{rule}{ip_family(family)}ipblock{peer}"
    return _set(_peer_prefix(direction), text, family)


def named_port_set(port_name: str, protocol: str, family: Family) -> str:
    """All policy-actionable pods declaring `port_name`/`protocol`, as (ip, proto:port);
    shared by every rule that names that port."""
    return _set(DST_SET_PREFIX, f"namedport{port_name}{protocol}{ip_family(family)}", family)
