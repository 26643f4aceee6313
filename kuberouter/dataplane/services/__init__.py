"""The service proxy's data plane behind one small Protocol.

- `apply(desired, previous)`: program `desired`, given that `previous` is what the last
  apply programmed; only the Services whose plans differ are touched (`changed`). With
  `previous=None` (unknown) it is a `reconcile`. An incremental write the kernel refuses
  (someone changed it under us) falls back to a reconcile.
- `reconcile(desired)`: read what the kernel holds of ours, repair every difference, and
  remove what is ours but not desired; other tools' tables and IPVS services stay.
- `cleanup()`: remove everything of ours.

nftables.py  one `nft -f` transaction per change (tables kube-router-proxy-ipv4/-ipv6)
fake.py      in memory, for controller tests
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import attrs

from kuberouter.proxy.state import ProxyState, ServicePlan


@attrs.frozen(kw_only=True)
class SyncStats:
    """What one apply, reconcile or cleanup did (for metrics, logs and tests)."""

    services_written: int = 0  # Services whose kernel state was (re)written
    services_deleted: int = 0
    objects_written: int = 0  # back-end units: nft elements, chains, sets; IPVS services, dests
    objects_deleted: int = 0
    commands: int = 0  # tool calls or netlink requests
    seconds: float = 0.0
    repaired: bool = False  # the kernel was read and repaired

    @property
    def changed(self) -> bool:
        return bool(self.objects_written or self.objects_deleted)


class ServiceBackend(Protocol):
    def apply(self, desired: ProxyState, previous: ProxyState | None = None) -> SyncStats:
        """Program `desired`, given that `previous` is what the last apply programmed."""
        ...

    def reconcile(self, desired: ProxyState) -> SyncStats:
        """Read the kernel and repair every difference from `desired`."""
        ...

    def cleanup(self) -> SyncStats:
        """Remove everything of ours; leave everything else."""
        ...


def changed(
    desired: ProxyState, previous: ProxyState
) -> Iterator[tuple[str, ServicePlan | None, ServicePlan | None]]:
    """(key, old plan, new plan) for every Service whose plan differs (None: absent)."""
    for key, plan in desired.services.items():
        old = previous.services.get(key)
        if old is not plan and old != plan:
            yield key, old, plan
    for key, old in previous.services.items():
        if key not in desired.services:
            yield key, old, None
