"""pybgp.Speaker over loopback (no root needed): dynamic neighbours are accepted from their
prefix, anyone else is refused, and routes flow once the session is up."""

from __future__ import annotations

import pytest
import trio

from pybgp.api import Speaker
from pybgp.config import NeighborConfig, RouteConfig, parse
from pybgp.wire.constants import IPV4_UNICAST

PORT = 17901


def listener_config() -> Speaker:
    config = parse(
        {
            "global": {
                "asn": 65000,
                "router_id": "10.255.0.1",
                "listen": ["127.0.0.1"],
                "port": PORT,
            },
            "dynamic_neighbors": [{"prefix": "127.0.0.0/30", "peer_asn": 65001}],
            "routes": [{"prefix": "10.1.0.0/24"}],
            "policy": {"attach": {"default_export": "accept"}},
        }
    )
    return Speaker.from_config(config)


def dialer(source: str, router_id: str) -> Speaker:
    speaker = Speaker(asn=65001, router_id=router_id)
    speaker.add_peer(
        NeighborConfig(
            address="127.0.0.1",
            peer_asn=65000,
            port=PORT,
            local_address=source,
            families=(IPV4_UNICAST,),
            connect_retry=0.2,
        )
    )
    return speaker


async def test_dynamic_neighbour_from_its_prefix_and_no_one_else() -> None:
    hub = listener_config()
    inside, outside = dialer("127.0.0.2", "10.255.0.2"), dialer("127.0.0.9", "10.255.0.9")
    learned = inside.subscribe_best_paths()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for speaker in (hub, inside, outside):
                await nursery.start(speaker.run)
            change = await learned.receive()
            assert (change.prefix, change.next_hops) == ("10.1.0.0/24", ("127.0.0.1",))
            await trio.sleep(1)  # the outsider has had several tries
            states = {n["address"]: n["state"] for n in hub.neighbors()}
            assert states == {"127.0.0.2": "Established"}  # a dynamic neighbour, created on accept
            assert outside.neighbors()[0]["state"] != "Established"
            # The hub originates a route at run time; the dynamic neighbour gets it.
            hub.announce(RouteConfig(prefix="10.2.0.0/24"))
            assert (await learned.receive()).prefix == "10.2.0.0/24"
            nursery.cancel_scope.cancel()


def test_unknown_neighbour_is_a_clear_error_in_every_view() -> None:
    """What `pybgp neighbor ADDR` and friends print for an address that is not configured
    (the control socket turns a ValueError into its reply)."""
    speaker = Speaker(asn=65000, router_id="10.255.0.1")
    calls = [
        lambda: speaker.neighbors("10.9.9.9"),
        lambda: speaker.explain_json("10.1.0.0/24", "10.9.9.9"),
        lambda: speaker.reset_peer("10.9.9.9"),
        lambda: speaker.remove_peer("10.9.9.9"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"^no neighbor 10\.9\.9\.9$"):
            call()
