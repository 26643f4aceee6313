"""The import and export policies in force, bound to each peer: the filter of its Adj-RIB-In
and the export part of its update group's key. Without any policy nothing is exported
(default reject).

A peer's chain is identified by its view (pybgp.policy.view): peers with equal views share
an update group, and a new policy concerns only the peers whose view of it changed."""

from __future__ import annotations

import logging

import attrs

from pybgp.policy import CompiledPolicy, Definitions
from pybgp.policy.rib_filter import ChainFilter
from pybgp.policy.view import ChainViews
from pybgp.rib import ExportKey, PeerInfo

log = logging.getLogger(__name__)


class Policies:
    def __init__(self, compiled: CompiledPolicy | None = None) -> None:
        self.compiled = compiled if compiled is not None else CompiledPolicy(Definitions())
        self.views = ChainViews(self.compiled)
        self._warned_no_export: set[str] = set()  # neighbours told so under this policy

    def replace(self, compiled: CompiledPolicy) -> ChainViews:
        """The new policy in force; the views of the one it replaces."""
        before = self.views
        self.compiled, self.views = compiled, ChainViews(compiled)
        self._warned_no_export.clear()
        return before

    def changed(self, before: ChainViews, address: str, direction: str) -> bool:
        """Whether the new policy concerns this peer's routes in `direction`."""
        return before.view(direction, address) != self.views.view(direction, address)

    def import_filter(self, info: PeerInfo) -> ChainFilter | None:
        chain = self.compiled.import_chain(info.address)
        return None if chain.constant is True else ChainFilter(chain, info)

    def export_filter(self, info: PeerInfo, key: ExportKey) -> ChainFilter:
        chain = self.compiled.export_chain(info.address)
        local4, local6 = key.local_address, key.local_address6
        return ChainFilter(chain, info, exporting=True, local4=local4, local6=local6)

    def with_export_policy(self, key: ExportKey, info: PeerInfo) -> ExportKey:
        chain = self.compiled.export_chain(info.address)
        if chain.constant is True:
            return attrs.evolve(key, policy=None, export_filter=None)
        if chain.constant is False and info.address not in self._warned_no_export:
            self._warned_no_export.add(info.address)  # once per policy, not per session
            log.warning(
                "peer %s: no export policy and the default is reject: nothing is advertised "
                "to it (attach an export policy, or set policy.attach.default_export)",
                info.address,
            )
        # Peers share an update group when their views of the policy are equal.
        identity = self.views.view("export", info.address)
        return attrs.evolve(key, policy=identity, export_filter=self.export_filter(info, key))
