"""ADD-PATH end to end between pybgp speakers over loopback (no root needed): a hub with two
paths for a prefix (from two feeders) sends both to a receiver that announced ADD-PATH
receive (`add_path_send`, `add_path_receive`), under distinct path ids; the receiver keeps
both and runs its decision process over them; a feeder's withdrawal takes one path away."""

from __future__ import annotations

from typing import Any

import trio

from pybgp.api import Speaker
from pybgp.config import parse

PORT = 17911
PREFIX = "10.9.0.0/24"
EXPORT_ALL = {"attach": {"default_export": "accept"}}


def speaker(asn: int, router_id: str, neighbors: list[dict[str, Any]], **extra: Any) -> Speaker:
    document = {
        "global": {"asn": asn, "router_id": router_id, **extra},
        "neighbors": [{"families": ["ipv4-unicast"], "connect_retry": 0.2, **n} for n in neighbors],
        "policy": EXPORT_ALL,
    }
    return Speaker.from_config(parse(document))


def to_hub(local: str, **keys: Any) -> dict[str, Any]:
    return {"address": "127.0.0.1", "peer_asn": 65000, "port": PORT, "local_address": local, **keys}


async def wait_paths(receiver: Speaker, count: int) -> list[dict[str, Any]]:
    while True:
        paths = receiver.rib_json("ipv4", PREFIX)
        if len(paths) == count:
            return paths
        await trio.sleep(0.05)


async def test_two_paths_go_out_with_add_path_and_come_in_as_two() -> None:
    hub = speaker(
        65000,
        "10.255.0.1",
        [
            {"address": "127.0.0.2", "peer_asn": 65001, "passive": True},
            {"address": "127.0.0.3", "peer_asn": 65002, "passive": True},
            {"address": "127.0.0.4", "peer_asn": 65004, "passive": True, "add_path_send": 2},
        ],
        listen=["127.0.0.1"],
        port=PORT,
    )
    feeders = [
        speaker(65001, "10.255.0.2", [to_hub("127.0.0.2")]),
        speaker(65002, "10.255.0.3", [to_hub("127.0.0.3")]),
    ]
    receiver = speaker(65004, "10.255.0.4", [to_hub("127.0.0.4", add_path_receive=True)])
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for each in (hub, *feeders, receiver):
                await nursery.start(each.run)
            for feeder in feeders:
                feeder.announce_json({"prefix": PREFIX})
            paths = await wait_paths(receiver, 2)
            assert {p["as_path"] for p in paths} == {"65000 65001", "65000 65002"}
            assert {p["peer"] for p in paths} == {"127.0.0.1"}
            assert sorted(p["path_id"] for p in paths) == [1, 2]  # ids as the hub sent them
            # Both from the hub: the decision process ends at the attribute octets.
            assert [(p["as_path"], p["best"]) for p in paths] == [
                ("65000 65001", True),
                ("65000 65002", False),
            ]
            sent = hub.neighbors("127.0.0.4")[0]["families"]["ipv4-unicast"]["advertised"]
            assert sent == 2
            received = receiver.neighbors("127.0.0.1")[0]["families"]["ipv4-unicast"]
            assert (received["received"], received["accepted"]) == (2, 2)
            feeders[0].withdraw(PREFIX)  # the best path goes: the other one stays, now best
            (left,) = await wait_paths(receiver, 1)
            assert (left["as_path"], left["best"]) == ("65000 65002", True)
            nursery.cancel_scope.cancel()
