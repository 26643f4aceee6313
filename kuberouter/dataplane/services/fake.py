"""An in-memory service proxy back end for controller tests.

It keeps what was "programmed" as the compiler's own plans and counts the Services each
write touched. Tests make drift happen (`drop`), make the next write fail (`fail_next`),
and check the result with `holds(desired)`.
"""

from __future__ import annotations

from kuberouter.dataplane.commands import CommandError
from kuberouter.dataplane.services import SyncStats, changed
from kuberouter.proxy.state import ProxyState, ServicePlan


class FakeServices:
    def __init__(self) -> None:
        self.plans: dict[str, ServicePlan] = {}
        self.written: list[list[str]] = []  # per write, the Service keys it touched
        self.reads = 0
        self.fail_next: str | None = None

    def apply(self, desired: ProxyState, previous: ProxyState | None = None) -> SyncStats:
        if previous is None:
            return self.reconcile(desired)
        touched = [key for key, _, _ in changed(desired, previous)]
        if not touched:
            return SyncStats()
        try:
            self._write(desired, touched)
        except CommandError:
            return self.reconcile(desired)
        return SyncStats(
            services_written=sum(key in desired.services for key in touched),
            services_deleted=sum(key not in desired.services for key in touched),
            objects_written=len(touched),
        )

    def reconcile(self, desired: ProxyState) -> SyncStats:
        self.reads += 1
        touched = [key for key in {*desired.services, *self.plans}
                   if self.plans.get(key) != desired.services.get(key)]  # fmt: skip
        if touched:
            self._write(desired, touched)
        return SyncStats(objects_written=len(touched), repaired=True)

    def cleanup(self) -> SyncStats:
        removed = len(self.plans)
        self.plans.clear()
        return SyncStats(objects_deleted=removed, repaired=True)

    def _write(self, desired: ProxyState, keys: list[str]) -> None:
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            raise CommandError(["fake"], 1, message, None)
        for key in keys:
            plan = desired.services.get(key)
            if plan is None:
                self.plans.pop(key, None)
            else:
                self.plans[key] = plan
        self.written.append(sorted(keys))

    # -- checks and drift for tests ---------------------------------------------------

    def holds(self, desired: ProxyState) -> bool:
        return self.plans == dict(desired.services)

    def drop(self, key: str) -> None:
        del self.plans[key]
