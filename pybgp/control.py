"""pybgpd's control socket: one JSON object per line each way, over a Unix socket (mode 0600).

Request: {"command": "neighbors", ...arguments}. Reply: {"ok": true, "result": ...} or
{"ok": false, "error": "..."}. The daemon serves it with trio; the CLI uses a plain socket.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

DEFAULT_SOCKET = "/run/pybgpd.sock"
MAX_REQUEST = 1 << 20

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


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
                await stream.send_all(await _answer(line, handler))


async def _answer(line: bytes, handler: Handler) -> bytes:
    try:
        request = json.loads(line)
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return _reply_error('expected {"command": NAME, ...}')
        result = await handler(request)
    except json.JSONDecodeError:
        return _reply_error("request is not JSON")
    except ControlError as exc:
        return _reply_error(str(exc))
    return (json.dumps({"ok": True, "result": result}) + "\n").encode()


def _reply_error(message: str) -> bytes:
    return (json.dumps({"ok": False, "error": message}) + "\n").encode()


def request(path: str, command: str, timeout: float = 30.0, **arguments: Any) -> Any:
    """Send one request to the daemon and return its result (blocking; for the CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            raise ControlError(f"cannot reach pybgpd at {path}: {exc.strerror}") from None
        sock.sendall((json.dumps({"command": command, **arguments}) + "\n").encode())
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
