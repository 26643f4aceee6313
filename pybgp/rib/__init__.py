"""RIBs: Adj-RIB-In per peer, Loc-RIB with the RFC 4271 §9.1.2 decision process, and the
Adj-RIB-Out built through update groups. Sans-IO: every change is a returned value."""

from pybgp.rib.adj_in import AdjRibIn, Counts, Touched
from pybgp.rib.adj_out import AdjRibOut
from pybgp.rib.best_path import BestPathConfig, explain, select
from pybgp.rib.export import Exported, ExportKey
from pybgp.rib.loc_rib import BestChange, LocRib, candidates
from pybgp.rib.peer import PeerInfo, local_origin
from pybgp.rib.route import Route
from pybgp.rib.update_group import Outgoing, UpdateGroup

__all__ = [
    "AdjRibIn",
    "AdjRibOut",
    "BestChange",
    "BestPathConfig",
    "Counts",
    "ExportKey",
    "Exported",
    "LocRib",
    "Outgoing",
    "PeerInfo",
    "Route",
    "Touched",
    "UpdateGroup",
    "candidates",
    "explain",
    "local_origin",
    "select",
]
