"""MRT records (RFC 6396 §2-§4, RFC 8050 §3-§4): the common header, the type and subtype
numbers, and reading records from a file as published (plain, gzip or bzip2)."""

from __future__ import annotations

import bz2
import enum
import gzip
import io
from collections.abc import Iterator
from typing import NamedTuple

HEADER_LEN = 12  # timestamp, type, subtype, length (§2)
MAX_RECORD = 1 << 24  # a sanity bound: no real record comes near it


class MrtType(enum.IntEnum):
    TABLE_DUMP = 12
    TABLE_DUMP_V2 = 13
    BGP4MP = 16
    BGP4MP_ET = 17  # a microsecond timestamp after the header (§3)


class TableDumpV2(enum.IntEnum):  # §4.3, RFC 8050 §3
    PEER_INDEX_TABLE = 1
    RIB_IPV4_UNICAST = 2
    RIB_IPV4_MULTICAST = 3
    RIB_IPV6_UNICAST = 4
    RIB_IPV6_MULTICAST = 5
    RIB_GENERIC = 6
    GEO_PEER_TABLE = 7
    RIB_IPV4_UNICAST_ADDPATH = 8
    RIB_IPV4_MULTICAST_ADDPATH = 9
    RIB_IPV6_UNICAST_ADDPATH = 10
    RIB_IPV6_MULTICAST_ADDPATH = 11
    RIB_GENERIC_ADDPATH = 12


class Bgp4mp(enum.IntEnum):  # §4.4, RFC 8050 §4
    STATE_CHANGE = 0
    MESSAGE = 1
    MESSAGE_AS4 = 4
    STATE_CHANGE_AS4 = 5
    MESSAGE_LOCAL = 6
    MESSAGE_AS4_LOCAL = 7
    MESSAGE_ADDPATH = 8
    MESSAGE_AS4_ADDPATH = 9
    MESSAGE_LOCAL_ADDPATH = 10
    MESSAGE_AS4_LOCAL_ADDPATH = 11


# The BGP FSM states as BGP4MP_STATE_CHANGE numbers them (§4.4.1).
STATES = {1: "Idle", 2: "Connect", 3: "Active", 4: "OpenSent", 5: "OpenConfirm", 6: "Established"}


class MrtError(ValueError):
    """A file that is not MRT, or a record that ends early: the message says where."""


class Record(NamedTuple):
    timestamp: float  # seconds; with microseconds for the _ET types
    type: int
    subtype: int
    body: bytes  # after the header (and the microsecond field)
    offset: int  # where the record starts in the (uncompressed) stream


def header(timestamp: float, mrt_type: int, subtype: int, body: bytes) -> bytes:
    """One record's header (§2); an _ET type gets the microseconds (§3)."""
    seconds = int(timestamp)
    if mrt_type == MrtType.BGP4MP_ET:
        micro = round((timestamp - seconds) * 1e6) % 1_000_000
        body = micro.to_bytes(4, "big") + body
    return (
        seconds.to_bytes(4, "big")
        + mrt_type.to_bytes(2, "big")
        + subtype.to_bytes(2, "big")
        + len(body).to_bytes(4, "big")
        + body
    )


def open_mrt(path: str) -> io.BufferedIOBase:
    """The file, uncompressed as it is read: gzip and bzip2 are recognised by their magic
    numbers, as RouteViews and RIPE RIS publish them."""
    with open(path, "rb") as probe:
        magic = probe.read(3)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"BZh":
        return bz2.open(path, "rb")
    return open(path, "rb")


def read_records(stream: io.BufferedIOBase) -> Iterator[Record]:
    """Each record of the stream, in order; MrtError for a truncated one."""
    offset = 0
    while True:
        head = stream.read(HEADER_LEN)
        if not head:
            return
        if len(head) < HEADER_LEN:
            raise MrtError(f"record at octet {offset}: header truncated ({len(head)} octets)")
        length = int.from_bytes(head[8:12], "big")
        if length > MAX_RECORD:
            raise MrtError(f"record at octet {offset}: length {length} (not an MRT file?)")
        body = stream.read(length)
        if len(body) < length:
            raise MrtError(f"record at octet {offset}: {length} octets announced, {len(body)} left")
        seconds = int.from_bytes(head[0:4], "big")
        mrt_type, subtype = int.from_bytes(head[4:6], "big"), int.from_bytes(head[6:8], "big")
        timestamp = float(seconds)
        if mrt_type == MrtType.BGP4MP_ET and length >= 4:
            timestamp += int.from_bytes(body[:4], "big") / 1e6
            body = body[4:]
        yield Record(timestamp, mrt_type, subtype, body, offset)
        offset += HEADER_LEN + length
