"""The real agents' firewall, end to end: packets between pods agree with `policy simulate`.

A two-node box (kube-router-ctl cluster) whose pods are the e2e netpol topology of
fixtures/netpol/cluster.yaml (namespaces x, y, z; pods a, b, c, with their labels and
named container ports), given to `up -f` so that each Pod becomes a network namespace on
its node. One real `kube-router` agent per node runs the firewall with the back end under
test. Scenario after scenario, the test removes every NetworkPolicy and waits until all
flows are open, then loads the scenario's policies with `kube-router-ctl cluster load` and
waits (probe rounds until they agree, bounded) until real TCP, UDP and SCTP flows between
every ordered pair of distinct pods, on ports 80 and 81, match the matrix that
`kube-router-ctl policy simulate -o json` prints for the objects the API server holds.
The same matrix must also match the scenario's e2e truth tables, so the box is faithful to
the fixture (ipBlock CIDRs are rewritten from the fixture's addresses to the box's).
Blocked flows must be refused (REJECT), never lost. A pod's traffic to itself stays on
its loopback and never meets the firewall, so the diagonal is not probed.

Back ends: iptables + ipset as the agent picks it on a fresh node (nft variant), iptables
forced to the legacy variant (the KUBE-IPTABLES-HINT chain a kubelet leaves, made by `up`
before the agents start), and nftables (--use-nftables-for-netpol). Each box is torn down
after its scenarios, also on failure, and nothing of it may be left.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from kuberouter.cluster import UpOptions, up
from kuberouter.cluster.api import Api
from kuberouter.cluster.state import State
from kuberouter.cluster.topology import Topology
from kuberouter.netpol.truthtable import parse_table
from tests.kuberouter.cluster.conftest import REPO, Box, new_box, torn_down
from tests.kuberouter.dataplane.probe import Endpoint, Flow, Prober
from tests.support import require_tools

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

FIXTURES = REPO / "fixtures" / "netpol"
# Each is loaded on its own (the previous one's policies removed first); every one blocks
# something, so its matrix differs from the all-open state probed just before it.
SCENARIOS = (
    "default-deny-ingress",  # deny-all ingress in a namespace
    "allow-from-namespace-by-label",  # ingress from a namespaceSelector
    "named-port-from-namespace",  # a named port (80 open, 81 closed) from a namespace
    "named-port-egress",  # egress to a named port of pods on both nodes
    "egress-cidr-except",  # egress to an ipBlock with an except
    "sctp-isolates",  # one protocol allowed: SCTP 80 open, TCP and UDP blocked
)
PORTS = (80, 81)
SETTLE = 20.0  # seconds for the agents to program a change (normally well under one)
ROUND = 2.0  # seconds a round of probes waits for its last answer (REJECTs come at once)
POLL = (0.05, 1.0)  # seconds between rounds that do not agree yet: first, doubling up to
NETPOL_API = "/apis/networking.k8s.io/v1"
# A node answers hundreds of blocked flows at once; the kernel's ICMP error rate limit would
# turn most REJECTs into silence, so it is off in the box's nodes (as in the data-plane tests).
UNLIMITED_ICMP = ("sysctl", "-q", "-w", "net.ipv4.icmp_ratemask=0")

Matrix = dict[str, dict[str, bool]]


@dataclass(frozen=True)
class Backend:
    name: str
    agent_args: tuple[str, ...]
    iptables_hint: Literal["legacy", "nft"] | None
    programs: str  # where the agent's rules must show up: iptables-nft, iptables-legacy, nftables

    @property
    def tools(self) -> tuple[str, ...]:
        if self.programs == "nftables":
            return ("nft",)
        return ("ipset", f"{self.programs}-save", f"{self.programs}-restore")


BACKENDS = (
    # A fresh node has no hint chain and no rules: the agent picks the nft variant.
    Backend("iptables-picked", ("--run-firewall",), None, "iptables-nft"),
    Backend("iptables-legacy", ("--run-firewall",), "legacy", "iptables-legacy"),
    Backend("nftables", ("--run-firewall", "--use-nftables-for-netpol"), None, "nftables"),
)


@dataclass
class FirewallBox:
    box: Box
    backend: Backend
    api: Api
    pods: dict[str, Endpoint]  # "x/a" -> its namespace and address in the box
    protocols: tuple[str, ...]

    def flows(self) -> list[Flow]:
        return [
            Flow(src, dst, protocol, port)
            for src in self.pods.values()
            for dst in self.pods.values()
            if src != dst
            for protocol in self.protocols
            for port in PORTS
        ]

    def objects(self) -> list[dict[str, Any]]:
        """Namespaces, Pods and NetworkPolicies as the API server (and so the agents) has them."""
        found = []
        for kind in ("Namespace", "Pod", "NetworkPolicy"):
            for item in self.api.items(kind):
                meta = item["metadata"]
                kept = {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}
                obj = {"apiVersion": item.get("apiVersion", ""), "kind": kind, "metadata": kept}
                obj.update({k: item[k] for k in ("spec", "status") if k in item})
                found.append(obj)
        return found

    def remove_policies(self) -> None:
        for item in self.api.items("NetworkPolicy"):
            meta = item["metadata"]
            path = f"{NETPOL_API}/namespaces/{meta['namespace']}/networkpolicies/{meta['name']}"
            status, reply = self.api.request("DELETE", path)
            assert status == 200, f"DELETE {path}: {status} {reply}"

    def programmed_by(self) -> dict[str, set[str]]:
        """Where each node's agent has its rules: which iptables variants, and/or nftables."""
        found: dict[str, set[str]] = {}
        for node in (f"{self.box.name}-node1", f"{self.box.name}-node2"):
            found[node] = set()
            for variant in ("iptables-nft", "iptables-legacy"):
                saved = self.box.exec_in(node, f"{variant}-save", "-t", "filter")
                if ":KUBE-ROUTER-FORWARD " in saved.stdout:
                    found[node].add(variant)
            nft = self.box.exec_in(node, "nft", "list", "table", "ip", "kube-router-filter-ipv4")
            if nft.returncode == 0:
                found[node].add("nftables")
        return found

    def agent_logs(self, lines: int = 8) -> str:
        tails = []
        for log in sorted((self.box.state_dir / "logs").glob("agent-*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(tails)


# -- the box --------------------------------------------------------------------------------


def _sctp_filtering(backend: Backend) -> bool:
    """Netfilter can match SCTP here: nftables always; iptables needs the xt sctp match."""
    if backend.programs == "nftables":
        return True
    matches = Path("/proc/net/ip_tables_matches")
    return matches.exists() and "sctp" in matches.read_text().split()


def _fixture_documents() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((FIXTURES / "cluster.yaml").read_text()))


def _pod_manifests(box: Box) -> Path:
    """cluster.yaml for `up -f`: node-<i> becomes the box's node<i>; status is the box's."""
    documents = []
    for doc in _fixture_documents():
        if doc["kind"] == "Pod":
            index = doc["spec"]["nodeName"].removeprefix("node-")
            doc["spec"]["nodeName"] = f"{box.name}-node{index}"
            del doc["status"]
        documents.append(doc)
    path = box.scratch / "pods.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path


def _endpoints(box: Box, api: Api) -> dict[str, Endpoint]:
    state = State.load(box.state_dir)
    assert state is not None
    topology = Topology.build(state.name, state.nodes, state.pods_per_node, state.placed)
    registered = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in api.items("Pod")
    }
    found = {}
    for node, pod in topology.pods():
        obj = registered[pod.key]
        assert (obj["spec"]["nodeName"], obj["status"]["podIP"]) == (node.name, pod.ip)
        found[pod.key] = Endpoint(pod.key, pod.netns, pod.ip)
    assert sorted(found) == sorted(registered) == [f"{n}/{p}" for n in "xyz" for p in "abc"]
    return found


@pytest.fixture(scope="module", params=BACKENDS, ids=lambda backend: backend.name)
def fwbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FirewallBox]:
    backend: Backend = request.param
    box = new_box(tmp_path_factory.mktemp(backend.name), prefix="fw")
    require_tools(*backend.tools)
    with torn_down(box):
        said: list[str] = []
        up(
            UpOptions(
                name=box.name,
                nodes=2,
                pods_per_node=0,
                state_dir=box.state_dir,
                manifests=[str(_pod_manifests(box))],
                agent_args=backend.agent_args,
                iptables_hint=backend.iptables_hint,
                workloads=False,  # the test's own Prober serves in the pods
                say=said.append,
            )
        )
        status = box.ctl("status")
        assert status.returncode == 0, status.stdout + status.stderr
        for index in (1, 2):  # every REJECT answered: no ICMP error rate limit on the nodes
            sysctl = box.exec_in(f"{box.name}-node{index}", *UNLIMITED_ICMP)
            assert sysctl.returncode == 0, sysctl.stderr
        api = Api(box.kubeconfig, f"{box.name}-fabric")
        pods = _endpoints(box, api)
        protocols = ("TCP", "UDP", "SCTP") if _sctp_filtering(backend) else ("TCP", "UDP")
        if "SCTP" not in protocols:
            print(f"{backend.name}: no SCTP match in this kernel; SCTP flows not probed")
        yield FirewallBox(box, backend, api, pods, protocols)


@pytest.fixture
def prober(fwbox: FirewallBox) -> Iterator[Prober]:
    """Servers in every pod, for one test: every flow it sends has its own source port (a
    Prober has 45,000), enough for a test's two settles even when they time out."""
    made = Prober(fwbox.pods.values(), fwbox.pods.values(), ports=PORTS)
    try:
        yield made
    finally:
        made.close()


# -- what simulate says, what the fixture says -----------------------------------------------


@functools.cache
def _simulate(objects: str, probes: tuple[tuple[str, int], ...]) -> dict[tuple[str, int], Matrix]:
    """`kube-router-ctl policy simulate -o json` on these objects (YAML), one run per
    (protocol, port), side by side; cached (the same objects come back between scenarios)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as cluster:
        cluster.write(objects)
        cluster.flush()
        simulate = [sys.executable, "-m", "kuberouter.ctl", "policy", "simulate", "-f"]
        runs = {
            (protocol, port): subprocess.Popen(
                [*simulate, cluster.name, f"--port={port}", f"--protocol={protocol}", "-o=json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            for protocol, port in probes
        }
        matrices = {}
        for probe, run in runs.items():
            out, err = run.communicate(timeout=60)
            assert run.returncode == 0, f"simulate {probe}: {err}"
            matrices[probe] = json.loads(out)
    return matrices


def _expected(fw: FirewallBox) -> dict[Flow, bool]:
    objects = yaml.safe_dump_all(fw.objects(), sort_keys=True)
    matrices = _simulate(
        objects, tuple((protocol, port) for protocol in fw.protocols for port in PORTS)
    )
    return {
        flow: matrices[(flow.protocol, flow.port)][flow.src.name][flow.dst.name]
        for flow in fw.flows()
    }


def _fixture_tables(scenario: str) -> dict[tuple[str, int], Matrix]:
    tables = {}
    for path in sorted((FIXTURES / scenario).glob("expected-*.txt")):
        port, protocol = path.stem.removeprefix("expected-").split("-")
        tables[(protocol, int(port))] = parse_table(path.read_text())
    return tables


def _policies(scenario: str, pods: dict[str, Endpoint]) -> list[dict[str, Any]]:
    """The scenario's policies with ipBlocks moved from the fixture's pod addresses to the
    box's: a pod's /32 becomes its box address; any other CIDR must hold the same pods."""
    fixture_ips = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": d["status"]["podIP"]
        for d in _fixture_documents()
        if d["kind"] == "Pod"
    }
    moved = {f"{ip}/32": f"{pods[key].ip}/32" for key, ip in fixture_ips.items()}

    def move(cidr: str) -> str:
        if cidr in moved:
            return moved[cidr]
        network = ipaddress.ip_network(cidr)
        for key, ip in fixture_ips.items():
            inside = ipaddress.ip_address(ip) in network
            assert inside == (ipaddress.ip_address(pods[key].ip) in network), (cidr, key)
        return cidr

    documents = list(yaml.safe_load_all((FIXTURES / scenario / "policies.yaml").read_text()))
    assert {d["kind"] for d in documents} == {"NetworkPolicy"}, "label changes are not probed"
    for policy in documents:
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if block := peer.get("ipBlock"):
                    block["cidr"] = move(block["cidr"])
                    block["except"] = [move(cidr) for cidr in block.get("except", [])]
    return documents


# -- probing until the data plane agrees ------------------------------------------------------


def _disagreements(outcomes: dict[Flow, str], expected: dict[Flow, bool]) -> list[str]:
    wrong = []
    for flow, allowed in expected.items():
        outcome = outcomes.get(flow, "not probed")
        if outcome not in ("open", "refused") or (outcome == "open") != allowed:
            verdict = "allowed" if allowed else "blocked"
            wrong.append(
                f"{flow.src.name} -> {flow.dst.name} {flow.port}/{flow.protocol}:"
                f" simulate says {verdict}, the packet was {outcome}"
            )
    return sorted(wrong)


def _settle(fw: FirewallBox, prober: Prober, expected: dict[Flow, bool], what: str) -> float:
    """Probe every flow, round after round, until all agree with `expected` (seconds taken);
    fail with the last round's disagreements after SETTLE seconds."""
    started, pause = time.monotonic(), POLL[0]
    while True:
        wrong = _disagreements(prober.run(expected, timeout=ROUND), expected)
        if not wrong:
            return time.monotonic() - started
        if time.monotonic() - started > SETTLE:
            shown = "\n  ".join(wrong[:40])
            pytest.fail(
                f"{fw.backend.name}, {what}: {len(wrong)} of {len(expected)} flows still"
                f" disagree with simulate after {SETTLE:.0f}s:\n  {shown}\n{fw.agent_logs()}"
            )
        time.sleep(pause)
        pause = min(2 * pause, POLL[1])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_real_traffic_agrees_with_simulate(
    fwbox: FirewallBox, prober: Prober, scenario: str
) -> None:
    fw = fwbox
    fw.remove_policies()
    open_all = _expected(fw)
    assert all(open_all.values()), "without policies simulate must allow every flow"
    _settle(fw, prober, open_all, "no policies")

    policies = _policies(scenario, fw.pods)
    path = fw.box.scratch / f"{scenario}.yaml"
    path.write_text(yaml.safe_dump_all(policies))
    loaded = fw.box.ctl("load", "-f", str(path))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    expected = _expected(fw)
    assert expected != open_all, "the scenario must block something, or nothing is shown"
    for (protocol, port), table in _fixture_tables(scenario).items():
        if protocol not in fw.protocols:
            continue
        simulated = {
            (flow.src.name, flow.dst.name): allowed
            for flow, allowed in expected.items()
            if (flow.protocol, flow.port) == (protocol, port)
        }
        differ = [pair for pair, allowed in simulated.items() if table[pair[0]][pair[1]] != allowed]
        assert differ == [], f"simulate disagrees with the e2e table {port}/{protocol}: {differ}"

    seconds = _settle(fw, prober, expected, scenario)
    blocked = sum(not allowed for allowed in expected.values())
    print(f"{fw.backend.name} {scenario}: {len(expected)} flows, {blocked} blocked,"
          f" agreed after {seconds:.2f}s")  # fmt: skip
    nodes = (f"{fw.box.name}-node1", f"{fw.box.name}-node2")
    assert fw.programmed_by() == {node: {fw.backend.programs} for node in nodes}
