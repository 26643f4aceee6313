"""Socket options a BGP speaker needs on Linux, as small functions over any socket object.

- TCP MD5 signatures (RFC 2385): `TCP_MD5SIG` takes `struct tcp_md5sig` from
  <linux/tcp.h>: a 128-octet `sockaddr_storage` holding the peer address (family in host
  order, port 0), then `u8 flags`, `u8 prefixlen`, `u16 keylen`, `int ifindex` and
  `u8 key[80]` (216 octets in all). A key length of 0 deletes the key. `TCP_MD5SIG_EXT`
  with `TCP_MD5SIG_FLAG_PREFIX` keys a whole prefix (dynamic neighbours). On a listening
  socket every key is kept per peer address or prefix, and accepted sockets inherit the key
  of their peer; SYNs that lack a required signature, or carry one where none is expected,
  are dropped by the kernel.
- TTL: `IP_TTL` / `IPV6_UNICAST_HOPS` (eBGP multihop), -1 restores the route's default.
- GTSM (RFC 5082 §3): send with TTL 255 and drop anything that arrives below
  `IP_MINTTL` / `IPV6_MINHOPCOUNT` 255.
- `TCP_SAVE_SYN` / `TCP_SAVED_SYN`: the kernel keeps the IP and TCP headers of the SYN
  that opened an accepted connection, so the TTL it arrived with can be checked per peer.

Keys are secrets: nothing here logs them or puts them in an exception message.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from typing import Protocol

# <linux/tcp.h>
TCP_MD5SIG = 14
TCP_MD5SIG_EXT = 32
TCP_MD5SIG_MAXKEYLEN = 80
TCP_MD5SIG_FLAG_PREFIX = 0x1
TCP_SAVE_SYN = 27
TCP_SAVED_SYN = 28
# <linux/in.h>, <linux/in6.h>
IP_FREEBIND = 15
IP_MINTTL = 21
IPV6_MINHOPCOUNT = 73
IPV6_FREEBIND = 78

GTSM_TTL = 255  # RFC 5082 §3: send with the maximum TTL, accept only what arrives with it
SOCKADDR_STORAGE_LEN = 128
_MD5SIG = struct.Struct(f"={SOCKADDR_STORAGE_LEN}sBBHi{TCP_MD5SIG_MAXKEYLEN}s")
MD5SIG_LEN = _MD5SIG.size  # 216
_SAVED_SYN_MAX = 512  # IP header (with options) + TCP header (with options) fit easily

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SocketLike(Protocol):
    """What these functions use of a socket: `socket.socket` and `trio.socket.SocketType`."""

    @property
    def family(self) -> int: ...

    def setsockopt(self, level: int, optname: int, value: int | bytes, /) -> None: ...

    def getsockopt(self, level: int, optname: int, buflen: int, /) -> bytes: ...


def parse_address(value: str | IPAddress) -> IPAddress:
    """An IP address literal (no name resolution); IPv4-mapped IPv6 becomes IPv4."""
    address = ipaddress.ip_address(value) if isinstance(value, str) else value
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(value: str | IPAddress | IPNetwork) -> IPNetwork:
    """A prefix such as "10.0.0.0/24" (host bits must be zero); an address is its host route."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if isinstance(value, str) and "/" in value:
        return ipaddress.ip_network(value)
    return ipaddress.ip_network(parse_address(value))


def md5_key_bytes(key: bytes | str) -> bytes:
    """A key as octets (text is UTF-8), 1 to 80 octets long."""
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if not 1 <= len(raw) <= TCP_MD5SIG_MAXKEYLEN:
        raise ValueError(f"TCP MD5 key must be 1 to {TCP_MD5SIG_MAXKEYLEN} octets long")
    return raw


def _sockaddr(address: IPAddress) -> bytes:
    """`struct sockaddr_in` / `sockaddr_in6` with port 0, padded to `sockaddr_storage`."""
    if isinstance(address, ipaddress.IPv4Address):
        raw = struct.pack("=HH4s", socket.AF_INET, 0, address.packed)
    else:
        raw = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, address.packed, 0)
    return raw.ljust(SOCKADDR_STORAGE_LEN, b"\0")


def encode_md5sig(peer: IPAddress | IPNetwork, key: bytes | None) -> tuple[int, bytes]:
    """(option name, `struct tcp_md5sig`) that sets `key` for `peer`, or deletes it if None.

    A host address uses `TCP_MD5SIG`; a shorter prefix `TCP_MD5SIG_EXT` with the prefix flag.
    """
    network = parse_network(peer)
    raw_key = b"" if key is None else md5_key_bytes(key)
    if network.prefixlen == network.max_prefixlen:
        option, flags, prefixlen = TCP_MD5SIG, 0, 0
    else:
        option, flags, prefixlen = TCP_MD5SIG_EXT, TCP_MD5SIG_FLAG_PREFIX, network.prefixlen
    addr = _sockaddr(network.network_address)
    return option, _MD5SIG.pack(addr, flags, prefixlen, len(raw_key), 0, raw_key)


def _check_family(sock: SocketLike, address: IPAddress | IPNetwork) -> None:
    expected = socket.AF_INET if address.version == 4 else socket.AF_INET6
    if sock.family != expected:
        raise ValueError(f"IPv{address.version} peer {address} on a socket of another family")


def set_md5_key(sock: SocketLike, peer: str | IPAddress | IPNetwork, key: bytes | str) -> None:
    """Require RFC 2385 signatures with `key` for `peer` (an address, or a prefix).

    On a listening socket this adds one entry to its key list; on a connecting socket call
    it before connect().
    """
    network = parse_network(peer)
    _check_family(sock, network)
    option, value = encode_md5sig(network, md5_key_bytes(key))
    sock.setsockopt(socket.IPPROTO_TCP, option, value)


def remove_md5_key(sock: SocketLike, peer: str | IPAddress | IPNetwork) -> None:
    """Delete the key for `peer` (address or prefix); a key that is not there is no error."""
    network = parse_network(peer)
    _check_family(sock, network)
    option, value = encode_md5sig(network, None)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _is_v4(sock: SocketLike) -> bool:
    return sock.family == socket.AF_INET


def set_ttl(sock: SocketLike, ttl: int | None) -> None:
    """Outgoing TTL (hop limit for IPv6); None restores the kernel's default."""
    if ttl is not None and not 1 <= ttl <= 255:
        raise ValueError("TTL must be 1 to 255")
    value = -1 if ttl is None else ttl
    if _is_v4(sock):
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, value)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, value)


def get_ttl(sock: SocketLike) -> int:
    """The outgoing TTL (hop limit) the socket sends with."""
    if _is_v4(sock):
        return _get_int(sock, socket.IPPROTO_IP, socket.IP_TTL)
    return _get_int(sock, socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)


def set_min_ttl(sock: SocketLike, min_ttl: int) -> None:
    """Drop segments arriving with a lower TTL (hop limit); 0 turns the check off."""
    if not 0 <= min_ttl <= 255:
        raise ValueError("minimum TTL must be 0 to 255")
    if _is_v4(sock):
        sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, min_ttl)


def get_min_ttl(sock: SocketLike) -> int:
    if _is_v4(sock):
        return _get_int(sock, socket.IPPROTO_IP, IP_MINTTL)
    return _get_int(sock, socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT)


def set_gtsm(sock: SocketLike, enabled: bool) -> None:
    """RFC 5082: send with TTL 255 and accept only TTL 255, or undo both."""
    set_ttl(sock, GTSM_TTL if enabled else None)
    set_min_ttl(sock, GTSM_TTL if enabled else 0)


def set_reuseaddr(sock: SocketLike) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def set_v6only(sock: SocketLike) -> None:
    """IPv6 sockets carry IPv6 only, so "::" and "0.0.0.0" can both listen on one port."""
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


def set_freebind(sock: SocketLike) -> None:
    """Allow binding to an address not (yet) configured on this host."""
    if _is_v4(sock):
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)


def set_reset_on_close(sock: SocketLike) -> None:
    """Linger 0: close() sends RST and leaves no TIME_WAIT behind (for refused peers)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def enable_save_syn(sock: SocketLike) -> None:
    """On a listener: keep each SYN's IP and TCP headers for `saved_syn_ttl`."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 1)


def saved_syn_ttl(sock: SocketLike) -> int | None:
    """The TTL (hop limit) the SYN of this accepted connection arrived with, read once.

    None when the listener did not save it (e.g. a SYN cookie completed the handshake).
    """
    try:
        header = sock.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, _SAVED_SYN_MAX)
    except OSError:
        return None
    if len(header) >= 20 and header[0] >> 4 == 4:
        return header[8]  # IPv4 header: Time to Live
    if len(header) >= 40 and header[0] >> 4 == 6:
        return header[7]  # IPv6 header: Hop Limit
    return None


def _get_int(sock: SocketLike, level: int, option: int) -> int:
    value: int = struct.unpack("i", sock.getsockopt(level, option, 4))[0]
    return value
