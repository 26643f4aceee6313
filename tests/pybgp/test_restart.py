"""Graceful restart bookkeeping (RFC 4724): our capability, and the selection deferral."""

from __future__ import annotations

import pytest

from pybgp.config import ConfigError, parse
from pybgp.restart import Deferral, RestartConfig, capability, forwarding_kept, preserved_families
from pybgp.wire.capabilities import GracefulRestart, GracefulRestartFamily
from pybgp.wire.constants import IPV4_UNICAST, IPV6_UNICAST

BOTH = (IPV4_UNICAST, IPV6_UNICAST)


def test_helper_only_announces_no_families() -> None:
    cap = capability(RestartConfig(), BOTH, restarting=True)
    assert cap == GracefulRestart(restart_time=120)


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
