"""The import and export policies in force, bound to each peer: the filter of its Adj-RIB-In
and the export part of its update group's key. Without any policy nothing is exported
(default reject)."""

from __future__ import annotations

import logging

import attrs

from pybgp.policy import CompiledPolicy, Definitions
from pybgp.policy.rib_filter import ChainFilter
from pybgp.rib import ExportKey, PeerInfo

log = logging.getLogger(__name__)


class Policies:
    def __init__(self, compiled: CompiledPolicy | None = None) -> None:
        self.compiled = compiled if compiled is not None else CompiledPolicy(Definitions())
        self._generation = 0  # keeps update groups of an older policy apart
        self._warned_no_export: set[str] = set()  # neighbours told so under this policy

    def replace(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        self._generation += 1
        self._warned_no_export.clear()

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
        # Peers share an update group when their chains are the same and do not read the
        # peer (neighbor sets); the generation keeps groups of an older policy apart.
        peer_part = info.address if "peer" in chain.reads else None
        identity = (self._generation, chain.names, chain.default, peer_part)
        return attrs.evolve(key, policy=identity, export_filter=self.export_filter(info, key))
