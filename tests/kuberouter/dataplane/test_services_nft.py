"""The nftables service proxy in a real kernel (one network namespace): incremental
writes, repair of drift, other tools' tables left alone, dual-stack, cleanup."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.services.nftables import NftablesServices
from kuberouter.model import EndpointSlice, Service
from kuberouter.proxy.incremental import IncrementalCompiler
from kuberouter.proxy.state import NodeFacts, ProxyState
from tests import netns
from tests.kuberouter.proxy.builders import endpoint, service, slice_of
from tests.kuberouter.proxy.flows import config
from tests.support import require_root, require_tools

pytestmark = pytest.mark.privileged
NODE = NodeFacts(name="node-1", addresses=("192.168.0.1", "fd00:1::1"),
                 pod_cidrs=("10.1.1.0/24", "10.1.2.0/24", "fd01::/64"))  # fmt: skip


@pytest.fixture
def ns() -> Iterator[str]:
    require_root()
    require_tools("ip", "nft")
    with netns.netns("pn") as name:
        yield name


def web(number: int, *ips: str, **spec: object) -> tuple[Service, EndpointSlice]:
    name = f"web{number}"
    made = service(name, f"10.96.0.{number}", f"fd00::{number:x}", type="NodePort",
                   ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30000 + number}],
                   **spec)  # type: ignore[arg-type]  # fmt: skip
    v4 = [endpoint(ip) for ip in ips if ":" not in ip]
    v6 = [endpoint(ip) for ip in ips if ":" in ip]
    return made, slice_of(name, *v4, *v6, family="IPv6" if v6 else "IPv4")


class Cluster:
    """A compiler fed like the controller feeds it."""

    def __init__(self, *flags: str) -> None:
        self.compiler = IncrementalCompiler(NODE, config("--enable-ipv6", *flags))

    def put(self, made: tuple[Service, EndpointSlice]) -> ProxyState:
        svc, eps = made
        self.compiler.set_service(svc.key, svc)
        self.compiler.set_slice(eps.key, eps)
        return self.compiler.state()


def listing(ns: str, family: int = 4) -> dict[str, object]:
    name = f"{'ip' if family == 4 else 'ip6'} kube-router-proxy-ipv{family}"
    done = netns.run("nft", "-j", "list", "table", *name.split(), netns=ns)
    found: dict[str, object] = {}
    for item in json.loads(done.stdout)["nftables"]:
        for kind in ("map", "set"):
            if kind in item:
                found[item[kind]["name"]] = item[kind].get("elem", [])
    return found


def vmap_targets(ns: str, name: str = "service-ips") -> dict[str, str]:
    targets = {}
    for key, value in listing(ns)[name]:  # type: ignore[misc]
        key_text = " . ".join(str(part) for part in key["concat"])
        targets[key_text] = value["goto"]["target"] if "goto" in value else str(value)
    return targets


def test_one_endpoint_change_is_one_transaction_touching_one_service(ns: str) -> None:
    cluster = Cluster()
    for number in range(1, 6):
        state = cluster.put(web(number, f"10.1.1.{number}", f"10.1.2.{number}"))
    runner = Runner(ns, record=True)
    backend = NftablesServices(runner)
    backend.apply(state, None)
    runner.forget()
    scaled = cluster.put(web(3, "10.1.1.3", "10.1.2.3", "10.1.2.33"))
    stats = backend.apply(scaled, state)
    writes = runner.calls_of("nft")
    writes = [call for call in writes if call.argv == ("nft", "-f", "-")]
    assert len(writes) == 1  # (a chain for a new endpoint count is then read back once)
    script = writes[0].input or ""
    assert "10.96.0.3" in script and "10.96.0.2 " not in script and "10.96.0.4 " not in script
    assert (stats.services_written, stats.repaired) == (1, False)
    assert vmap_targets(ns)["10.96.0.3 . tcp . 80"] == "internal-pick-cluster-3"
    assert vmap_targets(ns)["10.96.0.2 . tcp . 80"] == "internal-pick-cluster-2"
    # a reconcile finds nothing to repair: the incremental writes were exact
    assert not backend.reconcile(scaled).changed


def test_an_annotation_only_change_writes_nothing(ns: str) -> None:
    cluster = Cluster()
    state = cluster.put(web(1, "10.1.1.1"))
    runner = Runner(ns, record=True)
    backend = NftablesServices(runner)
    backend.apply(state, None)
    runner.forget()
    noted = cluster.put(web(1, "10.1.1.1", annotations={"example.com/owner": "team-a"}))
    stats = backend.apply(noted, state)
    assert runner.calls == [] and not stats.changed


def test_reconcile_repairs_drift_and_leaves_other_tables_alone(ns: str) -> None:
    cluster = Cluster()
    for number in range(1, 4):
        state = cluster.put(web(number, f"10.1.1.{number}"))
    subprocess_nft(
        ns,
        "add table ip other-tool\nadd chain ip other-tool c { type nat hook prerouting priority 0; }",
    )
    backend = NftablesServices(Runner(ns))
    backend.apply(state, None)
    where = "ip kube-router-proxy-ipv4"
    subprocess_nft(ns, f"delete element {where} service-ips {{ 10.96.0.2 . tcp . 80 }}\n"
                       f"flush chain {where} masquerading\n"
                       f"flush chain {where} pick-cluster-1\n"
                       f"add element {where} no-endpoint-services {{ 10.96.0.9 . tcp . 9 : drop }}")  # fmt: skip
    stats = backend.reconcile(state)
    assert stats.changed and stats.repaired
    assert vmap_targets(ns)["10.96.0.2 . tcp . 80"] == "internal-pick-cluster-1"
    assert "10.96.0.9 . tcp . 9" not in vmap_targets(ns, "no-endpoint-services")
    assert not backend.reconcile(state).changed
    rules = netns.run("nft", "list", "chain", *where.split(), "pick-cluster-1", netns=ns).stdout
    assert "map @cluster-1" in rules  # the pick chain came back (with its map made anew)
    assert "other-tool" in netns.run("nft", "list", "tables", netns=ns).stdout
    backend.cleanup()
    tables = netns.run("nft", "list", "tables", netns=ns).stdout
    assert "kube-router-proxy" not in tables and "other-tool" in tables


def test_dual_stack_services_program_both_tables(ns: str) -> None:
    cluster = Cluster()
    state = cluster.put(web(1, "fd01::10"))
    NftablesServices(Runner(ns)).apply(state, None)
    six = listing(ns, 6)
    assert any("fd01::10" in json.dumps(element) for element in six["cluster-1"])  # type: ignore[attr-defined]
    assert listing(ns, 4)["no-endpoint-services"]  # the IPv4 port has no endpoint: reject


def test_a_failed_incremental_write_falls_back_to_a_repair(ns: str) -> None:
    cluster = Cluster()
    state = cluster.put(web(1, "10.1.1.1"))
    backend = NftablesServices(Runner(ns))
    backend.apply(state, None)
    subprocess_nft(ns, "delete table ip kube-router-proxy-ipv4")  # someone removed it
    scaled = cluster.put(web(1, "10.1.1.1", "10.1.1.2"))
    stats = backend.apply(scaled, state)
    assert stats.repaired
    assert vmap_targets(ns)["10.96.0.1 . tcp . 80"] == "internal-pick-cluster-2"


def subprocess_nft(ns: str, text: str) -> None:
    import subprocess

    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=text + "\n", text=True,
                   check=True, capture_output=True)  # fmt: skip
