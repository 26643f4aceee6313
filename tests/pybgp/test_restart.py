"""Graceful restart bookkeeping (RFC 4724): our capability, and the selection deferral; its
notification support (RFC 8538): the N bit, Hard Reset, which session ends keep routes."""

from __future__ import annotations

import attrs
import pytest

from pybgp.config import ConfigError, parse
from pybgp.restart import (
    Deferral,
    RestartConfig,
    capability,
    forwarding_kept,
    hard_reset,
    keeps_routes,
    preserved_families,
)
from pybgp.session.connection import NotificationReceived
from pybgp.wire.capabilities import GracefulRestart, GracefulRestartFamily
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST
from pybgp.wire.notification import Notification
from tests.pybgp.test_connection import A_CFG, B_CFG, Link, down, sent

BOTH = (IPV4_UNICAST, IPV6_UNICAST)


def test_helper_only_announces_no_families() -> None:
    cap = capability(RestartConfig(), BOTH, restarting=True)
    assert cap == GracefulRestart(restart_time=120, notification=True)


def test_restarting_speaker_sets_the_r_bit_only_after_a_graceful_stop() -> None:
    config = RestartConfig(enabled=True, restart_time=90)
    fresh, back = capability(config, BOTH, False), capability(config, BOTH, True)
    assert not fresh.restart_state and back.restart_state
    assert forwarding_kept(fresh) == forwarding_kept(back) == frozenset(BOTH)
    assert preserved_families(fresh) == preserved_families(back) == frozenset(BOTH)


def test_only_the_families_asked_for_restart_gracefully() -> None:
    """kube-router's --bgp-graceful-restart-ipv6 off: IPv6 routes are not kept for us."""
    config = RestartConfig(enabled=True, families=frozenset({IPV4_UNICAST}))
    cap = capability(config, BOTH, restarting=False)
    assert preserved_families(cap) == forwarding_kept(cap) == frozenset({IPV4_UNICAST})


def peer_cap(restarting: bool = False) -> GracefulRestart:
    families = (GracefulRestartFamily(family=IPV4_UNICAST),)
    return GracefulRestart(restart_state=restarting, restart_time=120, families=families)


def test_deferral_waits_for_end_of_rib_of_every_family_of_every_peer() -> None:
    deferral = Deferral(["10.0.0.2", "10.0.0.3"])
    deferral.peer_up("10.0.0.2", BOTH, peer_cap())
    deferral.end_of_rib("10.0.0.2", IPV4_UNICAST)
    assert not deferral.done
    deferral.end_of_rib("10.0.0.2", IPV6_UNICAST)
    deferral.peer_up("10.0.0.3", [IPV4_UNICAST], None)  # no capability: still waited for
    assert not deferral.done
    deferral.end_of_rib("10.0.0.3", IPV4_UNICAST)
    assert deferral.done


def test_a_restarting_peer_is_waited_for_only_by_the_kernel() -> None:
    advertise = Deferral(["10.0.0.2"])
    kernel = Deferral(["10.0.0.2"], include_restarting=True)
    for deferral in (advertise, kernel):
        deferral.peer_up("10.0.0.2", [IPV4_UNICAST], peer_cap(restarting=True))
    assert advertise.done and not kernel.done
    kernel.end_of_rib("10.0.0.2", IPV4_UNICAST)
    assert kernel.done


def test_removed_neighbour_is_not_waited_for() -> None:
    deferral = Deferral(["10.0.0.2"])
    deferral.peer_gone("10.0.0.2")
    assert deferral.done


def test_config_table() -> None:
    base = {"global": {"asn": 65000, "router_id": "10.255.0.1"}}
    config = parse(
        {"global": {**base["global"], "graceful_restart": {"enabled": True, "restart_time": 30}}}
    )
    assert config.global_.graceful_restart == RestartConfig(enabled=True, restart_time=30)
    with pytest.raises(ConfigError, match=r"global\.graceful_restart\.restart_time"):
        parse({"global": {**base["global"], "graceful_restart": {"restart_time": 5000}}})


# -- RFC 8538 ----------------------------------------------------------------------------


def test_n_bit_announced_unless_turned_off() -> None:
    for enabled in (False, True):
        assert capability(RestartConfig(enabled=enabled), BOTH, False).notification
        off = RestartConfig(enabled=enabled, notification=False)
        assert not capability(off, BOTH, False).notification
    base = {"asn": 65000, "router_id": "10.255.0.1"}
    config = parse({"global": {**base, "graceful_restart": {"notification": False}}})
    assert config.global_.graceful_restart.notification is False


@pytest.mark.parametrize(
    ("sent_as", "goes_as"),
    [
        ((6, 1, b"\x00\x01\x00\x00\x00\x64"), (6, 9, b"\x06\x01\x00\x01\x00\x00\x00\x64")),
        ((6, 2, b"\x03bye"), (6, 9, b"\x06\x02\x03bye")),  # the shutdown communication kept
        ((6, 3, b""), (6, 9, b"\x06\x03")),
        ((6, 4, b""), (6, 9, b"\x06\x04")),
        ((6, 8, b""), (6, 8, b"")),  # out of resources: a restart may help
        ((6, 7, b""), (6, 7, b"")),  # collision
        ((3, 1, b""), (3, 1, b"")),  # an error: the routes are kept (§4)
        ((4, 0, b""), (4, 0, b"")),  # hold timer expired
    ],
)
def test_hard_reset_wraps_the_ceases_that_mean_gone_for_good(
    sent_as: tuple[int, int, bytes], goes_as: tuple[int, int, bytes]
) -> None:
    code, subcode, data = sent_as
    wrapped = hard_reset(Notification(code=code, subcode=subcode, data=data))
    assert (wrapped.code, wrapped.subcode, wrapped.data) == goes_as


def test_which_endings_keep_the_routes() -> None:
    error, hard = Notification(code=3, subcode=1), Notification(code=6, subcode=9)
    assert keeps_routes(None, False) and keeps_routes(None, True)  # RFC 4724 §4.2
    assert not keeps_routes(error, False)  # no N bit: a NOTIFICATION ends it for good
    assert keeps_routes(error, True)  # RFC 8538 §4
    assert not keeps_routes(hard, True)


def with_n_bit(n_a: bool, n_b: bool) -> Link:
    def cap(n: bool) -> GracefulRestart:
        return GracefulRestart(restart_time=120, notification=n)

    link = Link(
        attrs.evolve(A_CFG, graceful_restart=cap(n_a)),
        attrs.evolve(B_CFG, graceful_restart=cap(n_b)),
    )
    link.establish()
    return link


@pytest.mark.parametrize(("n_a", "n_b"), [(True, True), (True, False), (False, True)])
def test_n_bit_is_negotiated_when_both_set_it(n_a: bool, n_b: bool) -> None:
    link = with_n_bit(n_a, n_b)
    for side in (link.a, link.b):
        assert side.negotiated is not None
        assert side.negotiated.notification_restart is (n_a and n_b)


def test_administrative_shutdown_goes_as_hard_reset_under_the_n_bit() -> None:
    link = with_n_bit(True, True)
    events = link.record("a", link.a.stop(link.now))
    link.pump()
    assert sent(events) == [(6, 9, b"\x06\x02")]
    received = [e for e in link.log["b"] if isinstance(e, NotificationReceived)]
    assert received and received[-1].notification is not None
    assert (received[-1].notification.code, received[-1].notification.subcode) == (6, 9)
    for name in ("a", "b"):  # both sides drop the other's routes
        assert not keeps_routes(down(link.log[name]).notification, True)


def test_without_the_n_bit_a_shutdown_is_a_plain_cease() -> None:
    link = with_n_bit(True, False)
    assert sent(link.a.stop(link.now)) == [(6, 2, b"")]


def test_hold_timer_expiry_under_the_n_bit_keeps_the_routes_both_sides() -> None:
    link = with_n_bit(True, True)
    link.not_reading.add("a")  # A hears nothing: its hold timer runs out
    link.advance(link.now + 95)
    assert sent(link.log["a"]) == [(4, 0, b"")]
    link.not_reading.clear()
    link.pump()
    for name in ("a", "b"):
        ending = down(link.log[name]).notification
        assert ending is not None and ending.code == 4
        assert keeps_routes(ending, True)
