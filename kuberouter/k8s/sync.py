"""The Kubernetes layer's trio task: reflector threads in, the typed store out.

`Watcher.run` starts one `Reflector` thread per kind and is the store's single writer:
the threads hand their results to it through one memory channel. It reports started
once every kind has been listed, or raises `CacheSyncTimeout` naming the kinds that were
not (and why) after `cache_sync_timeout` seconds (--cache-sync-timeout).

    store = Store()
    watcher = Watcher.from_options(options, store)
    await nursery.start(watcher.run)      # the caches are synced from here on
    changes = store.subscribe(["Pod"])    # then: snapshot = store.snapshot()
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio

from kuberouter.k8s import client
from kuberouter.k8s.store import Store
from kuberouter.k8s.watch import Backoff, KindStats, Message, Observed, Reflector
from kuberouter.options import Options

log = logging.getLogger(__name__)


class CacheSyncTimeout(TimeoutError):
    def __init__(self, kinds: dict[str, str], timeout: float) -> None:
        details = "; ".join(f"{kind} ({why})" for kind, why in sorted(kinds.items()))
        super().__init__(
            f"caches did not sync within {timeout:g}s (--cache-sync-timeout): {details}"
        )
        self.kinds = sorted(kinds)


class Watcher:
    """The Kubernetes layer's trio task: reflector threads in, the store out."""

    def __init__(
        self,
        api_client: client.ApiClient,
        store: Store | None = None,
        *,
        kinds: Iterable[str] = tuple(client.RESOURCES_BY_KIND),
        cache_sync_timeout: float = 60.0,
        backoff: Backoff | None = None,
        watch_timeout: tuple[int, int] = (300, 600),  # seconds, random in range (client-go)
    ) -> None:
        self.api_client = api_client
        self.store = store if store is not None else Store()
        self.kinds = tuple(kinds)
        self.cache_sync_timeout = cache_sync_timeout
        self._backoff, self._watch_timeout = backoff or Backoff(), watch_timeout
        self._synced: set[str] = set()
        self._all_synced = trio.Event()
        self.reflectors: dict[str, Reflector] = {}

    @classmethod
    def from_options(cls, options: Options, store: Store | None = None) -> Watcher:
        """The client from --kubeconfig / --master; --cache-sync-timeout bounds the sync."""
        api_client = client.load_api_client(options.kubeconfig or None, options.master or None)
        return cls(api_client, store, cache_sync_timeout=options.cache_sync_timeout)

    @property
    def stats(self) -> dict[str, KindStats]:
        return {kind: reflector.stats for kind, reflector in self.reflectors.items()}

    @property
    def synced(self) -> bool:
        return self._all_synced.is_set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[list[Message]](len(self.kinds) * 4)
        limiter = trio.CapacityLimiter(len(self.kinds))  # never starve other to_thread users
        unsynced: dict[str, str] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._consume, receive)
            for kind in self.kinds:
                reflector = self._reflector(kind, send.clone())
                nursery.start_soon(self._run_thread, reflector, limiter)
            send.close()
            with trio.move_on_after(self.cache_sync_timeout):
                await self._all_synced.wait()
            if self.synced:
                task_status.started()
            else:
                unsynced = {
                    kind: self._why(kind) for kind in self.kinds if kind not in self._synced
                }
                nursery.cancel_scope.cancel()
        if unsynced:
            raise CacheSyncTimeout(unsynced, self.cache_sync_timeout)

    def _reflector(self, kind: str, send: trio.MemorySendChannel[list[Message]]) -> Reflector:
        def deliver(messages: list[Message]) -> None:
            trio.from_thread.run(send.send, messages)

        reflector = Reflector(
            self.api_client, client.RESOURCES_BY_KIND[kind], deliver,
            backoff=self._backoff, watch_timeout=self._watch_timeout,
        )  # fmt: skip
        self.reflectors[kind] = reflector
        return reflector

    def _why(self, kind: str) -> str:
        error = self.reflectors[kind].stats.last_error
        return f"last error: {error}" if error else "no answer to its list yet"

    async def _run_thread(self, reflector: Reflector, limiter: trio.CapacityLimiter) -> None:
        try:
            await trio.to_thread.run_sync(
                reflector.run, abandon_on_cancel=True, limiter=limiter,
                thread_name=f"k8s-watch-{reflector.kind}",
            )  # fmt: skip
        finally:
            reflector.stop()

    async def _consume(self, receive: trio.MemoryReceiveChannel[list[Message]]) -> None:
        async with receive:
            async for messages in receive:
                for message in messages:
                    self._apply(message)

    def _apply(self, message: Message) -> None:
        if isinstance(message, Observed):
            self.store.apply(message.kind, message.key, message.value, message.received)
            return
        self.store.replace(message.kind, message.values)
        if message.kind not in self._synced:
            self._synced.add(message.kind)
            log.info("%s synced: %d objects", message.kind, len(message.values))
            if self._synced.issuperset(self.kinds):
                self._all_synced.set()
