"""A hostile BGP peer, for the soak test: it does what an attacker holding one configured
peering would do, as fast as the other side lets it.

    python -m tests.pybgp.hostile_peer --local 10.0.9.2 --target 10.0.9.1 --asn 65066 \
        --peer-asn 65000 --seconds 60 --seed 7 --stats stats.json

Several dialers per target address connect again and again, and a listener on port 179 takes
the target's own connections, so connections collide. On each connection a script drawn at
random runs: stop after the TCP handshake, after the OPEN, after the KEEPALIVE, or after some
UPDATEs (IPv4 NLRI and IPv6 MP_REACH/MP_UNREACH, withdrawals, End-of-RIB), ending with a FIN,
a RST, a NOTIFICATION, a ROUTE-REFRESH, or waiting for the target to hang up. Any message may
be corrupted: bits flipped, bytes rewritten, the body truncated or grown (with the header's
length fixed up or not), a random attribute inserted. Counts of what was done go to --stats
as JSON, so the test can check the attack really happened.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ipaddress
import json
import random
import socket
import struct
from pathlib import Path
from typing import Any

import trio

from pybgp.wire.capabilities import (
    EnhancedRouteRefresh,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
    RouteRefresh,
)
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.keepalive import KEEPALIVE_MESSAGE
from pybgp.wire.message import message_from_json
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open

CTX = CodecContext(asn4=True, ibgp=False)
HEADER = 19
ENDINGS = ("fin", "rst", "notification", "route-refresh", "wait")


class Attack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.stats: collections.Counter[str] = collections.Counter()

    # -- messages ----------------------------------------------------------------------------

    def open_message(self) -> bytes:
        families = [IPV4_UNICAST, IPV6_UNICAST]
        caps: list[Any] = [Multiprotocol(family=f) for f in families if self.rng.random() < 0.9]
        caps += [FourOctetAS(asn=self.args.asn), RouteRefresh()]
        if self.rng.random() < 0.5:
            caps.append(EnhancedRouteRefresh())
        if self.rng.random() < 0.3:
            caps.append(GracefulRestart(restart_time=self.rng.randrange(1, 120)))
        hold = self.rng.choice((0, 3, 9, 90, 65535))
        message = Open.build(
            asn=self.args.asn, hold_time=hold, bgp_id=self.args.router_id, capabilities=caps
        )
        return message.encode(CTX)

    def update_message(self) -> bytes:
        rng = self.rng
        first = [self.args.asn] if rng.random() < 0.9 else [rng.randrange(1, 2**32)]
        path = [{"type": "sequence", "asns": [*first, rng.randrange(1, 65535)]}]
        if rng.random() < 0.1:
            path.append({"type": "set", "asns": [rng.randrange(1, 65535) for _ in range(3)]})
        attributes: dict[str, Any] = {"origin": rng.choice(("igp", "egp", "incomplete"))}
        attributes["as_path"] = path
        if rng.random() < 0.3:
            attributes["communities"] = [f"{rng.randrange(65536)}:{rng.randrange(65536)}"]
        if rng.random() < 0.2:
            attributes["med"] = rng.randrange(2**32)
        body: dict[str, Any] = {"type": "UPDATE", "withdrawn": [], "nlri": []}
        kind = rng.random()
        if kind < 0.45:
            attributes["next_hop"] = self.args.local if ":" not in self.args.local else "10.0.9.2"
            body["nlri"] = self.prefixes(4)
        elif kind < 0.8:
            next_hop = self.args.local if ":" in self.args.local else "fd09::2"
            attributes["mp_reach_nlri"] = {
                "family": "ipv6-unicast",
                "next_hop": [next_hop],
                "nlri": self.prefixes(6),
            }
        elif kind < 0.9:
            body["withdrawn"] = self.prefixes(4)
            attributes = {}
        elif kind < 0.97:
            attributes = {"mp_unreach_nlri": {"family": "ipv6-unicast", "nlri": self.prefixes(6)}}
        else:
            attributes = {}  # End-of-RIB for IPv4
        body["attributes"] = attributes
        return message_from_json(body, CTX).encode(CTX)

    def prefixes(self, version: int) -> list[str]:
        count = self.rng.randrange(1, 20)
        if version == 4:
            base = int(ipaddress.IPv4Address("100.64.0.0"))
            return [str(ipaddress.IPv4Network((base + (self.rng.randrange(16384) << 8), 24)))
                    for _ in range(count)]  # fmt: skip
        base6 = int(ipaddress.IPv6Address("2001:db8:6600::"))
        return [str(ipaddress.IPv6Network((base6 + (self.rng.randrange(65536) << 64), 64)))
                for _ in range(count)]  # fmt: skip

    def notification(self) -> bytes:
        data = self.rng.randbytes(self.rng.randrange(0, 40))
        code, subcode = self.rng.randrange(0, 8), self.rng.randrange(0, 12)
        return Notification(code=code, subcode=subcode, data=data).encode(CTX)

    def route_refresh(self) -> bytes:
        afi, safi, subtype = self.rng.choice((1, 2, 3)), self.rng.choice((1, 2, 128)), 0
        subtype = self.rng.choice((0, 1, 2, 7))
        body = struct.pack("!HBB", afi, subtype, safi)
        return b"\xff" * 16 + struct.pack("!HB", HEADER + len(body), 5) + body

    def maybe_corrupt(self, message: bytes) -> bytes:
        if self.rng.random() >= self.args.corruption:
            return message
        self.stats["corrupted"] += 1
        return corrupt(self.rng, message)

    # -- connections ------------------------------------------------------------------------

    async def run(self) -> None:
        with trio.move_on_after(self.args.seconds):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.listen)
                for _ in range(self.args.dialers):
                    nursery.start_soon(self.dial_forever)

    async def dial_forever(self) -> None:
        while True:
            family = socket.AF_INET6 if ":" in self.args.target else socket.AF_INET
            sock = trio.socket.socket(family, socket.SOCK_STREAM)
            try:
                await sock.bind((self.args.local, 0))
                with trio.fail_after(2):
                    await sock.connect((self.args.target, self.args.port))
                self.stats["dialled"] += 1
                with trio.move_on_after(10):
                    await self.converse(trio.SocketStream(sock))
            except (OSError, trio.TooSlowError):
                self.stats["dial_failed"] += 1
                await trio.sleep(0.01)
            finally:
                sock.close()
            if self.rng.random() < 0.005:
                await trio.sleep(3)  # quiet for a while: the target dials us meanwhile

    async def listen(self) -> None:
        family = socket.AF_INET6 if ":" in self.args.local else socket.AF_INET
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind((self.args.local, self.args.port))
        sock.listen(16)
        async with trio.open_nursery() as nursery:
            while True:
                conn, _ = await sock.accept()
                self.stats["accepted"] += 1
                nursery.start_soon(self.converse_and_close, trio.SocketStream(conn))

    async def converse_and_close(self, stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(5):
                await self.converse(stream)
        finally:
            stream.socket.close()

    async def converse(self, stream: trio.SocketStream) -> None:
        """One connection: a random script, then a random ending."""
        rng = self.rng
        stage = rng.choice(("tcp", "open", "keepalive", "updates", "updates", "updates"))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.drain, stream, nursery.cancel_scope)
                if stage != "tcp":
                    await self.send(stream, self.open_message(), "open")
                if stage in ("keepalive", "updates"):
                    await trio.sleep(rng.choice((0, 0, 0.01, 0.05)))
                    await self.send(stream, KEEPALIVE_MESSAGE, "keepalive")
                if stage == "updates":
                    for _ in range(rng.randrange(1, 60)):
                        await self.send(stream, self.update_message(), "update")
                        if rng.random() < 0.1:
                            await trio.sleep(0.01)
                await self.end(stream, rng.choice(ENDINGS))
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.stats["broken_by_target"] += 1

    async def send(self, stream: trio.SocketStream, message: bytes, kind: str) -> None:
        await stream.send_all(self.maybe_corrupt(message))
        self.stats[f"sent_{kind}"] += 1

    async def end(self, stream: trio.SocketStream, how: str) -> None:
        self.stats[f"end_{how}"] += 1
        if how == "rst":
            linger = struct.pack("ii", 1, 0)
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        elif how == "notification":
            await self.send(stream, self.notification(), "notification")
        elif how == "route-refresh":
            await self.send(stream, self.route_refresh(), "route_refresh")
            await trio.sleep(0.05)
        elif how == "wait":
            await trio.sleep(self.rng.choice((0.1, 0.5, 2)))

    async def drain(self, stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        """Read what the target sends (so its writes never block on us), noting its
        NOTIFICATIONs; when it hangs up, the script ends."""
        buffer = bytearray()
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            while data := await stream.receive_some(65536):
                buffer += data
                while len(buffer) >= HEADER:
                    length = max(HEADER, int.from_bytes(buffer[16:18], "big"))
                    if len(buffer) < length:
                        break
                    self.stats[f"received_type_{buffer[18]}"] += 1
                    if buffer[18] == 3 and length >= HEADER + 2:
                        self.stats[f"notification_{buffer[19]}_{buffer[20]}"] += 1
                    del buffer[:length]
        scope.cancel()


def corrupt(rng: random.Random, message: bytes) -> bytes:
    """One random corruption of an encoded message."""
    data = bytearray(message)
    how = rng.choice(("flip", "rewrite", "truncate", "grow", "attribute"))
    if how == "flip":
        for _ in range(rng.randrange(1, 9)):
            bit = rng.randrange(len(data) * 8)
            data[bit // 8] ^= 1 << (bit % 8)
    elif how == "rewrite":
        for _ in range(rng.randrange(1, 5)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == "truncate":
        data = data[: rng.randrange(0, len(data))]
    elif how == "grow":
        data += rng.randbytes(rng.randrange(1, 64))
    elif how == "attribute" and len(data) > HEADER + 4 and data[18] == 2:
        data = insert_attribute(rng, data)
    if len(data) >= HEADER and rng.random() < 0.6:
        data[16:18] = min(len(data), 65535).to_bytes(2, "big")  # the header agrees
    return bytes(data)


def insert_attribute(rng: random.Random, data: bytearray) -> bytearray:
    """A random path attribute at the front of an UPDATE's attributes, lengths fixed up."""
    withdrawn = int.from_bytes(data[HEADER : HEADER + 2], "big")
    at = HEADER + 2 + withdrawn
    if at + 2 > len(data):
        return data
    value = rng.randbytes(rng.choice((0, 1, 2, 4, 8, rng.randrange(0, 300))))
    flags = rng.randrange(256)
    kind = rng.choice((rng.randrange(256), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 32, 35))
    if flags & 0x10:
        attribute = bytes((flags, kind)) + len(value).to_bytes(2, "big") + value
    else:
        value = value[:255]
        attribute = bytes((flags, kind, len(value))) + value
    total = int.from_bytes(data[at : at + 2], "big") + len(attribute)
    return data[:at] + (total & 0xFFFF).to_bytes(2, "big") + attribute + data[at + 2 :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", required=True, help="our address (connections come from it)")
    parser.add_argument("--target", required=True, help="the speaker under attack")
    parser.add_argument("--port", type=int, default=179)
    parser.add_argument("--asn", type=int, required=True)
    parser.add_argument("--router-id", default="10.66.66.66")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dialers", type=int, default=3)
    parser.add_argument("--corruption", type=float, default=0.3, help="share of messages hit")
    parser.add_argument("--stats", type=Path, required=True)
    args = parser.parse_args()
    attack = Attack(args)
    trio.run(attack.run)
    args.stats.write_text(json.dumps(dict(attack.stats), sort_keys=True))


if __name__ == "__main__":
    main()
