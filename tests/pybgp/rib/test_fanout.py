"""Fan-out of a group's flush: each member gets exactly the UPDATEs meant for it, built from
one shared buffer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pybgp.rib.fanout import fan_out
from pybgp.rib.update_group import EVERYONE, Outgoing, Target
from pybgp.wire.constants import IPV4_UNICAST
from pybgp.wire.context import CodecContext
from pybgp.wire.header import split_messages
from pybgp.wire.nlri import nlri_from_str
from pybgp.wire.outbound import pack_withdrawals

MEMBERS = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
CTX = CodecContext()


def update(n: int) -> bytes:
    """A distinct UPDATE per n (withdrawing 10.n/16)."""
    (message,) = pack_withdrawals(
        IPV4_UNICAST, [nlri_from_str(f"10.{n}.0.0/16", IPV4_UNICAST)], CTX
    )
    return message


def received(chunks: list[bytes | memoryview]) -> list[bytes]:
    """The whole messages in what a member is sent."""
    return [body for _, body in split_messages(bytearray(b"".join(chunks)), CTX)]


def body(message: bytes) -> bytes:
    return message[19:]


targets = st.one_of(
    st.just(EVERYONE),
    st.builds(Target, skip=st.sampled_from(MEMBERS)),
    st.builds(Target, only=st.sampled_from(MEMBERS)),
)


@given(st.lists(targets, max_size=12))
def test_each_member_gets_exactly_its_updates(tos: list[Target]) -> None:
    members = frozenset(MEMBERS)
    outgoing = [Outgoing(update(n), to, members) for n, to in enumerate(tos)]
    sent = fan_out(outgoing)
    for address in MEMBERS:
        expected = [body(o.message) for o in outgoing if address in o.peers]
        got = received(sent.get(address, []))
        assert sorted(got) == sorted(expected)
        # Those for more than one member keep their order (withdrawals first).
        shared = [body(o.message) for o in outgoing if address in o.peers and o.to.only is None]
        assert [m for m in got if m in shared] == shared
        assert (address in sent) == bool(expected)


def test_members_share_one_buffer_and_a_skipped_member_gets_slices_of_it() -> None:
    members = frozenset(MEMBERS)
    outgoing = [
        Outgoing(update(0), EVERYONE, members),
        Outgoing(update(1), Target(skip="10.0.0.2"), members),
        Outgoing(update(2), EVERYONE, members),
    ]
    sent = fan_out(outgoing)
    (first,) = sent["10.0.0.1"]
    (third,) = sent["10.0.0.3"]
    assert first is third and isinstance(first, bytes)  # one object, not a copy each
    skipped = sent["10.0.0.2"]
    assert all(isinstance(c, memoryview) and c.obj is first for c in skipped)
    assert received(skipped) == [body(update(0)), body(update(2))]


def test_nothing_to_send_is_nothing() -> None:
    assert fan_out([]) == {}
