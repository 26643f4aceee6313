"""Import and export policies applied by the RIBs (pybgp.policy.rib_filter): per prefix when
a policy reads the prefix, with the actions' results in what is stored and sent; rejected
routes kept as received but not accepted; RFC 4456 §8 loop checks on iBGP routes."""

from __future__ import annotations

import attrs

from pybgp.policy import (
    Actions,
    Attachment,
    CompiledPolicy,
    Conditions,
    Definitions,
    MatchSet,
    Policy,
    PolicyAssignment,
    PrefixSet,
    Prepend,
    Statement,
)
from pybgp.policy.rib_filter import ChainFilter
from pybgp.rib.adj_in import AdjRibIn
from pybgp.rib.export import ExportKey
from pybgp.wire import aspath
from pybgp.wire.constants import IPV4_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.pathattrs import PathAttributes
from tests.pybgp.rib.builders import LOCAL_AS, attributes, peer, prefix, v4
from tests.pybgp.rib.test_adj_out import EBGP_KEY, IBGP_KEY, Speaker, announced, withdrawn

PODS = PrefixSet.parse("pods", ["10.1.0.0/16 le 24"])


def compiled(*statements: Statement, default: str = "reject") -> CompiledPolicy:
    definitions = Definitions(
        prefix_sets=(PODS,), policies=(Policy(name="p", statements=statements),)
    )
    attach = Attachment(
        import_policies=("p",),
        export_policies=("p",),
        default_import=default,
        default_export=default,
    )
    return CompiledPolicy(definitions, PolicyAssignment(global_=attach))


PODS_ONLY = Statement(
    name="pods",
    conditions=Conditions(prefix_set=MatchSet(set_name="pods")),
    actions=Actions(disposition="accept", local_pref=250),
)
PREPEND = Statement(
    name="prepend",
    actions=Actions(disposition="accept", as_path_prepend=Prepend(asn="self", repeat=2)),
)


def test_import_policy_decides_per_prefix_and_keeps_rejected_as_received() -> None:
    sender = peer(1)
    chain = compiled(PODS_ONLY).import_chain(sender.address)
    rib = AdjRibIn(sender, ChainFilter(chain, sender))
    touched = rib.announce(IPV4_UNICAST, v4("10.1.1.0/24", "10.9.0.0/24"), attributes(), "10.0.0.1")
    kept = [t for t in touched if t.route is not None]
    assert [[str(p.hex()) for p in t.prefixes] for t in kept] == [[prefix("10.1.1.0/24").hex()]]
    assert kept[0].route is not None and kept[0].route.attributes.local_pref == 250
    assert rib.counts(IPV4_UNICAST) == (2, 1)
    # What the peer sent is still there to explain: unchanged for both prefixes.
    for text in ("10.1.1.0/24", "10.9.0.0/24"):
        (sent,) = rib.received_paths(IPV4_UNICAST, prefix(text)).values()
        assert sent.attributes.local_pref is None


def test_export_policy_per_prefix_filters_and_changes_what_is_sent() -> None:
    speaker = Speaker()
    receiver = peer(2, ibgp=True)
    policy = compiled(PODS_ONLY, default="reject")
    chain = policy.export_chain(receiver.address)
    key = attrs.evolve(
        IBGP_KEY, policy="p", export_filter=ChainFilter(chain, receiver, exporting=True)
    )
    speaker.join(receiver, key)
    speaker.learn(peer(1), ("10.1.1.0/24", "10.1.2.0/24", "10.9.0.0/24"), attributes())
    sent = announced(speaker.sent_to(receiver.address))
    assert sorted(sent) == ["10.1.1.0/24", "10.1.2.0/24"]
    assert all(a.local_pref == 250 for a in sent.values())  # the statement's action
    group = speaker.out.group_of(receiver.address)
    assert group is not None and group.advertised(receiver.address, IPV4_UNICAST) == 2
    # A withdrawal of an exported prefix goes out; of a rejected one, nothing.
    speaker.forget(peer(1), "10.1.2.0/24", "10.9.0.0/24")
    assert withdrawn(speaker.sent_to(receiver.address)) == ["10.1.2.0/24"]


def test_local_pref_set_by_export_policy_never_reaches_an_external_peer() -> None:
    speaker = Speaker()
    receiver = peer(2)
    chain = compiled(PODS_ONLY).export_chain(receiver.address)
    key = attrs.evolve(
        EBGP_KEY, policy="p", export_filter=ChainFilter(chain, receiver, exporting=True)
    )
    speaker.join(receiver, key)
    speaker.learn(peer(1), ("10.1.1.0/24",), attributes())
    (sent,) = announced(speaker.sent_to(receiver.address), CodecContext()).values()
    assert sent.local_pref is None  # RFC 4271 §5.1.5


def test_export_prepend_comes_on_top_of_our_own_as() -> None:
    speaker = Speaker()
    receiver = peer(2)
    chain = compiled(PREPEND).export_chain(receiver.address)
    key = attrs.evolve(
        EBGP_KEY, policy="x", export_filter=ChainFilter(chain, receiver, exporting=True)
    )
    speaker.join(receiver, key)
    speaker.learn(peer(1), ("10.9.0.0/24",), attributes(path=(65001,)))
    (sent,) = announced(speaker.sent_to(receiver.address)).values()
    assert aspath.as_path_to_str(sent.as_path) == f"{LOCAL_AS} {LOCAL_AS} {LOCAL_AS} 65001"


def test_groups_keep_peers_with_different_policies_apart() -> None:
    speaker = Speaker()
    a, b = peer(2), peer(3)
    chain = compiled(PODS_ONLY).export_chain(a.address)
    strict = attrs.evolve(EBGP_KEY, policy="p", export_filter=ChainFilter(chain, a))
    speaker.join(a, strict)
    speaker.join(b, EBGP_KEY)
    speaker.learn(peer(1), ("10.9.0.0/24",), attributes())
    flushed = speaker.out.flush()
    receivers = {address for outs in flushed.values() for o in outs for address in o.peers}
    assert receivers == {b.address}


def reflected(originator: str | None, clusters: tuple[str, ...]) -> PathAttributes:
    return attributes(path=(), local_pref=100, originator=originator, clusters=clusters)


def test_reflection_loops_are_not_accepted() -> None:
    """RFC 4456 §8: our router ID as ORIGINATOR_ID, or our cluster ID in CLUSTER_LIST."""
    source = peer(1, ibgp=True)
    rib = AdjRibIn(source, router_id="10.255.0.100", cluster_id="10.255.9.9")
    keys = v4("10.1.0.0/24")
    for attrs_, accepted in (
        (reflected("10.255.0.100", ()), False),
        (reflected("10.255.0.7", ("10.255.9.9",)), False),
        (reflected("10.255.0.7", ("10.255.9.8",)), True),
    ):
        touched = rib.announce(IPV4_UNICAST, keys, attrs_, "10.0.0.1")
        assert rib.counts(IPV4_UNICAST) == (1, int(accepted)), attrs_
        assert bool(touched and touched[0].route) == accepted or not touched


def test_export_key_equality_ignores_the_filter_object() -> None:
    one = ExportKey(ibgp=False, local_asn=1, policy="p", export_filter=None)
    other = attrs.evolve(one, export_filter=ChainFilter(compiled().export_chain("x"), peer(1)))
    assert one == other and hash(one) == hash(other)
