"""`cluster load -f`: create (or replace) Services, EndpointSlices, NetworkPolicies... in a box."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kuberouter.cluster import server
from kuberouter.cluster.api import Api, ApiError, collection, read_manifests
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import Topology

Say = Callable[[str], None]


def load(name: str, state_dir: Path, files: Sequence[str], say: Say = print) -> None:
    documents = read_manifests(files)
    for obj in documents:
        collection(obj)  # every kind known before the first write
    state = State.load(state_dir)
    if state is None:
        raise ApiError(f"no cluster {name!r}: no state in {state_dir}")
    topology = Topology.of(state)
    api = Api(server.kubeconfig_path(state), topology.fabric_netns)
    for obj in documents:
        outcome = api.apply(obj)
        say(f"{obj['kind'].lower()}/{obj['metadata']['name']} {outcome}")
