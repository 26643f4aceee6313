"""Bidirectional Forwarding Detection (RFC 5880) for BGP neighbours, single hop (RFC 5881).

`packet` and `session` are sans-IO (bytes and `now` in, packets and state changes out);
`driver` is the trio part: UDP sockets, TTL checks, timers.
"""

from pybgp.bfd.packet import BfdPacketError, BfdState, ControlPacket, Diag
from pybgp.bfd.session import BfdConfig, BfdSession, BfdStateChanged

__all__ = [
    "BfdConfig",
    "BfdPacketError",
    "BfdSession",
    "BfdState",
    "BfdStateChanged",
    "ControlPacket",
    "Diag",
]
