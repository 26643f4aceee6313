"""Two pybgp speakers in one program, peering over the loopback interface.

Speaker A (AS 65000) announces 10.1.0.0/24; speaker B (AS 65001) learns it and prints the
best-path change it is told about. No root needed. Run: python examples/two_speakers.py

Export is strict: a speaker advertises only what an export policy accepts. A's policy (the
same keys as pybgpd's TOML `[policy]` table) exports the routes it originates.
"""

from __future__ import annotations

import trio

from pybgp.api import Speaker
from pybgp.config import NeighborConfig, RouteConfig
from pybgp.policy.config import parse as parse_policy
from pybgp.wire.constants import IPV4_UNICAST

PORT = 17900  # an unprivileged port instead of 179
OWN_ROUTES = {
    "definitions": [
        {
            "name": "own-routes",
            "statements": [
                {"conditions": {"route_type": "local"}, "actions": {"disposition": "accept"}}
            ],
        }
    ],
    "attach": {"export": ["own-routes"]},
}


async def main() -> None:
    policy = parse_policy({"policy": OWN_ROUTES}).compile()
    a = Speaker(asn=65000, router_id="10.255.0.1", listen=["127.0.0.1"], port=PORT, policy=policy)
    b = Speaker(asn=65001, router_id="10.255.0.2")
    a.add_peer(
        NeighborConfig(address="127.0.0.2", peer_asn=65001, passive=True, families=(IPV4_UNICAST,))
    )
    b.add_peer(
        NeighborConfig(
            address="127.0.0.1",
            peer_asn=65000,
            port=PORT,
            local_address="127.0.0.2",
            families=(IPV4_UNICAST,),
            connect_retry=0.5,
        )
    )
    a.announce(RouteConfig(prefix="10.1.0.0/24", communities=(65000 << 16 | 100,)))
    learned = b.subscribe_best_paths()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            change = await learned.receive()
            hops = ", ".join(change.next_hops)
            print(f"B learned {change.prefix} via {hops}, AS path {change.as_path}")
            print("B's neighbours:", [(n["address"], n["state"]) for n in b.neighbors()])
            await a.shutdown()
            await b.shutdown()
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
