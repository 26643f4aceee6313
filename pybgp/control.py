"""pybgpd's control socket: one JSON object per line each way, over a Unix socket (mode 0600).

Request: {"command": "neighbors", ...arguments}. Reply: {"ok": true, "result": ...} or
{"ok": false, "error": "..."}. A streaming reply (`Stream`, e.g. `monitor`) is one line
{"ok": true, "event": ...} per event as it happens, until the client closes the connection.
The daemon serves it with trio; the CLI uses a plain socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import trio

DEFAULT_SOCKET = "/run/pybgpd.sock"
MAX_REQUEST = 1 << 20

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
Emit = Callable[[Any], Awaitable[None]]


class Stream:
    """A handler's streaming reply: `run(emit)` calls `emit` once per event, one call at a
    time, for as long as the client stays; it is cancelled when the client goes."""

    def __init__(self, run: Callable[[Emit], Awaitable[None]]) -> None:
        self.run = run


class ControlError(Exception):
    """The daemon refused a request, or could not be reached."""


async def serve_control(
    path: str,
    handler: Handler,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve requests on `path` until cancelled; only the owner (root) may connect."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_socket():
        target.unlink()  # left by a daemon that did not stop cleanly
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # created 0600: no window where others could connect
    try:
        await sock.bind(path)
    finally:
        os.umask(old_umask)
    sock.listen(16)
    listener = trio.SocketListener(sock)

    async def serve_one(stream: trio.SocketStream) -> None:
        await _serve_client(stream, handler)

    task_status.started()
    try:
        await trio.serve_listeners(serve_one, [listener])
    finally:
        with trio.CancelScope(shield=True):
            target.unlink(missing_ok=True)


async def _serve_client(stream: trio.abc.Stream, handler: Handler) -> None:
    buffer = b""
    async with stream:
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            if len(buffer) > MAX_REQUEST:
                await stream.send_all(_reply_error("request too large"))
                return
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                answer = await _answer(line, handler)
                if isinstance(answer, Stream):
                    await _stream_events(stream, answer)
                    return  # a stream is the connection's last reply
                await stream.send_all(answer)


async def _stream_events(stream: trio.abc.Stream, reply: Stream) -> None:
    """Send the stream's events until the client closes its end (or the connection breaks).
    `emit` is the only writer here; the other task only reads, to notice the client going."""

    async def emit(event: Any) -> None:
        await stream.send_all((json.dumps({"ok": True, "event": event}) + "\n").encode())

    async with trio.open_nursery() as nursery:

        async def until_closed() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while await stream.receive_some(4096):
                    pass
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_closed)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await reply.run(emit)
        nursery.cancel_scope.cancel()


async def _answer(line: bytes, handler: Handler) -> bytes | Stream:
    try:
        request = json.loads(line)
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return _reply_error('expected {"command": NAME, ...}')
        result = await handler(request)
        if isinstance(result, Stream):
            return result
    except json.JSONDecodeError:
        return _reply_error("request is not JSON")
    except ControlError as exc:
        return _reply_error(str(exc))
    return (json.dumps({"ok": True, "result": result}) + "\n").encode()


def _reply_error(message: str) -> bytes:
    return (json.dumps({"ok": False, "error": message}) + "\n").encode()


def _connect(path: str, timeout: float | None, command: str, arguments: Any) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall((json.dumps({"command": command, **arguments}) + "\n").encode())
    except OSError as exc:
        sock.close()
        raise ControlError(f"cannot reach pybgpd at {path}: {exc.strerror}") from None
    return sock


def request_stream(path: str, command: str, **arguments: Any) -> Generator[Any, None, None]:
    """Send a streaming request and yield its events as they come (blocking; for the CLI);
    closing the generator closes the connection, which ends the stream on the daemon."""
    with _connect(path, None, command, arguments) as sock, sock.makefile("rb") as lines:
        for line in lines:
            reply = json.loads(line)
            if not reply.get("ok"):
                raise ControlError(str(reply.get("error")))
            yield reply.get("event")
    raise ControlError("pybgpd closed the connection")


def request(path: str, command: str, timeout: float = 30.0, **arguments: Any) -> Any:
    """Send one request to the daemon and return its result (blocking; for the CLI)."""
    with _connect(path, timeout, command, arguments) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ControlError("pybgpd closed the connection without answering")
            data += chunk
    reply = json.loads(data)
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error")))
    return reply.get("result")
