"""The agent's control socket (`pybgp --socket ...`) while its speaker cannot start."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from kuberouter.controllers.routing import RoutingController
from kuberouter.dataplane.routes import FakeRoutes
from kuberouter.health import Health
from kuberouter.routing.kernel import LocalNetwork
from kuberouter.routing.plan import Planner
from kuberouter.routing.settings import RouterSettings
from pybgp.control import ControlError, request
from tests.kuberouter.routing.builders import node, store_of


async def test_a_request_without_a_speaker_is_answered_and_the_controller_keeps_running(
    tmp_path: Path,
) -> None:
    # Without full mesh a node needs kube-router.io/node.asn: this one cannot run BGP.
    store = store_of(node("n1", "10.0.0.1", "10.244.0.0/24"))
    planner = Planner("n1", RouterSettings(full_mesh=False))
    health = Health()
    health.register("routing", 300.0)
    socket = str(tmp_path / "bgp.sock")
    controller = RoutingController(
        store, planner, FakeRoutes(LocalNetwork()), health, control_socket=socket
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        for _ in range(2):  # the first answer did not end the controller: a second one comes
            with pytest.raises(ControlError, match="the BGP speaker is not running"):
                await trio.to_thread.run_sync(lambda: request(socket, "neighbors", timeout=5.0))
        assert controller.speaker is None
        nursery.cancel_scope.cancel()
