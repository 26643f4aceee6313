"""The network layer, the only trio code in pybgp: BGP sockets (TCP MD5, TTL, GTSM), active
connections and the listener for passive ones."""

from pybgp.net.transport import (
    BGP_PORT,
    BgpListener,
    Handler,
    PeerOptions,
    open_bgp_connection,
    remote_address,
)

__all__ = [
    "BGP_PORT",
    "BgpListener",
    "Handler",
    "PeerOptions",
    "open_bgp_connection",
    "remote_address",
]
