"""Statements, policies, chains and attachments: who decides, and the trace that says so."""

from __future__ import annotations

import pytest

from pybgp.policy import (
    Actions,
    Attachment,
    CommunityAction,
    CommunitySet,
    CompiledPolicy,
    Conditions,
    Definitions,
    MatchSet,
    Policy,
    PolicyAssignment,
    PolicyError,
    PrefixSet,
    evaluate,
    explain,
)
from pybgp.wire.communities import community_from_str

from .helpers import attributes, chain, ctx, statement

C = community_from_str
PODS = PrefixSet.parse("pods", ["10.0.0.0/8 le 24"])
IN_PODS = Conditions(prefix_set=MatchSet(set_name="pods"))
ACCEPT, REJECT = Actions(disposition="accept"), Actions(disposition="reject")


def test_first_deciding_statement_wins() -> None:
    c = chain(
        statement(
            "skip", Conditions(prefix_set=MatchSet(set_name="pods", option="invert")), REJECT
        ),
        statement("take", IN_PODS, ACCEPT),
        statement("never", None, REJECT),
        prefix_sets=(PODS,),
    )
    result = evaluate(c, ctx("10.1.0.0/16"))
    assert result.accepted and result.decided_by == "p/take"
    result = evaluate(c, ctx("192.168.0.0/16"))
    assert not result.accepted and result.decided_by == "p/skip"


def test_reject_returns_the_route_as_given() -> None:
    tag = statement("tag", actions=Actions(local_pref=50, next_hop="198.51.100.1"))
    route = ctx()
    result = evaluate(chain(tag, statement("drop", None, REJECT)), route)
    assert result == (False, route.attributes, route.next_hop, "p/drop")


def test_next_statement_sees_the_changes() -> None:
    sets = (CommunitySet(name="tagged", members=("65000:7",)),)
    tag = statement("tag", actions=Actions(communities=CommunityAction(add=(C("65000:7"),))))
    check = statement("check", Conditions(community_set=MatchSet(set_name="tagged")), ACCEPT)
    result = evaluate(chain(tag, check, community_sets=sets), ctx())
    assert result.accepted and result.decided_by == "p/check"
    assert result.attributes.communities == (C("65000:7"),)


def test_chain_default_keeps_changes_when_accepting() -> None:
    tag = statement("tag", actions=Actions(local_pref=50))
    accepted = evaluate(chain(tag, default="accept"), ctx())
    assert accepted.accepted and accepted.decided_by == "default"
    assert accepted.attributes.local_pref == 50
    rejected = evaluate(chain(tag, default="reject"), ctx())
    assert not rejected.accepted and rejected.attributes.local_pref is None


def test_policy_default_decides_before_the_next_policy() -> None:
    definitions = Definitions(
        prefix_sets=(PODS,),
        policies=(
            Policy(name="a", statements=(statement("pods", IN_PODS, ACCEPT),), default="reject"),
            Policy(name="b", statements=(statement("all", None, ACCEPT),)),
        ),
    )
    compiled = CompiledPolicy(definitions)
    result = evaluate(compiled.chain(["a", "b"], "accept"), ctx("192.168.0.0/16"))
    assert not result.accepted and result.decided_by == "a/default"
    # without a policy default the route falls through to the next policy
    open_a = Definitions(prefix_sets=(PODS,), policies=(Policy(name="a"), definitions.policies[1]))
    result = evaluate(CompiledPolicy(open_a).chain(["a", "b"], "reject"), ctx("192.168.0.0/16"))
    assert result.accepted and result.decided_by == "b/all"


def test_assignment_chains_and_defaults() -> None:
    definitions = Definitions(
        policies=(
            Policy(name="peer-in", statements=(statement("tag", actions=Actions(local_pref=10)),)),
            Policy(name="global-out", statements=(statement("pods", IN_PODS, ACCEPT),)),
        ),
        prefix_sets=(PODS,),
    )
    assignment = PolicyAssignment(
        global_=Attachment(
            export_policies=("global-out",), default_import="accept", default_export="reject"
        ),
        peers={"192.0.2.1": Attachment(import_policies=("peer-in",), default_import="reject")},
    )
    compiled = CompiledPolicy(definitions, assignment)
    assert compiled.import_chain("192.0.2.1").names == ("peer-in",)
    assert compiled.import_chain("192.0.2.1") is compiled.import_chain("192.0.2.1")  # kept
    got = evaluate(compiled.import_chain("192.0.2.1"), ctx())
    assert not got.accepted and got.decided_by == "default"  # the peer's default: reject
    other = evaluate(compiled.import_chain("192.0.2.2"), ctx())
    assert other.accepted and other.decided_by == "default"  # global import default
    sent = evaluate(compiled.export_chain("192.0.2.2"), ctx("10.1.0.0/16"))
    assert sent.accepted and sent.decided_by == "global-out/pods"
    held = evaluate(compiled.export_chain("192.0.2.2"), ctx("192.168.0.0/16"))
    assert not held.accepted and held.decided_by == "default"  # strict export


def test_defaults_with_nothing_attached() -> None:
    compiled = CompiledPolicy(Definitions())
    assert evaluate(compiled.import_chain("192.0.2.1"), ctx()).accepted
    assert not evaluate(compiled.export_chain("192.0.2.1"), ctx()).accepted


def test_peer_policies_run_before_global_ones() -> None:
    definitions = Definitions(
        policies=(
            Policy(name="mine", statements=(statement("no", None, REJECT),)),
            Policy(name="all", statements=(statement("yes", None, ACCEPT),)),
        )
    )
    assignment = PolicyAssignment(
        global_=Attachment(export_policies=("all",)),
        peers={"192.0.2.1": Attachment(export_policies=("mine",))},
    )
    compiled = CompiledPolicy(definitions, assignment)
    assert compiled.export_chain("192.0.2.1").names == ("mine", "all")
    assert evaluate(compiled.export_chain("192.0.2.1"), ctx()).decided_by == "mine/no"


@pytest.mark.parametrize(
    ("definitions", "assignment", "message"),
    [
        (
            Definitions(),
            PolicyAssignment(global_=Attachment(import_policies=("x",))),
            "no policy named 'x'",
        ),
        (Definitions(policies=(Policy(name="a"), Policy(name="a"))), None, "defined twice"),
        (Definitions(prefix_sets=(PODS, PODS)), None, "prefix set 'pods' is defined twice"),
        (
            Definitions(policies=(Policy(name="a", statements=(statement("s"), statement("s"))),)),
            None,
            "statement 's' is defined twice",
        ),
    ],
)
def test_definition_errors(
    definitions: Definitions, assignment: PolicyAssignment | None, message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        CompiledPolicy(definitions, assignment)


def test_explain_names_each_condition() -> None:
    sets = {
        "prefix_sets": (PODS,),
        "community_sets": (CommunitySet(name="drop", members=("65000:666",)),),
    }
    c = chain(
        statement(
            "drop",
            Conditions(
                prefix_set=MatchSet(set_name="pods"), community_set=MatchSet(set_name="drop")
            ),
            REJECT,
        ),
        statement("pods", IN_PODS, ACCEPT),
        **sets,
    )
    route = ctx("10.1.0.0/16", attrs=attributes(communities=(C("65000:1"),)))
    explanation = explain(c, route)
    assert explanation.result == evaluate(c, route)
    assert explanation.lines() == [
        "p/drop: prefix-set pods: match",
        "p/drop: community-set drop: no match",
        "p/drop: skipped",
        "p/pods: prefix-set pods: match",
        "p/pods: accept",
        "accepted by p/pods",
    ]
    outside = explain(c, ctx("192.168.0.0/16"))
    assert outside.lines()[-2:] == ["default: reject", "rejected by default"]


def test_explain_without_conditions_and_policy_default() -> None:
    c = chain(statement("tag", actions=Actions(local_pref=5)), policy_default="accept")
    lines = explain(c, ctx()).lines()
    assert lines == [
        "p/tag: no conditions",
        "p/tag: next",
        "p/default: accept",
        "accepted by p/default",
    ]
    assert explain(c, ctx()).result.attributes.local_pref == 5
