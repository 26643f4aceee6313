"""Fixtures for the watch layer: a real test API server (HTTPS + token) and running watchers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from kuberouter.k8s import Backoff, Change, Watcher, load_api_client
from kuberouter.k8s.client import ApiClient
from kuberouter.testing import serve
from kuberouter.testing.apiserver import ApiServer

REPO = Path(__file__).resolve().parents[3]
BASIC = REPO / "fixtures" / "k8s" / "basic-cluster.yaml"
EXTRA = REPO / "fixtures" / "k8s" / "watch-cluster.yaml"
MALFORMED = REPO / "fixtures" / "k8s" / "malformed.yaml"
TOKEN = "watch-token-0123456789"
FAST = Backoff(initial=0.05, cap=0.4)  # retries in tests come quickly


@pytest.fixture
def srv() -> Iterator[ApiServer]:
    with serve(token=TOKEN, seed=[BASIC, EXTRA], bookmark_interval=0.2) as server:
        yield server


@pytest.fixture
def kubeconfig(srv: ApiServer, tmp_path: Path) -> Path:
    return srv.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[ApiClient]:
    api = load_api_client(str(kubeconfig), None)
    yield api
    api.close()


@pytest.fixture
def make_watcher(api_client: ApiClient) -> Callable[..., Watcher]:
    def make(**options: Any) -> Watcher:
        defaults: dict[str, Any] = {"backoff": FAST, "cache_sync_timeout": 10.0}
        return Watcher(api_client, **(defaults | {"watch_timeout": (20, 30)} | options))

    return make


@asynccontextmanager
async def running(watcher: Watcher) -> AsyncIterator[Watcher]:
    """The watcher running, its caches synced, for the duration of the block."""
    async with trio.open_nursery() as nursery:
        await nursery.start(watcher.run)
        yield watcher
        nursery.cancel_scope.cancel()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def receive(changes: trio.MemoryReceiveChannel[Change], count: int) -> list[Change]:
    """The next `count` changes (failing after 5 s)."""
    with trio.fail_after(5):
        return [await changes.receive() for _ in range(count)]


async def settle(watcher: Watcher) -> None:
    """Wait until everything the threads delivered has been applied to the store."""
    await trio.sleep(0.3)  # longer than a bookmark interval: anything in flight has arrived
    await trio.testing.wait_all_tasks_blocked()


def pending(changes: trio.MemoryReceiveChannel[Change]) -> list[Change]:
    found = []
    while True:
        try:
            found.append(changes.receive_nowait())
        except trio.WouldBlock:
            return found


def elapsed_since(began: float) -> float:
    return time.monotonic() - began
