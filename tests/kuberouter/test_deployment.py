"""Deploying on a real cluster: the manifests in daemonset/ (each applies cleanly with
kubectl, holds what a node agent needs, and its ClusterRole allows every request the real
agent makes, and no more) and the Grafana dashboard in dashboard/ (every metric it queries
is one the real agent exports). The real agent: a box with every controller on."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from kuberouter import cli
from kuberouter.cluster import netns
from kuberouter.k8s.client import USER_AGENT
from kuberouter.options import Options, parse_command_line
from kuberouter.testing import audit, rbac, serve
from kuberouter.version import __version__
from tests.kuberouter.cluster.conftest import Box, new_box, torn_down
from tests.kuberouter.conftest import Kubectl
from tests.support import require_tools

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "daemonset"
IMAGE = f"localhost/kube-router:{__version__}"  # what scripts/agent-image.sh builds
CONTROLLERS = ("run_router", "run_firewall", "run_service_proxy")
FLAVOURS = {  # manifest -> the controllers it runs
    "kube-router-all-features": {"run_router", "run_firewall", "run_service_proxy"},
    "kube-router-beside-kube-proxy": {"run_router", "run_firewall"},
    "kube-router-service-proxy": {"run_service_proxy"},
    "kube-router-route-reflectors": {"run_router", "run_firewall", "run_service_proxy"},
}
METRICS = 20245  # the manifests' --metrics-port
KINDS = ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"]
Object = dict[str, Any]


def documents(flavour: str) -> dict[str, Object]:
    """The manifest's objects by kind (one of each kind)."""
    docs = [d for d in yaml.safe_load_all((MANIFESTS / f"{flavour}.yaml").read_text()) if d]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs), f"{flavour}: a kind twice"
    return by_kind


def pod_spec(flavour: str) -> Object:
    spec: Object = documents(flavour)["DaemonSet"]["spec"]["template"]["spec"]
    return spec


def agent_container(flavour: str) -> Object:
    (container,) = pod_spec(flavour)["containers"]
    return container


def options(flavour: str) -> Options:
    """The agent's options, as the kubelet starts it ($(VAR) expanded from the env)."""
    container = agent_container(flavour)
    env = {e["name"]: e.get("value", f"<{e['name']}>") for e in container.get("env", [])}
    argv = [re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], arg) for arg in container["args"]]
    parsed = parse_command_line(argv).options
    assert cli.validate(parsed) == [], flavour
    return parsed


def test_the_flavours_are_all_there() -> None:
    assert sorted(p.stem for p in MANIFESTS.glob("*.yaml")) == sorted(FLAVOURS)


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_the_agent_runs_what_the_flavour_says(flavour: str) -> None:
    parsed = options(flavour)
    assert {name for name in CONTROLLERS if getattr(parsed, name)} == FLAVOURS[flavour]
    container = agent_container(flavour)
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert parsed.hostname_override == "<NODE_NAME>"
    # Without kube-proxy the `kubernetes` ClusterIP works only once the agent runs: it is
    # told the API server's own address instead.
    assert ("KUBERNETES_SERVICE_HOST" in env) is parsed.run_service_proxy
    annotations = documents(flavour)["DaemonSet"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(parsed.metrics_port) != "0"


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_a_node_agent_has_its_privileges_mounts_and_probe(flavour: str) -> None:
    objects = documents(flavour)
    assert sorted(objects) == KINDS
    account, binding = objects["ServiceAccount"]["metadata"], objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": account["namespace"]}]  # fmt: skip
    spec, container = pod_spec(flavour), agent_container(flavour)
    assert spec["serviceAccountName"] == account["name"]
    assert objects["DaemonSet"]["metadata"]["namespace"] == account["namespace"]
    assert spec["hostNetwork"] is True
    assert container["securityContext"]["privileged"] is True
    probe = container["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", options(flavour).health_port)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for c in [container, *spec["initContainers"]]
              for m in c["volumeMounts"]}  # fmt: skip
    assert {m["name"] for m in mounts.values()} <= set(volumes)
    assert mounts["/lib/modules"]["readOnly"] is True  # modprobe for IPVS
    assert volumes[mounts["/run/xtables.lock"]["name"]]["hostPath"]["type"] == "FileOrCreate"
    assert volumes[mounts["/etc/cni/net.d"]["name"]]["hostPath"]["path"] == "/etc/cni/net.d"
    assert {c["image"] for c in [container, *spec["initContainers"]]} == {IMAGE}


def test_every_flavour_has_the_same_rbac() -> None:
    roles = {flavour: documents(flavour)["ClusterRole"]["rules"] for flavour in FLAVOURS}
    assert len({json.dumps(rules, sort_keys=True) for rules in roles.values()}) == 1


def run_init_step(flavour: str, root: Path) -> Path:
    """The init container's command, with each of its mounts made a folder under `root`
    (a ConfigMap mount holding the ConfigMap's files); returns the CNI folder."""
    objects, (init,) = documents(flavour), pod_spec(flavour)["initContainers"]
    volumes = {v["name"]: v for v in pod_spec(flavour)["volumes"]}
    script = init["command"][-1]
    for mount in sorted(init["volumeMounts"], key=lambda m: -len(m["mountPath"])):
        folder = root / mount["name"]
        folder.mkdir(exist_ok=True)
        if "configMap" in volumes[mount["name"]]:
            assert volumes[mount["name"]]["configMap"]["name"] == "kube-router-cfg"
            for key, text in objects["ConfigMap"]["data"].items():
                (folder / key).write_text(text)
        script = script.replace(mount["mountPath"], str(folder))
    subprocess.run(["/bin/sh", "-c", script], check=True, timeout=10)
    return root / "cni-conf-dir"


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_the_init_step_installs_the_cni_configuration_once(flavour: str, tmp_path: Path) -> None:
    cni = run_init_step(flavour, tmp_path)
    conflist = json.loads((cni / "10-kuberouter.conflist").read_text())
    (bridge,) = conflist["plugins"]
    assert (bridge["type"], bridge["bridge"], bridge["ipam"]["type"]) == (
        "bridge", "kube-bridge", "host-local")  # fmt: skip
    assert sorted(p.name for p in cni.iterdir()) == ["10-kuberouter.conflist"]  # no leftovers
    (cni / "10-kuberouter.conflist").write_text("edited on the node")
    run_init_step(flavour, tmp_path)
    assert (cni / "10-kuberouter.conflist").read_text() == "edited on the node"


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_kubectl_applies_the_manifest_cleanly(flavour: str, tmp_path: Path) -> None:
    require_tools("kubectl")
    manifest = str(MANIFESTS / f"{flavour}.yaml")
    with serve(token="t") as srv:
        kubectl = Kubectl(srv.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "cache")
        first = kubectl("apply", "-f", manifest).stdout.splitlines()
        assert len(first) == len(KINDS) and all(line.endswith(" created") for line in first)
        again = kubectl("apply", "-f", manifest).stdout.splitlines()
        assert all(line.endswith(" unchanged") for line in again), again
        stored = json.loads(kubectl("get", "-f", manifest, "-o", "json").stdout)["items"]
    assert sorted(obj["kind"] for obj in stored) == KINDS
    daemonset = next(obj for obj in stored if obj["kind"] == "DaemonSet")
    assert daemonset["spec"] == documents(flavour)["DaemonSet"]["spec"]


# The real agents, every controller on.

ALL_CONTROLLERS = ["--agent-arg=--run-router", "--agent-arg=--run-firewall",
                   "--agent-arg=--run-service-proxy", f"--agent-arg=--metrics-port={METRICS}",
                   # a malformed annotation, which the routing controller reports as an Event
                   "--node-annotation=node2:kube-router.io/path-prepend.repeat-n=999"]  # fmt: skip
CHANGES = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints: [{addresses: [10.244.0.2]}]
ports: [{port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
"""


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    """A two-node box, every controller on, that has taken in a LoadBalancer Service (and
    given it an address), its endpoints and a NetworkPolicy."""
    scratch = tmp_path_factory.mktemp("deployment")
    (scratch / "changes.yaml").write_text(CHANGES)
    with torn_down(new_box(scratch)) as made:
        up = made.ctl("up", "--nodes", "2", "--pods-per-node", "1", *ALL_CONTROLLERS)
        assert up.returncode == 0, up.stdout + up.stderr
        loaded = made.ctl("load", "-f", str(scratch / "changes.yaml"))
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        deadline = time.monotonic() + 60
        while not made.kubectl("get", "service", "web", "-o",
                               "jsonpath={.status.loadBalancer.ingress}").stdout.strip():  # fmt: skip
            assert time.monotonic() < deadline, "the LoadBalancer Service got no address"
            time.sleep(0.5)
        yield made


def agent_requests(log: Path, quiet: float = 5.0, timeout: float = 60.0) -> list[Object]:
    """The agents' records, once no new kind of request (verb and resource) has come for
    `quiet` seconds: a lease holder keeps renewing, but renewals are nothing new."""
    deadline, seen, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        records = [r for r in audit.read(log) if r["userAgent"] == USER_AGENT]
        kinds = len(rbac.used(records)) + len({r["requestURI"] for r in records
                                               if "objectRef" not in r})  # fmt: skip
        if kinds != seen:
            seen, since = kinds, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return records
        time.sleep(0.2)
    pytest.fail(f"the agents kept making new kinds of requests for {timeout:.0f}s")


@pytest.mark.privileged
@pytest.mark.slow
def test_the_cluster_role_allows_every_request_the_agent_makes(box: Box) -> None:
    records = agent_requests(box.state_dir / "audit.log")
    resources = {r["objectRef"]["resource"] for r in records if "objectRef" in r}
    assert {"pods", "networkpolicies"} <= resources  # the agents did talk to the server
    rules = documents("kube-router-all-features")["ClusterRole"]["rules"]
    refused = {(r["verb"], r["requestURI"].split("?")[0]) for r in rbac.refused(rules, records)}
    assert refused == set(), "the ClusterRole misses these"
    assert rbac.grants(rules) - rbac.used(records) == set(), "granted but never used"


# The dashboard.

DASHBOARD = REPO / "dashboard" / "kube-router.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}  # fmt: skip


def queries(dashboard: Object) -> list[str]:
    """Every PromQL expression of the dashboard: panels' targets and template variables."""
    found = []

    def walk(panels: list[Object]) -> None:
        for panel in panels:
            found.extend(target["expr"] for target in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["query"]["query"])
    return found


def metric_names(expr: str) -> set[str]:
    """The metrics a PromQL expression selects (functions, keywords, labels, strings,
    ranges and $variables left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)  # label matchers, ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"label_values\((\w+),[^)]*\)", r"\1", expr)  # Grafana's variable query
    names = re.findall(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {name for name in names if name.lower() not in PROMQL_WORDS}


def scrape(node: str, port: int) -> list[Metric]:
    """The metric families one agent's /metrics serves, read inside its node."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    return list(text_string_to_metric_families(netns.call_in(node, get)))


def exported(box: Box) -> dict[str, tuple[str, set[str], set[str]]]:
    """Every kube_router_ family the agents serve: its type, its labels and its samples'
    names, over both nodes (a labelled figure only the allocator's leader has shows there)."""
    found: dict[str, tuple[str, set[str], set[str]]] = {}
    for node in (f"{box.name}-node1", f"{box.name}-node2"):
        for family in scrape(node, METRICS):
            if family.name.startswith("kube_router_") and not family.name.endswith("_created"):
                _, labels, samples = found.setdefault(family.name, (family.type, set(), set()))
                labels.update(k for sample in family.samples for k in sample.labels)
                labels.discard("le")
                samples.update(sample.name for sample in family.samples)
    return found


def test_the_query_reader_finds_metrics() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, instance) (rate(a_bucket{x=~"$node",'
            'y="b c"}[$__rate_interval]))) / on (instance) group_left b_total - c')  # fmt: skip
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert metric_names("label_values(kube_router_build_info, instance)") == {
        "kube_router_build_info"
    }


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(metric_names(q) for q in queries(dashboard))
    datasources = {
        t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])
    }
    assert datasources == {"${datasource}"}


@pytest.mark.privileged
@pytest.mark.slow
def test_every_metric_the_dashboard_queries_is_exported(box: Box) -> None:
    served = set().union(*(samples for _, _, samples in exported(box).values()))
    assert "kube_router_build_info" in served
    wanted = set().union(*map(metric_names, queries(json.loads(DASHBOARD.read_text()))))
    assert wanted - served == set()


OPERATIONS = REPO / "docs" / "operations.md"
METRIC_ROW = re.compile(r"^\| `(kube_router_\w+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)


@pytest.mark.privileged
@pytest.mark.slow
def test_the_operations_guide_lists_every_exported_metric(box: Box) -> None:
    text = OPERATIONS.read_text()
    table = text[text.index("<!-- metrics -->") : text.index("<!-- end metrics -->")]
    documented = {name.removesuffix("_total"): (kind, set(re.findall(r"`(\w+)`", labels)))
                  for name, kind, labels in METRIC_ROW.findall(table)}  # fmt: skip
    served = {name: (kind, labels) for name, (kind, labels, _) in exported(box).items()}
    assert documented == served
