"""The control socket: JSON lines, mode 0600, errors as replies."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import trio

from pybgp.control import ControlError, request, serve_control


async def handler(req: dict[str, Any]) -> Any:
    if req["command"] == "echo":
        return req.get("value")
    raise ControlError(f"unknown command {req['command']!r}")


async def test_request_reply_and_permissions(tmp_path: Path) -> None:
    path = str(tmp_path / "ctl.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, path, handler)
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
        result = await trio.to_thread.run_sync(lambda: request(path, "echo", value=[1, "x"]))
        assert result == [1, "x"]
        with pytest.raises(ControlError, match="unknown command 'nope'"):
            await trio.to_thread.run_sync(lambda: request(path, "nope"))
        nursery.cancel_scope.cancel()
    assert not Path(path).exists()  # removed on the way out


def test_unreachable_daemon(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="cannot reach pybgpd"):
        request(str(tmp_path / "none.sock"), "neighbors")
