"""pybgpd's TOML configuration: the documented keys, and every mistake named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pybgp.config import ConfigError, load, parse
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST

MINIMAL = """
[global]
asn = 65000
router_id = "10.255.0.1"
listen = ["10.0.0.1"]   # addresses to listen on; port = 179 by default
[[neighbors]]
address = "10.0.0.2"
peer_asn = 65001
"""


def test_minimal_config(tmp_path: Path) -> None:
    path = tmp_path / "pybgpd.toml"
    path.write_text(MINIMAL)
    config = load(path)
    assert config.global_.asn == 65000 and config.global_.listen == ("10.0.0.1",)
    assert config.global_.port == 179
    (neighbor,) = config.neighbors
    assert (neighbor.address, neighbor.peer_asn, neighbor.port) == ("10.0.0.2", 65001, 179)
    assert neighbor.families == (IPV4_UNICAST, IPV6_UNICAST) and not neighbor.passive


def test_all_neighbor_keys_and_routes(tmp_path: Path) -> None:
    key = tmp_path / "peer.key"
    key.write_text("s3cret\n")
    config = parse(
        {
            "global": {"asn": 65000, "router_id": "10.255.0.1", "hold_time": 30},
            "neighbors": [
                {
                    "address": "2001:db8::2",
                    "peer_asn": 4200000001,
                    "password_file": str(key),
                    "passive": True,
                    "multihop_ttl": 3,
                    "local_address": "2001:db8::1",
                    "port": 1179,
                    "families": ["ipv6-unicast"],
                    "max_prefixes": 100,
                    "max_prefixes_restart": 30,
                }
            ],
            "routes": [
                {"prefix": "10.1.0.0/24", "communities": ["65000:1", "no-export"], "med": 5},
                {"prefix": "2001:db8:1::/48", "large_communities": ["65000:1:2"]},
            ],
        }
    )
    (n,) = config.neighbors
    assert n.password() == "s3cret" and n.hold_time == 30 and n.multihop_ttl == 3
    assert n.max_prefixes == {IPV6_UNICAST: 100} and n.max_prefixes_restart == 30.0
    assert config.routes[0].communities == (65000 << 16 | 1, 0xFFFFFF01)
    assert config.routes[1].family == IPV6_UNICAST
    assert "s3cret" not in repr(config)  # the key stays in its file


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"global": {"router_id": "10.255.0.1"}}, "global.asn: missing"),
        ({"global": {"asn": 0, "router_id": "x"}}, "global.asn: expected an integer 1..4294967295"),
        ({"global": {"asn": 1, "router_id": "10.0.0.300"}}, "global.router_id: expected an IPv4"),
        ({"global": {"asn": 1, "router_id": "1.1.1.1", "hold_time": 2}}, "global.hold_time: hold time must be 0 or at least 3"),
        ({"global": {"asn": 1, "router_id": "1.1.1.1", "lsiten": []}}, "global.lsiten: unknown key (did you mean listen?)"),
        ({"neighbors": [{"address": "10.0.0.2"}]}, "neighbors[0].peer_asn: missing"),
        ({"neighbors": [{"address": "10.0.0.2", "peer_asn": 1, "pasive": True}]}, "neighbors[0].pasive: unknown key (did you mean passive?)"),
        ({"neighbors": [{"address": "nope", "peer_asn": 1}]}, "neighbors[0].address: expected an IP address"),
        ({"neighbors": [{"address": "10.0.0.2", "peer_asn": 1, "families": ["l2vpn"]}]}, "neighbors[0].families: item 0: unknown address family"),
        ({"neighbors": [{"address": "10.0.0.2", "peer_asn": 1, "password_file": "/nonexistent"}]}, "neighbors[0].password_file: no such file"),
        ({"neighbors": [{"address": "10.0.0.2", "peer_asn": 1}, {"address": "10.0.0.2", "peer_asn": 2}]}, "neighbors[1].address: 10.0.0.2 is configured twice"),
        ({"routes": [{"prefix": "10.0.0.1/24"}]}, "routes[0].prefix: expected a prefix"),
        ({"routes": [{"prefix": "10.0.0.0/24", "communities": ["65536:1"]}]}, "routes[0].communities: item 0: invalid community"),
        ({"nieghbors": []}, "nieghbors: unknown key (did you mean neighbors?)"),
    ],
)  # fmt: skip
def test_mistakes_name_their_key(change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"global": {"asn": 65000, "router_id": "10.255.0.1"}}
    data.update(change)
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert str(info.value).startswith(message), str(info.value)


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[global\nasn = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path)


def test_route_reflection_and_policy_keys() -> None:
    config = parse(
        {
            "global": {"asn": 65000, "router_id": "10.255.0.1", "cluster_id": "10.255.9.9"},
            "neighbors": [
                {
                    "address": "10.0.0.2",
                    "peer_asn": 65000,
                    "route_reflector_client": True,
                    "export_policy": "out",
                    "default_import_policy": "reject",
                }
            ],
            "policy": {"definitions": [{"name": "out"}]},
        }
    )
    assert config.global_.cluster_id == "10.255.9.9"
    assert config.neighbors[0].route_reflector_client
    assert config.policy is not None
    assignment = config.policy.assignment
    assert assignment.export_chain("10.0.0.2") == (("out",), "reject")
    assert assignment.import_chain("10.0.0.2") == ((), "reject")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"neighbors": [{"address": "10.0.0.2", "peer_asn": 1, "export_policy": "nope"}]},
            "neighbors[0].export_policy: no policy named 'nope'",
        ),
        ({"policy": {"attach": {"default_export": "maybe"}}}, "policy.attach.default_export"),
        ({"global": {"cluster_id": "not-an-address"}}, "global.cluster_id"),
    ],
)
def test_policy_and_reflection_mistakes_name_the_key(document: dict, message: str) -> None:
    base: dict = {"global": {"asn": 65000, "router_id": "10.255.0.1"}}
    for key, value in document.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(base)


def test_extended_next_hop_key() -> None:
    base = {"asn": 65000, "router_id": "10.255.0.1"}
    neighbor = {"address": "fd00::2", "peer_asn": 65001, "extended_next_hop": True}
    config = parse({"global": base, "neighbors": [neighbor]})
    assert config.neighbors[0].extended_next_hop
    with pytest.raises(ConfigError, match=r"neighbors\[0\]\.extended_next_hop"):
        parse({"global": base, "neighbors": [{**neighbor, "extended_next_hop": "yes"}]})


def test_add_path_keys_and_the_capability_they_announce() -> None:
    from pybgp.speaker.peer import session_config
    from pybgp.wire.capabilities import AddPath, AddPathMode

    base = {"asn": 65000, "router_id": "10.255.0.1"}
    plain = {"address": "10.0.0.2", "peer_asn": 65001}
    config = parse(
        {
            "global": base,
            "neighbors": [
                plain,
                {**plain, "address": "10.0.0.3", "add_path_receive": True},
                {**plain, "address": "10.0.0.4", "add_path_send": 4},
                {**plain, "address": "10.0.0.5", "add_path_receive": True, "add_path_send": 64},
            ],
        }
    )
    assert [(n.add_path_receive, n.add_path_send) for n in config.neighbors] == [
        (False, 0),
        (True, 0),
        (False, 4),
        (True, 64),
    ]
    modes = []
    for neighbor in config.neighbors:
        settings = session_config(neighbor, local_asn=65000, router_id="10.255.0.1")
        caps = settings.open_message().capabilities_of(AddPath)
        modes.append({(e.family, e.mode) for cap in caps for e in cap.families})
    both = (IPV4_UNICAST, IPV6_UNICAST)
    assert modes == [
        set(),
        {(f, AddPathMode.RECEIVE) for f in both},
        {(f, AddPathMode.SEND) for f in both},
        {(f, AddPathMode.BOTH) for f in both},
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("add_path_send", 65),
        ("add_path_send", -1),
        ("add_path_send", True),
        ("add_path_receive", 1),
    ],
)
def test_add_path_mistakes_name_the_key(key: str, value: object) -> None:
    neighbor = {"address": "10.0.0.2", "peer_asn": 65001, key: value}
    with pytest.raises(ConfigError, match=rf"neighbors\[0\]\.{key}: expected"):
        parse({"global": {"asn": 65000, "router_id": "10.255.0.1"}, "neighbors": [neighbor]})


def test_enforce_first_as_key() -> None:
    base = {"asn": 65000, "router_id": "10.255.0.1"}
    neighbor = {"address": "10.0.0.2", "peer_asn": 65001}
    assert parse({"global": base, "neighbors": [neighbor]}).neighbors[0].enforce_first_as
    route_server = {**neighbor, "enforce_first_as": False}
    assert not parse({"global": base, "neighbors": [route_server]}).neighbors[0].enforce_first_as
