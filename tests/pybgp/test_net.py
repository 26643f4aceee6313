"""pybgp.net against the real kernel: TCP MD5, GTSM, TTL and the listener's allow list.

Two network namespaces joined by a veth: the server side has 10.0.0.1 and fd00::1, the
client side 10.0.0.2-4 and fd00::2-3. Each side runs this module as a helper process under
`ip netns exec` (`python -m tests.pybgp.test_net server|client CONFIG`), so the pytest
process itself never changes namespace. The server echoes what it receives together with
the TTL and minimum TTL of the accepted socket; the client reports, for each attempt, "ok",
"timeout" (the SYN was dropped) or "closed" (accepted by the kernel, then reset).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import pytest
import trio

from pybgp.net import BgpListener, PeerOptions, open_bgp_connection, sockopts
from tests.netns import netns, run, veth_pair
from tests.support import require_root

ROOT = Path(__file__).resolve().parents[2]
SERVER_V4, SERVER_V6 = "10.0.0.1", "fd00::1"
KEY_A, KEY_B, KEY_C = "alpha-Secret-4711", "bravo-Secret-0815", "charlie-Secret-42"
ALL_KEYS = (KEY_A, KEY_B, KEY_C)
NEVER = 0.8  # seconds a connect may take before we call the SYN dropped


# -- helper processes (run inside a namespace) -------------------------------------------


async def _serve(config: dict[str, Any]) -> None:
    listener = BgpListener()
    for command in config["setup"]:
        _apply(listener, command)

    async def echo(stream: trio.SocketStream, address: sockopts.IPAddress) -> None:
        sock = stream.socket
        reply: dict[str, object] = {"ttl": sockopts.get_ttl(sock)}
        reply["min_ttl"] = sockopts.get_min_ttl(sock)
        with contextlib.suppress(trio.BrokenResourceError):
            async with stream:
                data = await stream.receive_some(100)
                reply |= {"from": str(address), "data": data.decode()}
                await stream.send_all(json.dumps(reply).encode())

    async with trio.open_nursery() as nursery:
        bound = await nursery.start(listener.serve, config["listen"], config["port"], echo)
        print("READY", json.dumps(bound), flush=True)
        stdin = trio.lowlevel.FdStream(os.dup(0))
        pending = b""
        while chunk := await stdin.receive_some():
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                _apply(listener, json.loads(line))
                print("OK", flush=True)
        nursery.cancel_scope.cancel()


def _apply(listener: BgpListener, command: dict[str, Any]) -> None:
    args = dict(command)
    getattr(listener, args.pop("op"))(**args)


async def _attempt(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        stream = await open_bgp_connection(**spec)
    except TimeoutError:
        return {"result": "timeout"}
    except OSError as exc:
        if exc.errno == errno.ECONNRESET:  # the server's reset came before connect() returned
            return {"result": "closed"}
        return {"result": "error", "errno": errno.errorcode.get(exc.errno or 0)}
    sock = stream.socket
    info = {"ttl": sockopts.get_ttl(sock), "min_ttl": sockopts.get_min_ttl(sock)}
    data = b""
    try:
        async with stream:
            with trio.fail_after(3):
                await stream.send_all(b"hello")
                while chunk := await stream.receive_some():
                    data += chunk
    except trio.BrokenResourceError:
        data = b""
    if not data:
        return {"result": "closed", **info}
    return {"result": "ok", "reply": json.loads(data), **info}


async def _connect(config: dict[str, Any]) -> None:
    results: list[dict[str, Any]] = [{} for _ in config["attempts"]]

    async def one(index: int, spec: dict[str, Any]) -> None:
        results[index] = await _attempt(spec)

    async with trio.open_nursery() as nursery:
        for index, spec in enumerate(config["attempts"]):
            nursery.start_soon(one, index, spec)
    print(json.dumps(results), flush=True)


def _helper_main(argv: list[str]) -> None:
    role, config = argv[0], json.loads(argv[1])
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")
    trio.run(_serve if role == "server" else _connect, config)


# -- the test side -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Net:
    server: str
    client: str


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    require_root()
    with (
        netns("bgps") as server,
        netns("bgpc") as client,
        veth_pair(server, "10.0.0.1/24", client, "10.0.0.2/24") as (dev_s, dev_c),
    ):
        run("ip", "-n", server, "addr", "add", "fd00::1/64", "dev", dev_s, "nodad")
        for addr in ("10.0.0.3/24", "10.0.0.4/24"):
            run("ip", "-n", client, "addr", "add", addr, "dev", dev_c)
        for addr in ("fd00::2/64", "fd00::3/64"):
            run("ip", "-n", client, "addr", "add", addr, "dev", dev_c, "nodad")
        yield Net(server=server, client=client)


def _helper(ns: str, role: str, config: dict[str, Any]) -> list[str]:
    return [
        "ip", "netns", "exec", ns, sys.executable, "-m", "tests.pybgp.test_net",
        role, json.dumps(config),
    ]  # fmt: skip


@attrs.define
class Server:
    proc: subprocess.Popen[str]
    stderr: IO[str]
    log: str = ""

    def command(self, op: str, **kwargs: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        assert self._line() == "OK"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert ready, "server helper did not answer"
        return self.proc.stdout.readline().strip()


@contextlib.contextmanager
def serving(net: Net, *setup: dict[str, Any], port: int = 179) -> Iterator[Server]:
    """The server helper with the listener configured by `setup` commands."""
    config = {"listen": [SERVER_V4, SERVER_V6], "port": port, "setup": list(setup)}
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            _helper(net.server, "server", config),
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
        server = Server(proc, stderr)
        try:
            line = server._line()
            assert line.startswith("READY"), line
            yield server
        finally:
            try:
                proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            stderr.seek(0)
            server.log = stderr.read()
        assert proc.returncode == 0, server.log


def connect(net: Net, *attempts: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the attempts at once from the client namespace; one result each."""
    done = subprocess.run(
        _helper(net.client, "client", {"attempts": list(attempts)}),
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not any(key in done.stderr for key in ALL_KEYS), "a key was logged"
    results: list[dict[str, Any]] = json.loads(done.stdout.splitlines()[-1])
    return results


def attempt(
    local: str, key: str | None = None, *, ttl: int | None = None, gtsm: bool = False
) -> dict[str, Any]:
    peer = SERVER_V6 if ":" in local else SERVER_V4
    return {
        "peer": peer, "local_address": local, "md5_key": key, "ttl": ttl, "gtsm": gtsm,
        "timeout": NEVER,
    }  # fmt: skip


def peer(address: str, key: str | None = None, **options: Any) -> dict[str, Any]:
    return {"op": "set_peer", "address": address, "md5_key": key, **options}


def outcomes(results: list[dict[str, Any]]) -> list[str]:
    return [r["result"] for r in results]


def tcp_counters(ns: str) -> dict[str, int]:
    """The namespace's TcpExt counters (TCPMD5Failure, TCPMinTTLDrop, ...)."""
    lines = run("cat", "/proc/net/netstat", netns=ns).stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=True))
    raise AssertionError("no TcpExt counters")


@contextlib.contextmanager
def counting(ns: str) -> Iterator[dict[str, int]]:
    """Yields a dict that holds, on exit, how much each TcpExt counter grew."""
    grown: dict[str, int] = {}
    before = tcp_counters(ns)
    yield grown
    grown.update((k, v - before.get(k, 0)) for k, v in tcp_counters(ns).items())


def assert_no_key_logged(server: Server) -> None:
    assert server.log, "the server helper logged nothing at all"
    assert not any(key in server.log for key in ALL_KEYS), "a key was logged"


# -- without the kernel ------------------------------------------------------------------


def test_md5sig_struct_layout() -> None:
    option, raw = sockopts.encode_md5sig(sockopts.parse_address("192.0.2.7"), b"k" * 80)
    assert option == sockopts.TCP_MD5SIG == 14
    assert len(raw) == sockopts.MD5SIG_LEN == 128 + 1 + 1 + 2 + 4 + 80
    family, port = struct.unpack_from("=HH", raw, 0)
    assert (family, port) == (socket.AF_INET, 0)
    assert raw[4:8] == bytes([192, 0, 2, 7]) and raw[8:128] == bytes(120)
    flags, prefixlen, keylen, ifindex = struct.unpack_from("=BBHi", raw, 128)
    assert (flags, prefixlen, keylen, ifindex) == (0, 0, 80, 0)
    assert raw[136:] == b"k" * 80

    option, raw = sockopts.encode_md5sig(sockopts.parse_network("2001:db8::/48"), b"key")
    assert option == sockopts.TCP_MD5SIG_EXT == 32
    family, port, flowinfo = struct.unpack_from("=HHI", raw, 0)
    assert (family, port, flowinfo) == (socket.AF_INET6, 0, 0)
    assert raw[8:24] == bytes.fromhex("20010db8") + bytes(12)
    assert struct.unpack_from("=BBHi", raw, 128) == (sockopts.TCP_MD5SIG_FLAG_PREFIX, 48, 3, 0)
    assert raw[136:139] == b"key" and raw[139:] == bytes(77)

    _, raw = sockopts.encode_md5sig(sockopts.parse_address("::ffff:10.1.2.3"), None)
    assert struct.unpack_from("=H", raw, 0) == (socket.AF_INET,)  # mapped becomes IPv4
    assert struct.unpack_from("=H", raw, 130) == (0,)  # key length 0: delete


@pytest.mark.parametrize("key", ["", "x" * 81])
def test_md5_key_length_checked_without_echoing_it(key: str) -> None:
    with pytest.raises(ValueError, match="1 to 80 octets") as info:
        sockopts.md5_key_bytes(key)
    assert key == "" or key not in str(info.value)


def test_peer_options() -> None:
    options = PeerOptions(md5_key=KEY_A, ttl=2)
    assert options.md5_key == KEY_A.encode()
    assert KEY_A not in repr(options)
    with pytest.raises(ValueError, match="exclude"):
        PeerOptions(ttl=2, gtsm=True)
    with pytest.raises(ValueError, match="1 to 255"):
        PeerOptions(ttl=0)


@pytest.mark.trio
async def test_connect_rejects_bad_options_before_any_socket() -> None:
    with pytest.raises(ValueError, match="differ in family"):
        await open_bgp_connection("192.0.2.1", local_address="2001:db8::1")
    with pytest.raises(ValueError, match="exclude"):
        await open_bgp_connection("192.0.2.1", ttl=3, gtsm=True)


def test_listener_lookup_and_logs_without_keys(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pybgp.net")
    listener = BgpListener()
    listener.allow_prefix("10.0.0.0/8", md5_key=KEY_A)
    listener.allow_prefix("10.1.0.0/16", ttl=3)
    listener.set_peer("10.1.2.3", md5_key=KEY_B, gtsm=True)
    listener.set_peer("::ffff:10.9.9.9", md5_key=KEY_C)
    assert listener.lookup("10.1.2.3") == PeerOptions(md5_key=KEY_B, gtsm=True)
    assert listener.lookup("10.1.9.9") == PeerOptions(ttl=3)
    assert listener.lookup("10.2.0.1") == PeerOptions(md5_key=KEY_A)
    assert listener.lookup("10.9.9.9") == PeerOptions(md5_key=KEY_C)
    assert listener.lookup("192.0.2.1") is None
    listener.remove_peer("10.1.2.3")
    listener.disallow_prefix("10.1.0.0/16")
    assert listener.lookup("10.1.2.3") == PeerOptions(md5_key=KEY_A)
    assert "10.1.2.3" in caplog.text
    assert not any(key in caplog.text for key in ALL_KEYS)


def test_listener_configured_one_neighbour_at_a_time_stays_cheap() -> None:
    """A route reflector or a large mesh configures its neighbours one by one: each call
    touches its own entry only (when each one went over all of them, 3,000 took minutes)."""
    listener = BgpListener()
    started = time.perf_counter()
    for n in range(3000):
        listener.set_peer(f"10.{n >> 8}.{n & 255}.1", md5_key=KEY_A if n % 2 else None)
    listener.remove_peer("10.0.1.1")
    assert time.perf_counter() - started < 2.0
    assert listener.lookup("10.11.183.1") == PeerOptions(md5_key=KEY_A)
    assert listener.lookup("10.0.1.1") is None


# -- in network namespaces ---------------------------------------------------------------


@pytest.mark.privileged
def test_md5_right_key_connects_wrong_or_missing_key_never(net: Net) -> None:
    with (
        serving(net, peer("10.0.0.2", KEY_A), peer("10.0.0.3")) as server,
        counting(net.server) as grown,
    ):
        results = connect(
            net,
            attempt("10.0.0.2", KEY_A),
            attempt("10.0.0.2", KEY_B),
            attempt("10.0.0.2"),
            attempt("10.0.0.3", KEY_A),  # signed, but the listener expects no key from .3
        )
    assert outcomes(results) == ["ok", "timeout", "timeout", "timeout"]
    assert results[0]["reply"]["data"] == "hello"
    assert results[0]["reply"]["from"] == "10.0.0.2"
    # The kernel dropped each SYN for the reason we meant (counters may count retransmits).
    assert grown["TCPMD5Failure"] >= 1  # wrong key
    assert grown["TCPMD5NotFound"] >= 1  # key expected, none sent
    assert grown["TCPMD5Unexpected"] >= 1  # key sent, none expected
    assert_no_key_logged(server)


@pytest.mark.privileged
def test_one_listener_carries_a_key_per_peer(net: Net) -> None:
    setup = (peer("10.0.0.2", KEY_A), peer("10.0.0.3", KEY_B), peer("10.0.0.4", KEY_C))
    with serving(net, *setup) as server:
        results = connect(
            net,
            attempt("10.0.0.2", KEY_A),
            attempt("10.0.0.3", KEY_B),
            attempt("10.0.0.4"),
            attempt("10.0.0.3", KEY_A),  # another peer's key
        )
    assert outcomes(results) == ["ok", "ok", "timeout", "timeout"]
    assert [r["reply"]["from"] for r in results[:2]] == ["10.0.0.2", "10.0.0.3"]
    assert_no_key_logged(server)


@pytest.mark.privileged
def test_ipv6_transport_with_md5(net: Net) -> None:
    with serving(net, peer("fd00::2", KEY_A), peer("fd00::3", KEY_B), peer("10.0.0.2", KEY_C)):
        results = connect(
            net,
            attempt("fd00::2", KEY_A),
            attempt("fd00::3", KEY_B),
            attempt("fd00::2", KEY_B),
            attempt("fd00::3"),
            attempt("10.0.0.2", KEY_C),  # the IPv4 listener beside it on the same port
        )
    assert outcomes(results) == ["ok", "ok", "timeout", "timeout", "ok"]
    assert results[0]["reply"]["from"] == "fd00::2"


@pytest.mark.privileged
def test_keys_added_and_removed_at_run_time(net: Net) -> None:
    with serving(net, peer("10.0.0.2")) as server:
        assert outcomes(connect(net, attempt("10.0.0.2"), attempt("10.0.0.2", KEY_A))) == [
            "ok",
            "timeout",
        ]
        server.command("set_peer", address="10.0.0.2", md5_key=KEY_A)
        assert outcomes(connect(net, attempt("10.0.0.2"), attempt("10.0.0.2", KEY_A))) == [
            "timeout",
            "ok",
        ]
        server.command("remove_peer", address="10.0.0.2")
        # No key for .2 any more: a signed SYN is dropped, an unsigned one refused by the filter.
        assert outcomes(connect(net, attempt("10.0.0.2", KEY_A), attempt("10.0.0.2"))) == [
            "timeout",
            "closed",
        ]
    assert_no_key_logged(server)


@pytest.mark.privileged
def test_unconfigured_address_refused_configured_prefix_accepted(net: Net) -> None:
    setup = (
        peer("10.0.0.2"),
        {"op": "allow_prefix", "prefix": "10.0.0.4/30"},
        {"op": "allow_prefix", "prefix": "fd00::2/127", "md5_key": KEY_C},
    )
    with serving(net, *setup) as server:
        results = connect(
            net,
            attempt("10.0.0.2"),
            attempt("10.0.0.4"),
            attempt("10.0.0.3"),
            attempt("10.0.0.3"),
            attempt("fd00::3", KEY_C),  # dynamic neighbour with the prefix's key
            attempt("fd00::2"),
        )
    assert outcomes(results) == ["ok", "ok", "closed", "closed", "ok", "timeout"], results
    assert results[1]["reply"]["from"] == "10.0.0.4"
    refusals = [line for line in server.log.splitlines() if "refused connection" in line]
    assert len(refusals) == 1, refusals  # logged once, rate-limited
    assert "10.0.0.3" in refusals[0]
    assert_no_key_logged(server)


@pytest.mark.privileged
def test_gtsm_listener_drops_syn_below_255(net: Net) -> None:
    with (
        serving(net, peer("10.0.0.2", gtsm=True), peer("fd00::2", gtsm=True)),
        counting(net.server) as grown,
    ):
        results = connect(
            net,
            attempt("10.0.0.2", gtsm=True),
            attempt("10.0.0.2", ttl=254),
            attempt("fd00::2", gtsm=True),
            attempt("fd00::2", ttl=254),
        )
    assert outcomes(results) == ["ok", "timeout", "ok", "timeout"]
    assert grown["TCPMinTTLDrop"] >= 2  # IP_MINTTL and IPV6_MINHOPCOUNT on the listeners
    for ok in (results[0], results[2]):
        assert (ok["ttl"], ok["min_ttl"]) == (255, 255)
        assert (ok["reply"]["ttl"], ok["reply"]["min_ttl"]) == (255, 255)


@pytest.mark.privileged
def test_gtsm_beside_other_peers_checks_the_saved_syn(net: Net) -> None:
    # One GTSM peer and one that is not: the listener cannot drop low-TTL SYNs for all, so
    # the TTL of the SYN is checked after accept() and the GTSM peer's connection reset.
    with serving(net, peer("10.0.0.2", gtsm=True), peer("10.0.0.3")) as server:
        results = connect(
            net,
            attempt("10.0.0.2", gtsm=True),
            attempt("10.0.0.2", ttl=254),
            attempt("10.0.0.3"),
        )
    assert outcomes(results) == ["ok", "closed", "ok"], results
    assert (results[0]["reply"]["ttl"], results[0]["reply"]["min_ttl"]) == (255, 255)
    assert results[2]["reply"]["min_ttl"] == 0
    assert "GTSM: SYN arrived with TTL 254" in server.log


@pytest.mark.privileged
def test_multihop_ttl_is_set_on_both_sides(net: Net) -> None:
    with serving(net, peer("10.0.0.2", ttl=9), peer("fd00::2", ttl=9)):
        results = connect(net, attempt("10.0.0.2", ttl=5), attempt("fd00::2", ttl=5))
    assert outcomes(results) == ["ok", "ok"]
    for ok in results:
        assert (ok["ttl"], ok["min_ttl"]) == (5, 0)  # getsockopt on the connecting socket
        assert (ok["reply"]["ttl"], ok["reply"]["min_ttl"]) == (9, 0)  # the accepted one


if __name__ == "__main__":
    _helper_main(sys.argv[1:])
