"""Policy in pybgpd's TOML: the documented shape parses, and mistakes name their key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import pybgp.policy.config as policy_config
from pybgp.config import ConfigError
from pybgp.policy import Attachment, MatchSet, MedAction, Prepend, RouteContext, evaluate, explain
from pybgp.policy.config import load, parse
from pybgp.wire.communities import community_from_str
from pybgp.wire.constants import SegmentType

from .helpers import attributes, ctx

DOC_EXAMPLE = re.search(r"```toml\n(.*?)```", policy_config.__doc__ or "", re.S)


def document() -> dict[str, Any]:
    assert DOC_EXAMPLE is not None
    return tomllib.loads(DOC_EXAMPLE[1])


def test_the_documented_example_parses() -> None:
    config = parse(document())
    d = config.definitions
    assert [s.name for s in d.prefix_sets] == ["pods"]
    assert [str(e) for e in d.prefix_sets[0].entries] == [
        "10.0.0.0/8 le 24",
        "192.168.0.0/16",
        "2001:db8::/32 ge 48 le 64",
        "172.16.0.0/12 ge 20 le 24",
    ]
    pods = d.policy("export-pods")
    assert pods.default == "reject"
    (st,) = pods.statements
    assert st.name == "pods"
    assert st.conditions.community_set == MatchSet(set_name="drop", option="invert")
    assert st.actions.med == MedAction(operation="add", value=10)
    assert st.actions.as_path_prepend == Prepend(asn="self", repeat=2)
    assert st.actions.communities is not None
    assert st.actions.communities.add == (
        community_from_str("65000:1"),
        community_from_str("no-export"),
    )
    assert d.policy("prepend-out").statements[0].name == "1"
    assignment = config.assignment
    assert assignment.global_ == Attachment(
        import_policies=(),
        export_policies=("export-pods",),
        default_import="accept",
        default_export="reject",
    )
    assert assignment.export_chain("192.0.2.1") == (("prepend-out", "export-pods"), "reject")
    assert assignment.import_chain("192.0.2.1") == ((), "reject")
    assert assignment.import_chain("192.0.2.2") == ((), "accept")


def test_load_and_evaluate(tmp_path: Path) -> None:
    path = tmp_path / "pybgpd.toml"
    path.write_text(
        """
[[policy.prefix_sets]]
name = "pods"
prefixes = ["10.0.0.0/8 le 24"]
[[policy.definitions]]
name = "out"
[[policy.definitions.statements]]
name = "pods"
conditions = { prefix_set = "pods" }
actions = { disposition = "accept", as_path_prepend = { asn = "last-as", repeat = 2 } }
[policy.attach]
export = ["out"]
"""
    )
    compiled = load(path).compile()
    route: RouteContext = ctx("10.1.0.0/16", attrs=attributes(path=(65001,)))
    result = evaluate(compiled.export_chain("192.0.2.9"), route)
    assert result.accepted and result.decided_by == "out/pods"
    assert result.attributes.as_path == ((SegmentType.AS_SEQUENCE, (65001, 65001, 65001)),)
    assert not evaluate(compiled.export_chain("192.0.2.9"), ctx("192.168.0.0/16")).accepted
    assert (
        explain(compiled.export_chain("192.0.2.9"), ctx("192.168.0.0/16")).lines()[-1]
        == "rejected by default"
    )


def test_no_policy_table_means_the_defaults() -> None:
    config = parse({"global": {"asn": 1}, "neighbors": [{"address": "192.0.2.1"}]})
    assert config.assignment.import_chain("192.0.2.1") == ((), "accept")
    assert config.assignment.export_chain("192.0.2.1") == ((), "reject")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def with_statement(
    conditions: dict[str, Any] | None = None, actions: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {}
    if conditions is not None:
        statement["conditions"] = conditions
    if actions is not None:
        statement["actions"] = actions
    return {
        "policy": {
            "prefix_sets": [{"name": "pods", "prefixes": ["10.0.0.0/8 le 24"]}],
            "community_sets": [{"name": "drop", "communities": ["65000:666"]}],
            "definitions": [{"name": "p", "statements": [statement]}],
        }
    }


STATEMENT = "policy.definitions[0].statements[0]"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"policy": {"prefix_set": []}},
            "policy.prefix_set: unknown key (did you mean prefix_sets?)",
        ),
        (
            {
                "policy": {
                    "prefix_sets": [{"name": "a", "prefixes": ["10.0.0.0/8", "10.0.0.0/8 le 40"]}]
                }
            },
            "policy.prefix_sets[0].prefixes: item 1: '10.0.0.0/8 le 40': need 8 <= ge <= le <= 32",
        ),
        (
            {"policy": {"prefix_sets": [{"name": "a"}, {"name": "a"}]}},
            "policy.prefix_sets[1].name: prefix set 'a' is defined twice",
        ),
        (
            {"policy": {"prefix_sets": [{"prefixes": []}]}},
            "policy.prefix_sets[0].name: missing (required)",
        ),
        (
            {"policy": {"neighbor_sets": [{"name": "n", "neighbors": ["192.0.2.1/24"]}]}},
            "policy.neighbor_sets[0].neighbors: item 0: '192.0.2.1/24': expected an address or a prefix",
        ),
        (
            {"policy": {"as_path_sets": [{"name": "a", "as_paths": ["^(65001_"]}]}},
            "policy.as_path_sets[0].as_paths: item 0: '^(65001_': not a valid regular expression",
        ),
        (
            {"policy": {"community_sets": [{"name": "c", "communities": ["65000:99999"]}]}},
            "policy.community_sets[0].communities: item 0: invalid community",
        ),
        (
            {"policy": {"large_community_sets": [{"name": "c", "large_communities": [12]}]}},
            "policy.large_community_sets[0].large_communities: item 0: expected a string",
        ),
        (
            with_statement(conditions={"prefix_set": "pod"}),
            f"{STATEMENT}.conditions.prefix_set: no prefix set named 'pod' (defined: pods)",
        ),
        (
            with_statement(conditions={"prefix_set": {"set": "pods", "match": "all"}}),
            f"{STATEMENT}.conditions.prefix_set: expected one of any, invert, got 'all'",
        ),
        (
            with_statement(conditions={"community_set": {"sett": "drop"}}),
            f"{STATEMENT}.conditions.community_set: unknown key 'sett' (expected set, match)",
        ),
        (
            with_statement(conditions={"as_path_set": "x"}),
            f"{STATEMENT}.conditions.as_path_set: no as-path set named 'x' (none defined)",
        ),
        (
            with_statement(conditions={"as_path_length": {"operator": "lt", "value": 3}}),
            f"{STATEMENT}.conditions.as_path_length.operator: expected one of eq, ge, le, got 'lt'",
        ),
        (
            with_statement(conditions={"next_hop": ["192.0.2.300"]}),
            f"{STATEMENT}.conditions.next_hop: item 0: '192.0.2.300': expected an address or a prefix",
        ),
        (
            with_statement(conditions={"origin": "bgp"}),
            f"{STATEMENT}.conditions.origin: expected one of igp",
        ),
        (
            with_statement(conditions={"route_type": "ibgp"}),
            f"{STATEMENT}.conditions.route_type: expected one of internal, external, local",
        ),
        (
            with_statement(conditions={"prefix": "pods"}),
            f"{STATEMENT}.conditions.prefix: unknown key",
        ),
        (
            with_statement(actions={"disposition": "accept-route"}),
            f"{STATEMENT}.actions.disposition: expected one of accept, reject, next",
        ),
        (with_statement(actions={"med": "*2"}), f"{STATEMENT}.actions.med: expected N, +N or -N"),
        (
            with_statement(actions={"med": 2**32}),
            f"{STATEMENT}.actions.med: expected 0..4294967295",
        ),
        (
            with_statement(actions={"local_pref": -1}),
            f"{STATEMENT}.actions.local_pref: expected an integer",
        ),
        (
            with_statement(actions={"next_hop": "me"}),
            f"{STATEMENT}.actions.next_hop: expected an IP address",
        ),
        (
            with_statement(actions={"communities": {"add": ["^65000:"]}}),
            f"{STATEMENT}.actions.communities.add: item 0: expected a community A:B",
        ),
        (
            with_statement(actions={"communities": {"remove": "dropp"}}),
            f"{STATEMENT}.actions.communities.remove: no community set named 'dropp'",
        ),
        (
            with_statement(actions={"large_communities": {"replace": ["1:2"]}}),
            f"{STATEMENT}.actions.large_communities.replace: item 0:",
        ),
        (
            with_statement(actions={"as_path_prepend": {"asn": "first-as"}}),
            f'{STATEMENT}.actions.as_path_prepend.asn: expected an AS number, "self" or "last-as"',
        ),
        (
            with_statement(actions={"as_path_prepend": {"asn": "self", "repeat": 0}}),
            f"{STATEMENT}.actions.as_path_prepend.repeat: expected an integer 1..255",
        ),
        (
            {
                "policy": {
                    "definitions": [{"name": "p", "statements": [{"name": "a"}, {"name": "a"}]}]
                }
            },
            "policy.definitions[0].statements[1].name: statement 'a' is defined twice",
        ),
        (
            {"policy": {"definitions": [{"name": "p", "default": "next"}]}},
            "policy.definitions[0].default: expected one of accept, reject",
        ),
        (
            {"policy": {"attach": {"export": ["nope"]}}},
            "policy.attach.export: item 0: no policy named 'nope'",
        ),
        (
            {"policy": {"attach": {"default_export": "allow"}}},
            "policy.attach.default_export: expected one of",
        ),
        (
            {
                "neighbors": [
                    {"address": "192.0.2.1"},
                    {"address": "192.0.2.2", "export_policy": "x"},
                ]
            },
            "neighbors[1].export_policy: no policy named 'x' (none defined)",
        ),
        ({"neighbors": [{"import_policy": []}]}, "neighbors[0].address: missing (required)"),
    ],
)
def test_mistakes_name_their_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert str(info.value).startswith(message), str(info.value)


def test_peer_attachment_reads_only_policy_keys() -> None:
    data = {
        "policy": {"definitions": [{"name": "p"}]},
        "neighbors": [{"address": "2001:DB8::1", "peer_asn": 65001, "import_policy": "p"}],
    }
    assignment = parse(data).assignment
    assert assignment.peers == {"2001:db8::1": Attachment(import_policies=("p",))}
