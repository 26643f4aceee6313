"""The routing controller gives a new speaker its plan before the speaker runs."""

from __future__ import annotations

from typing import Any

import trio

from kuberouter.controllers.routing import RoutingController
from kuberouter.dataplane.routes import FakeRoutes
from kuberouter.health import Health
from kuberouter.routing.kernel import LocalNetwork
from kuberouter.routing.plan import Planner
from kuberouter.routing.settings import RouterSettings
from pybgp.config import NeighborConfig, RouteConfig
from tests.kuberouter.routing.builders import node, store_of


class RecordingSpeaker:
    """What the controller asks of a speaker, in order (the part of Speaker it uses)."""

    def __init__(self, **settings: Any) -> None:
        self.settings, self.calls = settings, list[str]()
        self._best, self.best_paths = trio.open_memory_channel[Any](0)

    def add_peer(self, neighbor: NeighborConfig) -> None:
        self.calls.append(f"add_peer {neighbor.address}")

    def remove_peer(self, address: str) -> None:
        self.calls.append(f"remove_peer {address}")

    def announce(self, route: RouteConfig) -> None:
        self.calls.append(f"announce {route.prefix}")

    def withdraw(self, prefix: str) -> str:
        self.calls.append(f"withdraw {prefix}")
        return prefix

    def set_policy(self, policy: Any) -> None:
        self.calls.append("set_policy")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.calls.append("run")
        task_status.started()
        await trio.sleep_forever()

    def subscribe_best_paths(self) -> trio.MemoryReceiveChannel[Any]:
        return self.best_paths


async def test_the_speaker_knows_its_peers_and_routes_before_it_runs() -> None:
    # After a graceful restart the speaker defers the kernel until the peers it starts
    # with sent End-of-RIB: started with none, it would empty the kernel at once.
    store = store_of(
        node("n1", "10.0.0.1", "10.244.0.0/24"), node("n2", "10.0.0.2", "10.244.1.0/24")
    )
    made: list[RecordingSpeaker] = []

    def factory(**settings: Any) -> RecordingSpeaker:
        made.append(RecordingSpeaker(**settings))
        return made[-1]

    health = Health()
    health.register("routing", 300.0)
    controller = RoutingController(
        store, Planner("n1", RouterSettings()), FakeRoutes(LocalNetwork()), health,
        speaker_factory=factory,  # type: ignore[arg-type]
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        nursery.cancel_scope.cancel()
    [speaker] = made
    assert speaker.calls == ["set_policy", "add_peer 10.0.0.2", "announce 10.244.0.0/24", "run"]
    assert controller.sync is not None and controller.sync.counts.announced == 1
