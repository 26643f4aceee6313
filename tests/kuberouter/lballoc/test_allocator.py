"""The allocator's rules on in-memory Services: who is ours, one address per family, never
twice (also across a restart and before the watch shows our writes), requests, releases."""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs
import pytest

from kuberouter.lballoc.allocator import Allocator, Plan, unreadable
from kuberouter.lballoc.pools import Pools
from kuberouter.model.service import Service

V4, V6 = "10.0.0.0/30", "fd00:1b::/126"


def lb(name: str, *ingress: str, **fields: Any) -> Service:
    values: dict[str, Any] = {"type": "LoadBalancer", "ip_families": ("IPv4",)}
    return Service(namespace="ns", name=name, load_balancer_ips=ingress, **(values | fields))


def allocator(*ranges: str, default_class: bool = True) -> Allocator:
    return Allocator(Pools.parse(ranges or (V4,)), default_class=default_class, hold=30.0)


def written(alloc: Allocator, service: Service, now: float = 0.0) -> Service:
    """Plan, "write" and observe the result, as the controller does."""
    plan = alloc.plan(service)
    alloc.observe(service.key, service)
    alloc.commit(plan, now)
    elsewhere = tuple(ip for ip in service.load_balancer_ips if not alloc.pools.contains(ip))
    done = attrs.evolve(service, load_balancer_ips=plan.holds + elsewhere)
    alloc.observe(done.key, done)
    return done


def test_pools_merge_ranges_and_walk_round_from_a_cursor() -> None:
    pools = Pools.parse(["10.0.0.4/31", "10.0.0.0/30", "10.0.0.2/32", "fd00::/127"])
    assert [str(n) for n in pools.networks] == ["10.0.0.0/30", "10.0.0.4/31", "fd00::/127"]
    assert pools.families() == ("IPv4", "IPv6") and pools.size("IPv4") == 6
    assert pools.first_free("IPv4", set(), None) == "10.0.0.0"
    assert (
        pools.first_free("IPv4", {"10.0.0.5"}, int(ipaddress.IPv4Address("10.0.0.4"))) == "10.0.0.0"
    )  # wrapped
    assert (
        pools.first_free("IPv4", {"10.0.0.4"}, int(ipaddress.IPv4Address("10.0.0.2"))) == "10.0.0.3"
    )
    taken = {f"10.0.0.{i}" for i in range(6)}
    assert pools.first_free("IPv4", taken, None) is None
    assert pools.first_free("IPv6", {"fd00::"}, None) == "fd00::1"
    with pytest.raises(ValueError, match=r"'10\.0\.0/33' is not a CIDR"):
        Pools.parse(["10.0.0/33"])


@pytest.mark.parametrize(
    ("service", "default_class", "ours"),
    [
        (lb("a"), True, True),
        (lb("a", load_balancer_class="default"), True, True),
        (lb("a", load_balancer_class="kube-router"), True, True),
        (lb("a", load_balancer_class="kube-router"), False, True),
        (lb("a"), False, False),
        (lb("a", load_balancer_class="metallb"), True, False),
        (lb("a", type="NodePort"), True, False),
    ],
)
def test_whose_services(service: Service, default_class: bool, ours: bool) -> None:
    assert allocator(default_class=default_class).is_ours(service) is ours


def test_addresses_are_never_handed_out_twice() -> None:
    alloc = allocator()
    a = written(alloc, lb("a"))
    b = written(alloc, lb("b"))
    assert (a.load_balancer_ips, b.load_balancer_ips) == (("10.0.0.0",), ("10.0.0.1",))
    assert alloc.plan(a) == Plan("ns/a", keep=("10.0.0.0",))  # settled: nothing to write
    assert alloc.allocated("IPv4") == 2


def test_a_restart_reads_back_what_is_allocated() -> None:
    alloc = allocator()
    alloc.reset([lb("a", "10.0.0.0"), lb("b", "10.0.0.2"), lb("c", external_ips=("10.0.0.1",))])
    assert alloc.plan(lb("d")).add == ("10.0.0.3",)


def test_external_ips_in_a_pool_count_as_used() -> None:
    alloc = allocator()
    alloc.observe("ns/x", Service(namespace="ns", name="x", external_ips=("10.0.0.0",)))
    assert alloc.plan(lb("a")).add == ("10.0.0.1",)


def test_our_writes_are_held_until_the_watch_shows_them() -> None:
    alloc = allocator()
    plan = alloc.plan(lb("a"))
    alloc.observe("ns/a", lb("a"))
    alloc.commit(plan, now=100.0)
    alloc.observe("ns/a", lb("a"))  # a stale view, without the address we wrote
    assert alloc.plan(lb("b")).add == ("10.0.0.1",)
    alloc.expire(now=131.0)  # the watch never showed it: not held any more
    alloc.observe("ns/a", lb("a"))
    assert alloc.allocated("IPv4") == 0


def test_the_cursor_moves_on_then_wraps_round_to_released_addresses() -> None:
    alloc = allocator()
    services = [written(alloc, lb(name)) for name in "abcd"]
    assert alloc.plan(lb("e")).problem == "no free IPv4 address left in --loadbalancer-ip-range"
    alloc.observe(services[1].key, None)  # b deleted
    assert alloc.plan(lb("e")).add == ("10.0.0.1",)


def test_dual_stack_in_the_service_order() -> None:
    alloc = allocator(V4, V6)
    plan = alloc.plan(lb("a", ip_families=("IPv6", "IPv4"), ip_family_policy="RequireDualStack"))
    assert plan.add == ("fd00:1b::", "10.0.0.0") and not plan.problem


def test_family_rules_with_one_pool() -> None:
    alloc = allocator(V4)
    prefer = alloc.plan(lb("a", ip_families=("IPv4", "IPv6"), ip_family_policy="PreferDualStack"))
    assert prefer.add == ("10.0.0.0",) and not prefer.problem
    require = alloc.plan(lb("b", ip_families=("IPv4", "IPv6"), ip_family_policy="RequireDualStack"))
    assert require.add == () and "RequireDualStack needs IPv4 and IPv6" in require.problem
    v6 = alloc.plan(lb("c", ip_families=("IPv6",)))
    assert v6.add == () and v6.problem == "no IPv6 range in --loadbalancer-ip-range"


def test_a_family_no_longer_wanted_is_released() -> None:
    alloc = allocator(V4, V6)
    plan = alloc.plan(lb("a", "10.0.0.0", "fd00:1b::", ip_families=("IPv4",)))
    assert (plan.keep, plan.release) == (("10.0.0.0",), ("fd00:1b::",))


def test_an_address_from_elsewhere_satisfies_its_family() -> None:
    alloc = allocator(V4, V6)
    plan = alloc.plan(lb("a", "192.0.2.9", ip_families=("IPv4", "IPv6")))
    assert plan.add == ("fd00:1b::",) and plan.keep == ()


def test_requested_addresses() -> None:
    alloc = allocator()
    a = written(alloc, lb("a", requested_load_balancer_ip="10.0.0.2"))
    assert a.load_balancer_ips == ("10.0.0.2",)
    taken = alloc.plan(lb("b", requested_load_balancer_ip="10.0.0.2"))
    assert (
        taken.add == () and taken.problem == "spec.loadBalancerIP 10.0.0.2 is already used by ns/a"
    )
    outside = alloc.plan(lb("c", requested_load_balancer_ip="192.0.2.1"))
    assert outside.problem == "spec.loadBalancerIP 192.0.2.1 is outside --loadbalancer-ip-range"
    moved = alloc.plan(lb("a", "10.0.0.2", requested_load_balancer_ip="10.0.0.3"))
    assert (moved.release, moved.add) == (("10.0.0.2",), ("10.0.0.3",))


def test_leaving_load_balancer_releases_and_other_classes_are_left_alone() -> None:
    alloc = allocator()
    assert alloc.plan(lb("a", "10.0.0.0", type="ClusterIP")).release == ("10.0.0.0",)
    other = alloc.plan(lb("b", "10.0.0.1", load_balancer_class="metallb"))
    assert other == Plan("ns/b", keep=("10.0.0.1",))
    alloc.observe("ns/b", lb("b", "10.0.0.1", load_balancer_class="metallb"))
    assert alloc.plan(lb("c")).add == ("10.0.0.0",)
    assert alloc.plan(lb("d", "10.0.0.1")).release == ("10.0.0.1",)  # b has it: d gives it up


def test_a_duplicate_stays_with_the_external_ip_then_the_first_name() -> None:
    alloc = allocator()
    alloc.reset([lb("b", "10.0.0.0"), lb("a", "10.0.0.0")])
    assert alloc.plan(lb("a", "10.0.0.0")).keep == ("10.0.0.0",)
    second = alloc.plan(lb("b", "10.0.0.0"))
    assert (second.release, second.add) == (("10.0.0.0",), ("10.0.0.1",))
    alloc.observe("ns/z", Service(namespace="ns", name="z", external_ips=("10.0.0.0",)))
    assert alloc.plan(lb("a", "10.0.0.0")).release == ("10.0.0.0",)


def test_a_service_the_model_refuses_still_holds_its_addresses() -> None:
    raw = {
        "metadata": {"name": "odd", "namespace": "ns"},
        "spec": {"externalIPs": ["10.0.0.1", "nonsense"], "ports": "not a list"},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.0"}, {"hostname": "x"}, 7]}},
    }
    stand_in = unreadable(raw)
    assert stand_in is not None and stand_in.key == "ns/odd"
    alloc = allocator()
    alloc.reset([stand_in])
    assert alloc.plan(stand_in) == Plan("ns/odd", keep=("10.0.0.0",))  # never written to
    assert alloc.plan(lb("a")).add == ("10.0.0.2",)
    assert unreadable({"metadata": {"name": 5}}) is None
