"""Service semantics the compiler decides, one rule at a time."""

from __future__ import annotations

import pytest

from kuberouter.options import parse_command_line
from kuberouter.proxy.compiler import compile_service
from kuberouter.proxy.config import ProxyConfig
from kuberouter.proxy.state import ServicePlan, VirtualService
from tests.kuberouter.proxy.builders import endpoint, service, slice_of


def config(*flags: str) -> ProxyConfig:
    return ProxyConfig.from_options(parse_command_line(list(flags)).options)


def only(plan: ServicePlan) -> VirtualService:
    assert len(plan.virtual_services) == 1, plan
    return plan.virtual_services[0]


def addresses(backends: tuple[object, ...]) -> list[str]:
    return [backend.address for backend in backends]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("made", "reason"),
    [
        (service("x", type="ExternalName", externalName="example.org"), "type ExternalName"),
        (service("x"), "headless (no cluster IP)"),
        (
            service("x", "10.96.0.1", labels={"service.kubernetes.io/service-proxy-name": "o"}),
            "'o'",
        ),
        (service("x", "10.96.0.1", labels={"service.kubernetes.io/headless": ""}), "headless"),
    ],
)
def test_services_another_proxy_or_nobody_handles_are_left_alone(made, reason) -> None:  # type: ignore[no-untyped-def]
    plan = compile_service(made, [], "node-1", config())
    assert plan.virtual_services == ()
    assert plan.ignored is not None and reason in plan.ignored


def test_ready_endpoints_win_over_terminating_ones_and_local_falls_back_on_its_own() -> None:
    svc = service("x", "10.96.0.1", externalTrafficPolicy="Local", type="NodePort",
                  ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30000}])  # fmt: skip
    eps = slice_of("x", endpoint("10.1.0.1", "node-2"),
                   endpoint("10.1.0.2", "node-1", ready=False, serving=True, terminating=True),
                   endpoint("10.1.0.3", "node-1", ready=False, serving=False))  # fmt: skip
    vs = only(compile_service(svc, [eps], "node-1", config()))
    assert addresses(vs.cluster_backends) == ["10.1.0.1:8080"]
    # no ready endpoint here: this node's serving-terminating one is used for Local
    assert addresses(vs.local_backends) == ["10.1.0.2:8080"]
    assert vs.local_backends[0].terminating and vs.local_backends[0].local


def test_endpoints_match_the_port_by_name_and_protocol_and_dedupe_across_slices() -> None:
    svc = service("x", "10.96.0.1", ports=[
        {"name": "a", "port": 80, "targetPort": "web"}, {"name": "b", "port": 53, "protocol": "UDP"}])  # fmt: skip
    ports = [{"name": "a", "port": 8080}, {"name": "b", "port": 5353, "protocol": "UDP"},
             {"name": "c", "port": 9}]  # fmt: skip
    first = slice_of("x", endpoint("10.1.0.1", ready=False), name="x-1", ports=ports)
    second = slice_of("x", endpoint("10.1.0.1"), endpoint("10.1.0.2"), name="x-2", ports=ports)
    named = slice_of("x", endpoint("10.1.0.9"), name="x-3", ports=[{"name": "a", "port": None}])
    fqdn = slice_of("x", {"addresses": ["example.org"]}, name="x-4", family="FQDN", ports=ports)
    plan = compile_service(svc, [first, second, named, fqdn], "node-1", config())
    a, b = plan.virtual_services
    assert addresses(a.cluster_backends) == ["10.1.0.1:8080", "10.1.0.2:8080"]
    assert (b.protocol, addresses(b.cluster_backends)) == (
        "UDP",
        ["10.1.0.1:5353", "10.1.0.2:5353"],
    )


def test_dual_stack_compiles_one_virtual_service_per_enabled_family() -> None:
    svc = service("x", "10.96.0.1", "fd00::1")
    eps = [slice_of("x", endpoint("10.1.0.1")), slice_of("x", endpoint("fd01::1"), family="IPv6")]
    only_v4 = compile_service(svc, eps, "node-1", config())
    assert [vs.family for vs in only_v4.virtual_services] == [4]
    assert only_v4.skipped[0].reason == "IPv6 is not enabled"
    both = compile_service(svc, eps, "node-1", config("--enable-ipv6"))
    v4, v6 = both.virtual_services
    assert addresses(v6.cluster_backends) == ["[fd01::1]:8080"]
    assert v6.frontends[0].address == "fd00::1" and v4.frontends[0].address == "10.96.0.1"


def test_external_and_load_balancer_ips_follow_strict_validation() -> None:
    svc = service("x", "10.96.0.1", type="LoadBalancer", externalIPs=["203.0.113.1", "192.0.2.1"],
                  ports=[{"name": "http", "port": 80, "nodePort": 31000}],
                  status={"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}, {"hostname": "lb"}]}})  # fmt: skip
    kinds = lambda plan: [(f.kind, f.address) for f in only(plan).frontends]  # noqa: E731
    strict = compile_service(svc, [], "n", config())
    assert kinds(strict) == [("ClusterIP", "10.96.0.1"), ("NodePort", None)]
    assert {s.what for s in strict.skipped} == {"externalIP 203.0.113.1", "externalIP 192.0.2.1",
                                                "LoadBalancer IP 198.51.100.1"}  # fmt: skip
    ranged = compile_service(svc, [], "n", config("--service-external-ip-range=203.0.113.0/24",
                                                  "--loadbalancer-ip-range=198.51.100.0/24"))  # fmt: skip
    assert kinds(ranged)[2:] == [("ExternalIP", "203.0.113.1"), ("LoadBalancer", "198.51.100.1")]
    loose = compile_service(svc, [], "n", config("--strict-external-ip-validation=false"))
    assert len(kinds(loose)) == 5


def test_node_ports_outside_the_range_are_skipped_with_the_reason() -> None:
    svc = service("x", "10.96.0.1", type="NodePort",
                  ports=[{"name": "http", "port": 80, "nodePort": 30100}])  # fmt: skip
    plan = compile_service(svc, [], "n", config("--service-node-port-range=31000-32000"))
    assert [f.kind for f in only(plan).frontends] == ["ClusterIP"]
    assert plan.skipped[0].reason == "outside --service-node-port-range"


def test_kube_router_annotations() -> None:
    svc = service("x", "10.96.0.1", annotations={
        "kube-router.io/service.scheduler": "mh", "kube-router.io/service.schedflags": "flag-2,bogus",
        "kube-router.io/service.dsr": "tunnel", "kube-router.io/service.local": "true",
        "kube-router.io/service.hairpin": "", "kube-router.io/service.hairpin.externalips": ""})  # fmt: skip
    vs = only(compile_service(svc, [], "n", config()))
    assert (vs.scheduler, vs.sched_flags, vs.dsr) == ("mh", ("flag-2",), True)
    assert vs.external_local and not vs.internal_local
    assert vs.hairpin and vs.hairpin_external
    unknown = service("y", "10.96.0.2", annotations={"kube-router.io/service.scheduler": "fifo"})
    assert only(compile_service(unknown, [], "n", config())).scheduler == "rr"


def test_session_affinity_and_source_ranges() -> None:
    svc = service("x", "10.96.0.1", sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}},
                  loadBalancerSourceRanges=["192.0.2.1/24", "2001:db8::/64"])  # fmt: skip
    vs = only(compile_service(svc, [], "n", config()))
    assert vs.affinity_timeout == 30
    assert vs.source_ranges == ("192.0.2.0/24",)
    plain = only(compile_service(service("y", "10.96.0.2"), [], "n", config()))
    assert plain.affinity_timeout is None


def test_a_service_without_usable_endpoints_rejects_and_local_without_local_drops() -> None:
    svc = service("x", "10.96.0.1", internalTrafficPolicy="Local")
    nothing = only(compile_service(svc, [], "n", config()))
    assert nothing.empty_verdict(nothing.frontends[0]) == "reject"
    elsewhere = only(
        compile_service(svc, [slice_of("x", endpoint("10.1.0.1", "other"))], "n", config())
    )
    assert elsewhere.empty_verdict(elsewhere.frontends[0]) == "drop"
