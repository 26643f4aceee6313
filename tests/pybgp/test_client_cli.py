"""`pybgp` as gobgp users type it, against two Speakers peering over loopback (no root): the
hub serves pybgpd's control socket and the real `pybgp` command reads it. `-j` after the
subcommand, `neighbor ADDR adj-in|adj-out`, `monitor` (table and JSON lines), and no
traceback when the reader of the output goes away."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from pybgp.api import Speaker
from pybgp.cli import build_parser
from pybgp.config import NeighborConfig, RouteConfig, parse
from pybgp.control import request_stream, serve_control
from pybgp.daemon import handle
from pybgp.policy.config import parse as parse_policy
from pybgp.speaker.subscribers import Subscribers
from pybgp.wire.constants import IPV4_UNICAST

PORT = 17931
HUB, LEAF = "127.0.0.1", "127.0.0.2"
PYBGP = [sys.executable, "-m", "pybgp.cli"]


def hub_speaker() -> Speaker:
    """AS 65000: originates 10.1.0.0/24 and 10.9.0.0/24, sends the leaf all but 10.9/24 and
    takes all it sends but 10.3/24."""
    prefix_sets = [
        {"name": "secret", "prefixes": ["10.9.0.0/24"]},
        {"name": "unwanted", "prefixes": ["10.3.0.0/24"]},
    ]
    definitions = [
        {
            "name": "out",
            "statements": [
                {"conditions": {"prefix_set": "secret"}, "actions": {"disposition": "reject"}},
                {"actions": {"disposition": "accept"}},
            ],
        },
        {
            "name": "in",
            "statements": [
                {"conditions": {"prefix_set": "unwanted"}, "actions": {"disposition": "reject"}}
            ],
        },
    ]
    config = parse(
        {
            "global": {"asn": 65000, "router_id": "10.255.0.1", "listen": [HUB], "port": PORT},
            "neighbors": [
                {"address": LEAF, "peer_asn": 65001, "passive": True, "families": ["ipv4-unicast"]}
            ],
            "routes": [{"prefix": "10.1.0.0/24"}, {"prefix": "10.9.0.0/24"}],
            "policy": {
                "prefix_sets": prefix_sets,
                "definitions": definitions,
                "attach": {"export": ["out"], "import": ["in"]},
            },
        }
    )
    return Speaker.from_config(config)


def leaf_speaker() -> Speaker:
    """AS 65001: sends the hub 10.2.0.0/24 and 10.3.0.0/24."""
    policy = parse_policy({"policy": {"attach": {"default_export": "accept"}}}).compile()
    leaf = Speaker(asn=65001, router_id="10.255.0.2", policy=policy)
    leaf.add_peer(
        NeighborConfig(
            address=HUB,
            peer_asn=65000,
            port=PORT,
            local_address=LEAF,
            families=(IPV4_UNICAST,),
            connect_retry=0.2,
        )
    )
    for prefix in ("10.2.0.0/24", "10.3.0.0/24"):
        leaf.announce(RouteConfig(prefix=prefix))
    return leaf


async def pybgp(socket: Path, *args: str) -> str:
    done = await trio.run_process(
        [*PYBGP, "--socket", str(socket), *args], capture_stdout=True, capture_stderr=True
    )
    assert done.stderr == b""
    return done.stdout.decode()


async def wait_for(condition: Any, timeout: float = 15) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.1)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Speaker, Speaker, Path]]:
    hub, leaf = hub_speaker(), leaf_speaker()
    socket = tmp_path / "pybgpd.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await nursery.start(serve_control, str(socket), lambda req: handle(hub, req))
        await nursery.start(leaf.run)
        yield hub, leaf, socket
        nursery.cancel_scope.cancel()


def test_json_goes_before_or_after_the_subcommand() -> None:
    parser = build_parser()
    for words in (["neighbor"], ["rib"], ["policy"], ["monitor"]):
        assert parser.parse_args(["-j", *words]).json
        assert parser.parse_args([*words, "-j"]).json
        assert not parser.parse_args(words).json
    assert parser.parse_args(["neighbor", LEAF, "adj-in", "-j", "-a", "ipv4"]).json


async def test_adj_in_and_adj_out(pair: tuple[Speaker, Speaker, Path]) -> None:
    hub, leaf, socket = pair
    await wait_for(lambda: {"10.1.0.0/24"} <= set(leaf.loc_rib(IPV4_UNICAST)))
    await wait_for(lambda: "10.2.0.0/24" in hub.loc_rib(IPV4_UNICAST))

    received = json.loads(await pybgp(socket, "neighbor", LEAF, "adj-in", "-j"))
    assert {r["prefix"]: r["accepted"] for r in received} == {
        "10.2.0.0/24": True,
        "10.3.0.0/24": False,  # rejected by the import policy, still shown as received
    }
    assert {(r["next_hop"], r["as_path"]) for r in received} == {(LEAF, "65001")}

    sent = json.loads(await pybgp(socket, "-j", "neighbor", LEAF, "adj-out", "-a", "ipv4"))
    # Not 10.9/24 (export policy), not 10.2/24 (it came from the leaf): what the leaf has.
    assert [r["prefix"] for r in sent] == ["10.1.0.0/24"]
    assert (sent[0]["next_hop"], sent[0]["as_path"]) == (HUB, "65000")
    assert set(leaf.loc_rib(IPV4_UNICAST)) - {"10.2.0.0/24", "10.3.0.0/24"} == {"10.1.0.0/24"}

    table = await pybgp(socket, "neighbor", LEAF, "adj-in")
    lines = table.splitlines()
    assert lines[0].split() == ["Network", "Next", "Hop", "AS_PATH", "Attrs"]
    assert lines[1].split()[:3] == ["*", "10.2.0.0/24", LEAF]
    assert lines[2].split()[:3] == ["x", "10.3.0.0/24", LEAF]  # x: the import policy said no
    empty = await pybgp(socket, "neighbor", LEAF, "adj-out", "-a", "ipv6")
    assert empty.split() == ["Network", "Next", "Hop", "AS_PATH", "Attrs"]


async def test_adj_rib_errors_name_what_is_wrong(pair: tuple[Speaker, Speaker, Path]) -> None:
    _, _, socket = pair
    done = await trio.run_process(
        [*PYBGP, "--socket", str(socket), "neighbor", "10.9.9.9", "adj-in"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert (done.returncode, done.stderr.decode()) == (1, "pybgp: no neighbor 10.9.9.9\n")
    done = await trio.run_process(
        [*PYBGP, "--socket", str(socket), "neighbor", "adj-out"],
        capture_stderr=True,
        check=False,
    )
    assert done.stderr.decode() == "pybgp: neighbor adj-out: which neighbour?\n"


async def test_monitor_streams_states_and_best_paths(tmp_path: Path) -> None:
    hub, leaf = hub_speaker(), leaf_speaker()
    socket = tmp_path / "pybgpd.sock"
    events: list[dict[str, Any]] = []

    def follow() -> None:  # a CLI client in a thread, as `pybgp monitor -j` reads
        stream = request_stream(str(socket), "monitor")
        for event in stream:
            events.append(event)
            if event["type"] == "best-path" and event["withdrawn"]:
                stream.close()
                return

    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await nursery.start(serve_control, str(socket), lambda req: handle(hub, req))
        nursery.start_soon(trio.to_thread.run_sync, follow)
        await wait_for(lambda: hub._pipeline._subscribers and hub._sessions._subscribers)
        await nursery.start(leaf.run)  # the session comes up while the monitor watches
        await wait_for(lambda: any(e.get("prefix") == "10.2.0.0/24" for e in events))
        # The table form, in a second client: the next change.
        table = await trio.lowlevel.open_process(
            [*PYBGP, "--socket", str(socket), "monitor", "rib", "--count", "1"],
            stdout=subprocess.PIPE,
        )
        await wait_for(lambda: len(hub._pipeline._subscribers._channels) == 2)
        leaf.withdraw("10.2.0.0/24")
        await wait_for(lambda: events and events[-1].get("withdrawn") is True)
        assert table.stdout is not None
        line = (await table.stdout.receive_some(4096)).decode()
        assert line.split()[1:] == ["[WITHDRAW]", "10.2.0.0/24"]
        assert await table.wait() == 0
        nursery.cancel_scope.cancel()

    states = [(e["address"], e["new"]) for e in events if e["type"] == "peer-state"]
    assert (LEAF, "Established") in states
    best = [e for e in events if e["type"] == "best-path" and e["prefix"] == "10.2.0.0/24"]
    assert best[0]["next_hops"] == [LEAF] and best[0]["as_path"] == "65001"
    assert best[-1]["withdrawn"] and best[-1]["next_hops"] == []
    assert "10.3.0.0/24" not in {e.get("prefix") for e in events}  # the import policy's


def test_a_subscriber_that_went_is_dropped() -> None:
    subscribers = Subscribers[int]()
    gone, kept = subscribers.subscribe(), subscribers.subscribe()
    gone.close()
    subscribers.publish(1)
    assert kept.receive_nowait() == 1
    assert len(subscribers._channels) == 1


async def test_no_traceback_when_the_reader_goes(pair: tuple[Speaker, Speaker, Path]) -> None:
    """`pybgp -j rib | head -1` with more output than a pipe holds."""
    hub, _, socket = pair
    for third in range(20):
        for fourth in range(200):
            hub.announce(RouteConfig(prefix=f"10.{100 + third}.{fourth}.0/24"))
    command = " ".join([*PYBGP, "--socket", str(socket), "-j", "rib", "|", "head", "-1"])
    done = await trio.run_process(["sh", "-c", command], capture_stdout=True, capture_stderr=True)
    assert done.stdout == b"[\n"
    assert done.stderr == b""
