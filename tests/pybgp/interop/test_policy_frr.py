"""Routing policy in pybgpd, against FRR (in its container): strict export by default, import
and export policies with their actions as FRR sees them, `pybgp rib --explain`, and a policy
changed by SIGHUP applied without dropping the session (route refresh in, the Adj-RIB-Out
worked out anew)."""

from __future__ import annotations

import pytest

from tests.pybgp.interop.daemons import (
    OUR_ASN,
    OUR_V4,
    OUR_V6,
    PEER_ASN,
    PEER_V4,
    PEER_V6,
    MakePair,
    Pair,
    Session,
    stays,
    wait_for,
)

pytestmark = pytest.mark.privileged

KIND = "frr"
ASN = PEER_ASN[KIND]
NEIGHBOR = {"address": PEER_V4, "peer_asn": ASN, "families": ["ipv4-unicast"], "connect_retry": 1}

SETS = f"""
[[policy.prefix_sets]]
name = "tagged-own"
prefixes = ["10.2.0.0/24"]
[[policy.prefix_sets]]
name = "plain-own"
prefixes = ["10.2.1.0/24"]
[[policy.prefix_sets]]
name = "plain-theirs"
prefixes = ["10.1.1.0/24"]
[[policy.community_sets]]
name = "theirs-100"
communities = ["{ASN}:100"]
"""

FIRST = (
    SETS
    + """
[[policy.definitions]]
name = "out"
default = "reject"
[[policy.definitions.statements]]
name = "tagged"
conditions = { prefix_set = "tagged-own" }
actions = { disposition = "accept", communities = { add = ["65000:999"] }, as_path_prepend = { asn = "self", repeat = 2 } }

[[policy.definitions]]
name = "in"
[[policy.definitions.statements]]
name = "drop-plain"
conditions = { prefix_set = "plain-theirs" }
actions = { disposition = "reject" }
[[policy.definitions.statements]]
name = "prefer"
conditions = { community_set = "theirs-100" }
actions = { disposition = "accept", local_pref = 300 }

[policy.attach]
import = ["in"]
export = ["out"]
"""
)

# The other way round: the plain routes pass both ways, the tagged one of ours no longer.
SECOND = (
    SETS
    + """
[[policy.definitions]]
name = "out"
[[policy.definitions.statements]]
name = "plain"
conditions = { prefix_set = "plain-own" }
actions = { disposition = "accept" }

[policy.attach]
export = ["out"]
"""
)


def v4_pair(make_pair: MakePair, policy: str) -> Pair:
    pair = make_pair(
        KIND, start=False, sessions=[Session(OUR_V4, PEER_V4, ("ipv4",))], neighbors=[NEIGHBOR]
    )
    pair.ours.policy = policy
    pair.start()
    return pair


def test_nothing_is_exported_without_a_policy(make_pair: MakePair) -> None:
    pair = v4_pair(make_pair, policy="")
    pair.ours.wait_routes(["10.1.0.0/24", "10.1.1.0/24"])  # import: accepted by default
    stays(lambda: pair.peer.counts(OUR_V4).get("ipv4", (0, 0))[0] == 0, "FRR getting nothing", 2)
    assert pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]["advertised"] == 0
    assert "nothing is advertised" in pair.ours.log()


def test_policies_both_ways_explain_and_reload(make_pair: MakePair) -> None:
    pair = v4_pair(make_pair, FIRST)
    # Export: only the tagged route, prepended twice more and with our community added.
    seen = pair.peer.wait_route("10.2.0.0/24")
    assert seen.as_path == f"{OUR_ASN} {OUR_ASN} {OUR_ASN}"
    assert "65000:999" in seen.communities and "65000:100" in seen.communities
    stays(lambda: pair.peer.route("10.2.1.0/24") is None, "10.2.1.0/24 kept from FRR", 1)
    # Import: the plain route rejected (received, not accepted), the tagged one preferred.
    rib = pair.ours.wait_routes(["10.1.0.0/24"])
    assert rib["10.1.0.0/24"]["local_pref"] == 300
    assert "10.1.1.0/24" not in pair.ours.rib()
    counts = pair.ours.neighbor(PEER_V4)["families"]["ipv4-unicast"]
    assert (counts["received"], counts["accepted"]) == (2, 1)

    out = pair.ours.cli("rib", "10.2.1.0/24", "--explain", PEER_V4)
    assert "out/tagged: prefix-set tagged-own: no match" in out
    assert "rejected by out/default" in out
    into = pair.ours.cli_json("rib", "10.1.1.0/24", "--explain", PEER_V4, "--import")
    assert [p["decided_by"] for p in into["paths"]] == ["in/drop-plain"]
    assert into["paths"][0]["accepted"] is False
    listed = pair.ours.cli("policy")
    assert "policy out (default reject):" in listed and PEER_V4 in listed

    connections = pair.frr.neighbor(OUR_V4)["connectionsEstablished"]
    pair.ours.policy = SECOND
    pair.ours.reload()
    pair.peer.wait_route("10.2.1.0/24")
    pair.peer.wait_gone("10.2.0.0/24")
    rib = pair.ours.wait_routes(["10.1.1.0/24"])  # FRR sent it again (route refresh)
    assert rib["10.1.0.0/24"]["local_pref"] in (None, 100)  # no import policy any more
    assert pair.frr.neighbor(OUR_V4)["connectionsEstablished"] == connections
    assert wait_for(lambda: pair.ours.neighbor(PEER_V4)["uptime"] > 1, "session kept up")


def by_session(v4_set: list[str], v6_prefixes: list[str]) -> str:
    """Each of the two standard sessions gets what a statement naming its address accepts:
    the IPv4 session our IPv4 routes, the IPv6 session the IPv6 prefixes listed."""
    v4 = ", ".join(f'"{a}"' for a in v4_set)
    v6 = ", ".join(f'"{p}"' for p in v6_prefixes)
    return f"""
[[policy.neighbor_sets]]
name = "v4-session"
neighbors = [{v4}]
[[policy.neighbor_sets]]
name = "v6-session"
neighbors = ["{PEER_V6}"]
[[policy.prefix_sets]]
name = "v6-routes"
prefixes = [{v6}]
[[policy.definitions]]
name = "out"
[[policy.definitions.statements]]
name = "v4"
conditions = {{ neighbor_set = "v4-session", prefix_set = "v4-routes" }}
actions = {{ disposition = "accept" }}
[[policy.definitions.statements]]
name = "v6"
conditions = {{ neighbor_set = "v6-session", prefix_set = "v6-routes" }}
actions = {{ disposition = "accept" }}
[[policy.prefix_sets]]
name = "v4-routes"
prefixes = ["10.2.0.0/16 le 24"]

[policy.attach]
export = ["out"]
"""


def test_a_policy_change_touches_only_the_sessions_it_concerns(make_pair: MakePair) -> None:
    """A neighbour set gaining another member, or a set only the IPv6 session's statement
    names, leaves the other session alone: no route refresh to it, no UPDATE sent again."""
    pair = make_pair(KIND, start=False)
    pair.ours.policy = by_session([PEER_V4], ["2001:db8:2::/48"])
    pair.start()
    pair.peer.wait_route("10.2.0.0/24")
    pair.peer.wait_route("2001:db8:2::/48")

    def stats(address: str) -> tuple[int, int, int]:
        shown = pair.frr.neighbor(address)
        messages = shown["messageStats"]
        return (
            shown["connectionsEstablished"],
            messages["routeRefreshRecv"],
            messages["updatesRecv"],
        )

    before = {a: stats(a) for a in (OUR_V4, OUR_V6)}
    pair.ours.policy = by_session([PEER_V4, "192.0.2.99"], ["2001:db8:2::/48"])
    pair.ours.reload()
    sessions = (OUR_V4, OUR_V6)
    stays(lambda: {a: stats(a) for a in sessions} == before, "both sessions left alone", 3)

    pair.ours.policy = by_session([PEER_V4, "192.0.2.99"], ["2001:db8:ffff::/48"])
    pair.ours.reload()
    pair.peer.wait_gone("2001:db8:2::/48")  # the IPv6 session's routes were worked out anew
    assert stats(OUR_V4) == before[OUR_V4]
    v6 = stats(OUR_V6)
    assert v6[0] == before[OUR_V6][0] and v6[2] > before[OUR_V6][2]
