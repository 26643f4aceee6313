"""BGP transport on trio: active connections and a listener that knows its peers.

`open_bgp_connection` opens one TCP connection to a peer with the socket options of that
peering (MD5 key, local address and port, multihop TTL or GTSM) set before connect().

`BgpListener` listens on several addresses (IPv4 and IPv6) and keeps the passive side's
configuration: for each configured neighbour address, or prefix of dynamic neighbours, a
`PeerOptions`. It keeps the kernel in step at run time:
- MD5 keys go onto every listening socket of the peer's family (one socket, a key per peer
  or prefix; the most specific one wins in the kernel, as in `lookup`);
- GTSM: listening sockets send SYN-ACKs with TTL 255 when some peer of their family uses
  GTSM, and drop SYNs below TTL 255 in the kernel (IP_MINTTL) when every peer of their family
  does. With peers of both kinds, the TTL of the saved SYN is checked after accept();
- accepted connections get their peer's TTL, GTSM minimum TTL and nothing else.
Connections from addresses matching no neighbour are reset at once and logged, at most once
per address per `refuse_log_interval` seconds.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket as _stdlib_socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import NoReturn

import attrs
import trio

from pybgp.net import sockopts
from pybgp.net.sockopts import IPAddress, IPNetwork
from pybgp.throttle import Throttle

log = logging.getLogger(__name__)

BGP_PORT = 179
Handler = Callable[[trio.SocketStream, IPAddress], Awaitable[object]]
_ACCEPT_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


def _optional_key(value: bytes | str | None) -> bytes | None:
    return None if value is None else sockopts.md5_key_bytes(value)


def _check_ttl(
    instance: PeerOptions, attribute: attrs.Attribute[int | None], ttl: int | None
) -> None:
    if ttl is not None and not 1 <= ttl <= 255:
        raise ValueError("ttl must be 1 to 255")
    if ttl is not None and instance.gtsm:
        raise ValueError("ttl and gtsm exclude each other (GTSM always sends with TTL 255)")


@attrs.frozen(kw_only=True)
class PeerOptions:
    """Socket options of one peering. The key never appears in repr() or logs."""

    md5_key: bytes | None = attrs.field(default=None, converter=_optional_key, repr=False)
    ttl: int | None = attrs.field(default=None, validator=_check_ttl)  # None: kernel default
    gtsm: bool = False

    def apply(self, sock: sockopts.SocketLike) -> None:
        """TTL and minimum TTL on a connecting or accepted socket (not the key)."""
        if self.gtsm:
            sockopts.set_gtsm(sock, True)
        else:
            sockopts.set_ttl(sock, self.ttl)
            sockopts.set_min_ttl(sock, 0)


def _family(address: IPAddress | IPNetwork) -> int:
    return _stdlib_socket.AF_INET if address.version == 4 else _stdlib_socket.AF_INET6


def _sockaddr(address: IPAddress, port: int) -> tuple[str, int]:
    return (str(address), port)


def _bound(sock: trio.socket.SocketType) -> tuple[str, int]:
    name = sock.getsockname()
    return (str(name[0]), int(name[1]))


async def _bind(
    sock: trio.socket.SocketType, address: IPAddress, port: int, freebind: bool
) -> None:
    if freebind:
        sockopts.set_freebind(sock)
    await sock.bind(_sockaddr(address, port))


async def open_bgp_connection(
    peer: str | IPAddress,
    port: int = BGP_PORT,
    *,
    local_address: str | IPAddress | None = None,
    local_port: int = 0,
    md5_key: bytes | str | None = None,
    ttl: int | None = None,
    gtsm: bool = False,
    freebind: bool = False,
    timeout: float = 10.0,
) -> trio.SocketStream:
    """Connect to a BGP peer (IPv4 or IPv6 literal) with the peering's socket options.

    Raises ValueError for bad options, TimeoutError when the handshake does not finish within
    `timeout` seconds (e.g. the peer drops our SYN for a wrong or missing MD5 key, or for
    GTSM), and OSError for other failures (refused, unreachable).
    """
    address = sockopts.parse_address(peer)
    options = PeerOptions(md5_key=md5_key, ttl=ttl, gtsm=gtsm)
    local = None if local_address is None else sockopts.parse_address(local_address)
    if local is not None and local.version != address.version:
        raise ValueError(f"local address {local} and peer {address} differ in family")
    sock = trio.socket.socket(_family(address), _stdlib_socket.SOCK_STREAM)
    try:
        if local_port:
            sockopts.set_reuseaddr(sock)
        if local is not None or local_port:
            bind_to = local or (
                ipaddress.IPv4Address(0) if address.version == 4 else ipaddress.IPv6Address(0)
            )
            await _bind(sock, bind_to, local_port, freebind)
        if options.md5_key is not None:
            sockopts.set_md5_key(sock, address, options.md5_key)
        options.apply(sock)
        with trio.move_on_after(timeout) as scope:
            await sock.connect(_sockaddr(address, port))
        if scope.cancelled_caught:
            raise TimeoutError(f"connection to {address} port {port} timed out")
    except BaseException:
        sock.close()
        raise
    log.debug("connected to %s port %d", address, port)
    return trio.SocketStream(sock)


def _is_host(network: IPNetwork) -> bool:
    return network.prefixlen == network.max_prefixlen


def remote_address(stream: trio.SocketStream) -> IPAddress:
    """The peer's address of a connected stream (IPv4-mapped IPv6 as IPv4)."""
    name: tuple[str, int] = stream.socket.getpeername()
    return sockopts.parse_address(name[0].partition("%")[0])


class BgpListener:
    """Listening sockets for passive BGP connections, with per-peer keys and an allow list.

    Configure with `set_peer` / `allow_prefix` (before or while serving), then
    `await nursery.start(listener.serve, addresses, port, handler)`. `handler(stream,
    address)` runs for each accepted connection from a configured neighbour.
    """

    def __init__(
        self, *, backlog: int = 128, freebind: bool = False, refuse_log_interval: float = 60.0
    ) -> None:
        self._backlog = backlog
        self._freebind = freebind
        self._peers: dict[IPAddress, PeerOptions] = {}
        self._prefixes: dict[IPNetwork, PeerOptions] = {}
        # Both as the kernel sees them: a neighbour's entry wins over a prefix of its host.
        self._entries: dict[IPNetwork, PeerOptions] = {}
        self._ttl_counts: dict[int, list[int]] = {}  # family -> [entries, GTSM entries]
        self._sockets: list[trio.socket.SocketType] = []
        self._refusals = Throttle(log, refuse_log_interval)

    # -- configuration -------------------------------------------------------------------

    def set_peer(
        self,
        address: str | IPAddress,
        *,
        md5_key: bytes | str | None = None,
        ttl: int | None = None,
        gtsm: bool = False,
    ) -> None:
        """Accept connections from `address`, with these options (replacing earlier ones)."""
        peer = sockopts.parse_address(address)
        self._peers[peer] = PeerOptions(md5_key=md5_key, ttl=ttl, gtsm=gtsm)
        log.debug("listener: neighbour %s configured", peer)
        self._changed(sockopts.parse_network(peer))

    def remove_peer(self, address: str | IPAddress) -> None:
        """Stop accepting `address` (connections already accepted are not touched)."""
        peer = sockopts.parse_address(address)
        if self._peers.pop(peer, None) is not None:
            log.debug("listener: neighbour %s removed", peer)
            self._changed(sockopts.parse_network(peer))

    def allow_prefix(
        self,
        prefix: str | IPNetwork,
        *,
        md5_key: bytes | str | None = None,
        ttl: int | None = None,
        gtsm: bool = False,
    ) -> None:
        """Accept dynamic neighbours from `prefix` (e.g. "10.0.0.0/24")."""
        network = sockopts.parse_network(prefix)
        self._prefixes[network] = PeerOptions(md5_key=md5_key, ttl=ttl, gtsm=gtsm)
        log.debug("listener: dynamic neighbours from %s allowed", network)
        self._changed(network)

    def disallow_prefix(self, prefix: str | IPNetwork) -> None:
        network = sockopts.parse_network(prefix)
        if self._prefixes.pop(network, None) is not None:
            log.debug("listener: dynamic neighbours from %s no longer allowed", network)
            self._changed(network)

    def lookup(self, address: str | IPAddress) -> PeerOptions | None:
        """The options for a connection from `address`: its neighbour entry, else the longest
        matching prefix, else None (refused)."""
        peer = sockopts.parse_address(address)
        found = self._peers.get(peer)
        if found is not None:
            return found
        matches = [n for n in self._prefixes if peer in n]
        return self._prefixes[max(matches, key=lambda n: n.prefixlen)] if matches else None

    @property
    def local_addresses(self) -> list[tuple[str, int]]:
        """(address, port) of each listening socket, e.g. to learn the port bound for port 0."""
        return [_bound(s) for s in self._sockets]

    # -- keeping the kernel in step -------------------------------------------------------

    def _changed(self, network: IPNetwork) -> None:
        """The entry for `network` changed: the listening sockets of its family are told
        about it alone, so configuring many neighbours one by one stays cheap."""
        old = self._entries.get(network)
        peer = self._peers.get(network.network_address) if _is_host(network) else None
        new = peer or self._prefixes.get(network)
        if new is None:
            self._entries.pop(network, None)
        else:
            self._entries[network] = new
        self._count(network, old, -1)
        self._count(network, new, 1)
        old_key = old.md5_key if old is not None else None
        new_key = new.md5_key if new is not None else None
        for sock in self._sockets:
            if sock.family != _family(network):
                continue
            if new_key is None and old_key is not None:
                sockopts.remove_md5_key(sock, network)
            elif new_key is not None and new_key != old_key:
                sockopts.set_md5_key(sock, network, new_key)
            self._apply_ttl(sock)

    def _count(self, network: IPNetwork, options: PeerOptions | None, step: int) -> None:
        if options is not None:
            counts = self._ttl_counts.setdefault(_family(network), [0, 0])
            counts[0] += step
            counts[1] += step if options.gtsm else 0

    def _apply_ttl(self, sock: trio.socket.SocketType) -> None:
        """SYN-ACKs with TTL 255 when some peer of the socket's family uses GTSM; SYNs
        below TTL 255 dropped by the kernel when every one does."""
        entries, gtsm = self._ttl_counts.get(sock.family, (0, 0))
        sockopts.set_ttl(sock, sockopts.GTSM_TTL if gtsm else None)
        sockopts.set_min_ttl(sock, sockopts.GTSM_TTL if entries and gtsm == entries else 0)

    def _install(self, socks: Sequence[trio.socket.SocketType]) -> None:
        """Every entry's key and the TTL settings on new listening sockets."""
        for sock in socks:
            for network, options in self._entries.items():
                if _family(network) == sock.family and options.md5_key is not None:
                    sockopts.set_md5_key(sock, network, options.md5_key)
            self._apply_ttl(sock)

    # -- serving ---------------------------------------------------------------------------

    async def _open(self, address: IPAddress, port: int) -> trio.socket.SocketType:
        sock = trio.socket.socket(_family(address), _stdlib_socket.SOCK_STREAM)
        try:
            sockopts.set_reuseaddr(sock)
            if address.version == 6:
                sockopts.set_v6only(sock)
            sockopts.enable_save_syn(sock)
            await _bind(sock, address, port, self._freebind)
            sock.listen(self._backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    async def serve(
        self,
        addresses: Iterable[str | IPAddress],
        port: int = BGP_PORT,
        handler: Handler | None = None,
        *,
        handler_nursery: trio.Nursery | None = None,
        task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Listen on `addresses` until cancelled; reports the bound (address, port) list.

        Each accepted connection from a configured neighbour runs `handler(stream, address)`
        in `handler_nursery` (default: a nursery of this task); without a handler, accepted
        connections are closed.
        """
        wanted = [sockopts.parse_address(a) for a in addresses]
        if not wanted:
            raise ValueError("no address to listen on")
        socks: list[trio.socket.SocketType] = []
        try:
            for address in wanted:
                socks.append(await self._open(address, port))
            self._sockets += socks
            self._install(socks)
            async with trio.open_nursery() as nursery:
                bound = [_bound(s) for s in socks]
                log.info("listening on %s", ", ".join(f"[{a}]:{p}" for a, p in bound))
                for sock in socks:
                    nursery.start_soon(
                        self._accept_loop,
                        trio.SocketListener(sock),
                        handler,
                        handler_nursery or nursery,
                    )
                task_status.started(bound)
                await trio.sleep_forever()
        finally:
            self._sockets = [s for s in self._sockets if s not in socks]
            for sock in socks:
                sock.close()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _accept_loop(
        self, listener: trio.SocketListener, handler: Handler | None, nursery: trio.Nursery
    ) -> NoReturn:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_RESOURCE_ERRORS:
                    raise
                log.error("accept failed (%s); pausing", errno.errorcode.get(exc.errno or 0))
                await trio.sleep(0.1)
                continue
            address = self._admit(stream)
            if address is None:
                continue
            if handler is None:
                await stream.aclose()
            else:
                nursery.start_soon(handler, stream, address)

    def _refused(self, address: IPAddress, reason: str) -> None:
        now = trio.current_time()
        self._refusals.log(
            now, address, logging.WARNING, "refused connection from %s: %s", address, reason
        )

    def _admit(self, stream: trio.SocketStream) -> IPAddress | None:
        """The peer's address if the connection may stay; otherwise reset it and return None."""
        sock = stream.socket
        try:
            address = remote_address(stream)
            syn_ttl = sockopts.saved_syn_ttl(sock)
            options = self.lookup(address)
            if options is None:
                self._refused(address, "not a configured neighbour")
            elif options.gtsm and syn_ttl is not None and syn_ttl < sockopts.GTSM_TTL:
                self._refused(address, f"GTSM: SYN arrived with TTL {syn_ttl}")
            else:
                options.apply(sock)
                log.debug("accepted connection from %s", address)
                return address
            sockopts.set_reset_on_close(sock)
        except OSError as exc:  # the peer went away between accept() and here
            log.debug("dropping accepted connection: %s", exc.strerror)
        sock.close()
        return None
