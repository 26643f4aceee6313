"""Read-only views of a running Speaker, as the control socket and the CLI print them:
neighbours, the Loc-RIB with every path, the policies in force and why a policy took or
sent a route. Nothing here changes state; new views (of the Adj-RIBs, streams, dumps) belong
here too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import trio

from pybgp.bfd.neighbors import NeighborBfd
from pybgp.policy import CommunityAction, LargeCommunityAction, PolicyChain, explain
from pybgp.policy.rib_filter import ChainFilter
from pybgp.rib.export import export
from pybgp.rib.peer import PeerInfo
from pybgp.rib.route import Route
from pybgp.speaker.peer import FAMILIES, Peer
from pybgp.speaker.pipeline import RoutePipeline
from pybgp.speaker.policies import Policies
from pybgp.wire import aspath
from pybgp.wire.communities import WELL_KNOWN, community_to_str, large_community_to_str
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST, Family, Origin
from pybgp.wire.nlri import Nlri, nlri_from_str, nlri_to_str

Candidates = list[tuple[int, Route]]  # (path id, route)


class Views:
    def __init__(
        self,
        peers: Mapping[str, Peer],
        pipeline: RoutePipeline,
        policies: Policies,
        bfd: NeighborBfd,
    ) -> None:
        self._peers, self._pipeline, self._policies, self._bfd = peers, pipeline, policies, bfd

    def _peer(self, address: str) -> Peer:
        peer = self._peers.get(address)
        if peer is None:
            raise ValueError(f"no neighbor {address}")
        return peer

    def neighbors(self, address: str | None = None) -> list[dict[str, Any]]:
        peers = [self._peer(address)] if address else list(self._peers.values())
        return [self._neighbor_json(peer) for peer in peers]

    def _neighbor_json(self, peer: Peer) -> dict[str, Any]:
        session, negotiated = peer.session, peer.session.conn.negotiated
        up = session.established_at
        group = self._pipeline.out.group_of(peer.address)
        families = {}
        for family in peer.config.families:
            counts = peer.adj_in.counts(family) if peer.adj_in else None
            families[family.name] = {
                "received": counts.received if counts else 0,
                "accepted": counts.accepted if counts else 0,
                "advertised": group.advertised(peer.address, family) if group else 0,
                "stale": peer.adj_in.stale_count(family) if peer.adj_in else 0,
            }
        established = peer.established and negotiated is not None
        return {
            "address": peer.address,
            "peer_asn": peer.config.peer_asn,
            "description": peer.config.description,
            "state": session.state.value,
            "uptime": trio.current_time() - up if up is not None else None,
            "router_id": negotiated.peer_open.bgp_id if established and negotiated else None,
            "hold_time": negotiated.hold_time if established and negotiated else None,
            "last_error": session.last_error,
            "bfd": self._bfd.info(peer.config),
            "peer_graceful_restart": (
                peer.peer_restart.to_json() if peer.peer_restart is not None else None
            ),
            "families": families,
        }

    def rib_json(
        self, family: str | None = None, prefix: str | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for fam in families_named(family):
            loc = self._pipeline.loc[fam]
            if prefix is not None:
                try:
                    keys = [nlri_from_str(prefix, fam)]
                except ValueError:
                    continue
            else:
                keys = [key for key, _ in loc.items()]
            sources = self._pipeline.sources()
            for key in keys:  # every path, best first (ADD-PATH in: several per peer)
                shared = loc.multipath(key)
                for rank, ((_, path_id), route) in enumerate(loc.ranked(key, sources)):
                    entry = route_json(nlri_to_str(key, fam), route, rank == 0)
                    entry.update(multipath=route in shared, path_id=path_id)
                    out.append(entry)
        return out

    def adj_rib_json(
        self, address: str, direction: str, family: str | None = None
    ) -> list[dict[str, Any]]:
        """What neighbour `address` sent us (`in`: every path as received, before import
        policy, `accepted` saying whether the policy took it) or what we send it (`out`:
        after the export rules and policy), per prefix."""
        peer = self._peer(address)
        if direction not in ("in", "out"):
            raise ValueError(f"direction: in or out, not {direction!r}")
        out: list[dict[str, Any]] = []
        for fam in families_named(family):
            if direction == "in":
                out += self._adj_in(peer, fam)
            else:
                out += self._adj_out(peer, fam)
        return out

    def _adj_in(self, peer: Peer, family: Family) -> list[dict[str, Any]]:
        table = peer.adj_in.table(family) if peer.adj_in is not None else None
        if table is None or peer.adj_in is None:
            return []
        prefixes = {key[4:] if table.addpath else key for key in table.wire_keys()}
        out = []
        for prefix in _in_order(prefixes, family):
            accepted = peer.adj_in.paths(family, prefix)
            text = nlri_to_str(prefix, family)
            for path_id, route in sorted(peer.adj_in.received_paths(family, prefix).items()):
                entry = route_json(text, route, False)
                entry.update(path_id=path_id, accepted=path_id in accepted)
                out.append(entry)
        return out

    def _adj_out(self, peer: Peer, family: Family) -> list[dict[str, Any]]:
        """Each prefix's paths as the peer's update group sends them: the best path, or
        with ADD-PATH send the first `send_paths` the group may be sent; never a path back
        to the peer it came from (split horizon)."""
        group = self._pipeline.out.group_of(peer.address)
        if group is None or family not in group.key.families:
            return []
        several = group.several_paths and family in group.key.addpath_tx
        loc, sources = self._pipeline.loc[family], self._pipeline.sources()
        out = []
        for prefix in _in_order([key for key, _ in loc.items()], family):
            if several:
                routes = [route for _, route in loc.ranked(prefix, sources)]
            else:
                routes = [route] if (route := loc.best(prefix)) is not None else []
            chosen = 0
            for route in routes:
                exported = group.export(family, route, prefix)
                if exported is None:
                    continue
                if not (group.key.split_horizon and exported.source == peer.address):
                    as_sent = Route(exported.attributes, exported.next_hop, route.peer)
                    out.append(route_json(nlri_to_str(prefix, family), as_sent, False))
                chosen += 1
                if chosen == group.key.send_paths:
                    break
        return out

    # -- for table dumps (pybgp.mrt) -----------------------------------------------------
    def sources(self) -> list[PeerInfo]:
        """Where routes come from: our own routes, then each peer with an Adj-RIB-In."""
        return [source.peer for source in self._pipeline.sources()]

    def prefixes(self, family: Family) -> list[Nlri]:
        """The prefixes with a best path, now (a list: the table may change meanwhile)."""
        return [prefix for prefix, _ in self._pipeline.loc[family].items()]

    def paths(self, family: Family, prefix: Nlri) -> list[tuple[int, Route]]:
        """(path id, route) of every path of `prefix`, best first; route.peer says whose."""
        loc, sources = self._pipeline.loc[family], self._pipeline.sources()
        return [(path_id, route) for (_, path_id), route in loc.ranked(prefix, sources)]

    def loc_rib(self, family: Family) -> dict[str, tuple[str, ...]]:
        """prefix -> next hops of the best path(s), for programs."""
        loc = self._pipeline.loc[family]
        return {
            nlri_to_str(k, family): tuple(r.next_hop for r in loc.multipath(k))
            for k, _ in loc.items()
        }

    def policy_json(self) -> dict[str, Any]:
        """The policies in force: the definitions, the global attachment, and the chain
        each neighbour gets (its own policies, then the global ones, then the default)."""
        compiled = self._policies.compiled
        neighbors = {}
        for address in self._peers:
            imp, exp = compiled.import_chain(address), compiled.export_chain(address)
            neighbors[address] = {
                "import": list(imp.names),
                "default_import": imp.default_action,
                "export": list(exp.names),
                "default_export": exp.default_action,
            }
        return {
            "definitions": _plain(
                attrs.asdict(compiled.definitions, value_serializer=_policy_value)
            ),
            "global": _plain(attrs.asdict(compiled.assignment.global_)),
            "neighbors": neighbors,
        }

    def explain_json(self, prefix: str, address: str, direction: str = "export") -> dict[str, Any]:
        """Why neighbour `address` gets (export) or we took from it (import) `prefix`: each
        statement of its chain, tried in order, and the verdict."""
        peer = self._peer(address)
        if direction not in ("import", "export"):
            raise ValueError(f"direction: import or export, not {direction!r}")
        if peer.info is None or peer.key is None or peer.adj_in is None:
            raise ValueError(f"neighbor {address} is not established")
        family = IPV6_UNICAST if ":" in prefix else IPV4_UNICAST
        key = nlri_from_str(prefix, family)
        out: dict[str, Any] = {
            "prefix": nlri_to_str(key, family),
            "neighbor": address,
            "direction": direction,
            "paths": [],
        }
        if direction == "import":
            chain = self._policies.compiled.import_chain(address)
            judge = ChainFilter(chain, peer.info)
            candidates = self._import_candidates(peer, family, key, out)
        else:
            chain = self._policies.compiled.export_chain(address)
            judge = self._policies.export_filter(peer.info, peer.key)
            candidates = self._export_candidates(peer, family, key, out)
        out["chain"] = list(chain.names)
        out["default"] = chain.default_action
        out["paths"] = [
            _explained(chain, judge, family, key, path_id, route, out["prefix"])
            for path_id, route in candidates
        ]
        return out

    def _import_candidates(
        self, peer: Peer, family: Family, key: Nlri, out: dict[str, Any]
    ) -> Candidates:
        """The paths the peer sent for the prefix, as received (before import policy)."""
        assert peer.adj_in is not None
        candidates = sorted(peer.adj_in.received_paths(family, key).items())
        if not candidates:
            out["note"] = f"{peer.address} sent no route for {out['prefix']}"
        return candidates

    def _export_candidates(
        self, peer: Peer, family: Family, key: Nlri, out: dict[str, Any]
    ) -> Candidates:
        """The best path as it would go to the peer before export policy, or a note why
        nothing would."""
        assert peer.key is not None
        best = self._pipeline.loc[family].best(key)
        exported = export(best, peer.key, family) if best is not None else None
        if best is None:
            out["note"] = f"no route for {out['prefix']} in the Loc-RIB"
        elif peer.key.split_horizon and best.peer.address == peer.address:
            out["note"] = f"the best path came from {peer.address}: not sent back to it"
        elif exported is None:
            out["note"] = (
                "held back before policy: iBGP to iBGP without reflection, "
                "NO_EXPORT / NO_ADVERTISE, or no next hop for the family"
            )
        else:
            return [(0, Route(exported.attributes, exported.next_hop, best.peer))]
        return []


def families_named(name: str | None) -> list[Family]:
    """The families a `-a` option names: ipv4, ipv6 or the full name; None: all of them."""
    if name is None:
        return list(FAMILIES)
    found = [f for f in FAMILIES if name in (f.name, f.name.split("-")[0])]
    if not found:
        raise ValueError(f"family: ipv4 or ipv6, not {name!r}")
    return found


def _in_order(prefixes: Iterable[Nlri], family: Family) -> list[Nlri]:
    """Prefixes by address, then length, as people read a table."""
    width = family.address_len

    def key(prefix: Nlri) -> tuple[bytes, int]:
        return prefix[1:].ljust(width, b"\0"), prefix[0]

    return sorted(prefixes, key=key)


def _explained(
    chain: PolicyChain,
    judge: ChainFilter,
    family: Family,
    key: Nlri,
    path_id: int,
    route: Route,
    prefix: str,
) -> dict[str, Any]:
    why = explain(chain, judge.context(family, key, route))
    return {
        "path_id": path_id,
        "route": route_json(prefix, route, False),
        "accepted": why.result.accepted,
        "decided_by": why.result.decided_by,
        "steps": why.lines(),
    }


def route_json(prefix: str, route: Route, best: bool) -> dict[str, Any]:
    a = route.attributes
    return {
        "prefix": prefix,
        "next_hop": route.next_hop,
        "as_path": aspath.as_path_to_str(a.as_path),
        "origin": Origin(a.origin).name.lower(),
        "med": a.med,
        "local_pref": a.local_pref,
        "communities": [WELL_KNOWN.get(c) or community_to_str(c) for c in a.communities],
        "large_communities": [large_community_to_str(c) for c in a.large_communities],
        "originator_id": a.originator_id,
        "cluster_list": list(a.cluster_list),
        "peer": route.peer.address if not route.peer.local else "local",
        "best": best,
    }


def _policy_value(instance: Any, field: Any, value: Any) -> Any:
    """Communities in policy actions as people write them ("65000:1", "no-export")."""
    if field is None or field.name not in ("add", "replace") or value is None:
        return value
    if isinstance(instance, CommunityAction):
        return [WELL_KNOWN.get(c) or community_to_str(c) for c in value]
    if isinstance(instance, LargeCommunityAction):
        return [large_community_to_str(c) for c in value]
    return value


def _plain(value: Any) -> Any:
    """attrs.asdict output made JSON-ready (tuples as lists, other values as text)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
