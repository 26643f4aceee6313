"""The incremental compiler equals a compile from scratch, and recompiles only what
a change touches."""

from __future__ import annotations

import random

from kuberouter.model import EndpointSlice, Service
from kuberouter.proxy.incremental import IncrementalCompiler, compile_all
from kuberouter.proxy.state import NodeFacts
from tests.kuberouter.proxy.builders import endpoint, service, slice_of
from tests.kuberouter.proxy.flows import config

NODE = NodeFacts(name="node-1", addresses=("192.168.0.1",), pod_cidrs=("10.1.0.0/16",))


def _random_objects(rng: random.Random) -> tuple[dict[str, Service], dict[str, EndpointSlice]]:
    services: dict[str, Service] = {}
    slices: dict[str, EndpointSlice] = {}
    for number in range(rng.randint(0, 6)):
        name = f"s{number}"
        services[f"ns/{name}"] = service(
            name, f"10.96.0.{number + 1}", internalTrafficPolicy=rng.choice(["Cluster", "Local"])
        )
    for number in range(rng.randint(0, 8)):
        owner = f"s{rng.randint(0, 7)}"  # some slices belong to no Service (yet)
        eps = [
            endpoint(f"10.1.{number}.{index}", rng.choice(["node-1", "node-2"]),
                     ready=rng.random() < 0.7, terminating=rng.random() < 0.3)
            for index in range(rng.randint(0, 3))
        ]  # fmt: skip
        found = slice_of(owner, *eps, name=f"slice{number}")
        slices[found.key] = found
    return services, slices


def test_any_sequence_of_changes_ends_where_a_full_compile_does() -> None:
    rng = random.Random(7)
    for _ in range(60):
        compiler = IncrementalCompiler(NODE, config())
        services: dict[str, Service] = {}
        slices: dict[str, EndpointSlice] = {}
        for _ in range(rng.randint(1, 5)):
            new_services, new_slices = _random_objects(rng)
            for key in set(services) | set(new_services):
                compiler.set_service(key, new_services.get(key))
            for key in set(slices) | set(new_slices):
                compiler.set_slice(key, new_slices.get(key))
            services, slices = new_services, new_slices
            incremental = compiler.state()
            reference = compile_all(NODE, config(), services, slices)
            assert dict(incremental.services) == dict(reference.services)


def test_one_slice_change_recompiles_one_service_and_keeps_the_other_plans() -> None:
    compiler = IncrementalCompiler(NODE, config())
    for number in range(50):
        compiler.set_service(f"ns/s{number}", service(f"s{number}", f"10.96.1.{number}"))
        compiler.set_slice(
            f"ns/s{number}-x", slice_of(f"s{number}", endpoint("10.1.0.1"), name=f"s{number}-x")
        )
    before = compiler.state()
    compiled = compiler.compiled
    compiler.set_slice("ns/s7-x", slice_of("s7", endpoint("10.1.0.2"), name="s7-x"))
    after = compiler.state()
    assert compiler.compiled == compiled + 1
    changed = [key for key in after.services if after.services[key] is not before.services[key]]
    assert changed == ["ns/s7"]


def test_node_addresses_and_pod_cidrs_recompile_nothing() -> None:
    compiler = IncrementalCompiler(NODE, config())
    compiler.set_service("ns/a", service("a", "10.96.0.1"))
    compiler.state()
    compiled = compiler.compiled
    moved = NodeFacts(name="node-1", addresses=("192.168.0.9",), pod_cidrs=("10.2.0.0/16",))
    compiler.set_node(moved)
    assert compiler.state().node == moved
    assert compiler.compiled == compiled
