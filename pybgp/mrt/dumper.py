"""pybgpd's MRT output (`[[mrt]]`, pybgp.mrt.config): periodic table dumps and an update
log, as GoBGP's mrt-dump, BIRD's mrt protocol and FRR's `dump bgp` write them.

A table dump is written under a temporary name and renamed when complete; it is built in
parts, yielding between them, so sessions and timers go on meanwhile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio

from pybgp.api import Speaker
from pybgp.mrt.config import MrtConfig
from pybgp.mrt.encode import (
    DumpPeer,
    RibEntry,
    bgp4mp_message,
    bgp4mp_state,
    peer_index_table,
    table_attributes,
)
from pybgp.mrt.encode import rib as rib_record
from pybgp.mrt.format import STATES, MrtType, header
from pybgp.rib.peer import PeerInfo
from pybgp.session.fsm import State
from pybgp.speaker.peer import FAMILIES, Peer
from pybgp.wire.update import Update

CHUNK = 2_000  # prefixes per part of a table dump
FLUSH_SECONDS = 1.0  # the update log is written at least this often
_STATE_NUMBERS = {name: number for number, name in STATES.items()}


def file_name(pattern: str, when: float) -> Path:
    return Path(time.strftime(pattern, time.localtime(when)))


class TableDumper:
    def __init__(self, config: MrtConfig, speaker: Speaker) -> None:
        self.config, self.speaker = config, speaker

    async def run(self) -> None:
        while True:
            await trio.sleep(self.config.interval)
            await self.dump()

    async def dump(self) -> Path:
        """One TABLE_DUMP_V2 of every path in the Loc-RIB's candidates, now."""
        now = time.time()
        path = file_name(self.config.file, now)
        partial = path.with_name(path.name + ".tmp")
        views = self.speaker.views
        sources = views.sources()
        index = {peer: number for number, peer in enumerate(sources)}
        peers = [_dump_peer(peer, self.speaker.router_id) for peer in sources]
        head = peer_index_table(self.speaker.router_id, "", peers)
        parts = [header(now, MrtType.TABLE_DUMP_V2, 1, head)]
        sequence = 0
        await trio.to_thread.run_sync(_write, partial, b"", "wb")
        for family in FAMILIES:
            prefixes = views.prefixes(family)
            for start in range(0, len(prefixes), CHUNK):
                for prefix in prefixes[start : start + CHUNK]:
                    entries = [
                        RibEntry(
                            index[route.peer],
                            int(now),
                            path_id,
                            table_attributes(route.attributes, route.next_hop, family),
                        )
                        for path_id, route in views.paths(family, prefix)
                        if route.peer in index
                    ]
                    if entries:
                        subtype, body = rib_record(sequence & 0xFFFFFFFF, family, prefix, entries)
                        parts.append(header(now, MrtType.TABLE_DUMP_V2, subtype, body))
                        sequence += 1
                data, parts = b"".join(parts), []
                await trio.to_thread.run_sync(_write, partial, data, "ab")
        await trio.to_thread.run_sync(_write, partial, b"".join(parts), "ab")
        os.replace(partial, path)
        return path


def _dump_peer(peer: PeerInfo, router_id: str) -> DumpPeer:
    if peer.local:  # our own routes: our BGP identifier, the unspecified address
        return DumpPeer(router_id, "0.0.0.0", peer.asn)
    return DumpPeer(peer.router_id, peer.address, peer.asn)


def _write(path: Path, data: bytes, mode: str) -> None:
    with open(path, mode) as out:
        out.write(data)


class UpdateLog:
    """BGP4MP records of what the sessions report (a SessionObserver), written in batches."""

    def __init__(self, config: MrtConfig, speaker: Speaker) -> None:
        self.config, self.speaker = config, speaker
        self._pending: list[bytes] = []
        self._wake = trio.Event()
        speaker.add_session_observer(self)

    def on_update(self, peer: Peer, update: Update) -> None:
        negotiated = peer.session.conn.negotiated
        if negotiated is None:
            return
        ctx = negotiated.context
        subtype, body = bgp4mp_message(
            peer_asn=negotiated.peer_asn,
            local_asn=self.speaker.asn,
            peer=peer.address,
            local=peer.session.local_address() or "0.0.0.0",
            message=update.encode(ctx),
            asn4=ctx.asn4,
            addpath=bool(ctx.addpath_rx),
        )
        self._add(subtype, body)

    def on_state(self, peer: Peer, old: State, new: State) -> None:
        subtype, body = bgp4mp_state(
            peer_asn=peer.config.peer_asn,
            local_asn=self.speaker.asn,
            peer=peer.address,
            local=peer.session.local_address() or peer.config.local_address or "0.0.0.0",
            old=_STATE_NUMBERS[old.value],
            new=_STATE_NUMBERS[new.value],
        )
        self._add(subtype, body)

    def _add(self, subtype: int, body: bytes) -> None:
        self._pending.append(header(time.time(), MrtType.BGP4MP_ET, subtype, body))
        self._wake.set()

    async def run(self) -> None:
        started = time.time()
        path = file_name(self.config.file, started)
        try:
            while True:
                with trio.move_on_after(FLUSH_SECONDS):
                    await self._wake.wait()
                self._wake = trio.Event()
                now = time.time()
                if self.config.interval and now - started >= self.config.interval:
                    started, path = now, file_name(self.config.file, now)
                await self._flush(path)
        finally:
            with trio.CancelScope(shield=True):
                await self._flush(path)

    async def _flush(self, path: Path) -> None:
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            await trio.to_thread.run_sync(_write, path, data, "ab")


def dumpers(configs: tuple[MrtConfig, ...], speaker: Speaker) -> list[TableDumper | UpdateLog]:
    """The configured dumps; made before the speaker runs, so that the update logs see its
    sessions from their first state change."""
    return [
        TableDumper(config, speaker) if config.type == "table" else UpdateLog(config, speaker)
        for config in configs
    ]
