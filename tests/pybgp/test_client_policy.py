"""`pybgp policy` and `pybgp rib --explain` as people read them (the text the CLI prints from
the daemon's JSON)."""

from __future__ import annotations

from pybgp.api import Speaker
from pybgp.client_cli import _policy_text
from pybgp.policy.config import parse

DOCUMENT = {
    "policy": {
        "prefix_sets": [{"name": "pods", "prefixes": ["10.0.0.0/8 le 24"]}],
        "community_sets": [{"name": "drop", "communities": ["65000:666"]}],
        "definitions": [
            {
                "name": "out",
                "default": "reject",
                "statements": [
                    {
                        "name": "pods",
                        "conditions": {
                            "prefix_set": "pods",
                            "community_set": {"set": "drop", "match": "invert"},
                        },
                        "actions": {
                            "disposition": "accept",
                            "communities": {"add": ["65000:999", "no-export"]},
                        },
                    }
                ],
            }
        ],
        "attach": {"export": ["out"]},
    }
}


def test_policy_text_shows_sets_statements_and_communities_as_written() -> None:
    speaker = Speaker(asn=65000, router_id="10.0.0.1", policy=parse(DOCUMENT).compile())
    text = "\n".join(_policy_text(speaker.policy_json()))
    assert "prefix-set pods:\n  prefix 10.0.0.0/8 ge 8 le 24" in text
    assert "if prefix_set pods, community_set drop (invert)" in text
    assert "communities add=65000:999,no-export" in text
    assert "global: import - (default accept), export out (default reject)" in text
