"""The watch layer against the project's test API server (real HTTP, TLS and a token)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from kuberouter.k8s import CacheSyncTimeout, Change, Store, Watcher
from kuberouter.k8s.store import KIND_NAMES, MODEL_TYPES
from kuberouter.model import (
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Labels,
    NetworkPolicy,
    Node,
    Pod,
    Service,
    ServicePort,
)
from kuberouter.testing import load_manifests, serve
from kuberouter.testing.apiserver import DEFAULT_NAMESPACES, ApiServer
from tests.kuberouter.k8s.conftest import (
    BASIC,
    EXTRA,
    MALFORMED,
    TOKEN,
    pending,
    receive,
    running,
    settle,
    wait_until,
)

MakeWatcher = Callable[..., Watcher]


def seeded_counts(*paths: Path) -> dict[str, int]:
    counts = Counter(doc["kind"] for doc in load_manifests(paths))
    counts["Namespace"] += len(DEFAULT_NAMESPACES)
    return {kind: counts[kind] for kind in KIND_NAMES}


def raw(srv: ApiServer, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    from kuberouter.testing.resources import RESOURCES

    resource = next(r for r in RESOURCES if r.kind == kind)
    return srv.store.get(resource, namespace, name)


def new_pod(name: str, ip: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "web", "labels": labels or {"app": "web"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running", "podIP": ip},
    }


# Initial sync.


async def test_initial_sync_of_all_six_kinds(make_watcher: MakeWatcher) -> None:
    async with running(make_watcher()) as watcher:
        snapshot = watcher.store.snapshot()
        assert snapshot.sizes() == seeded_counts(BASIC, EXTRA)
        assert all(watcher.stats[kind].lists == 1 for kind in KIND_NAMES)

        node = snapshot.get(Node, "node-c")
        assert node is not None
        assert node.pod_cidrs == ("10.244.2.0/24", "fd00:10:244:2::/64")
        assert node.internal_ips == ("192.168.56.13", "fd00:56::13")
        assert node.external_ips == ("203.0.113.13",)
        assert (node.bgp.asn, node.bgp.rr_client, node.bgp.rr_server) == (64513, "0.0.0.42", None)
        assert node.bgp.pod_cidrs == ("10.245.0.0/24", "fd00:10:245::/64")
        assert node.effective_pod_cidrs == node.bgp.pod_cidrs
        assert node.bgp.local_addresses == ("192.168.56.13",)
        assert all(key.startswith("kube-router.io/") for key in node.annotations)
        assert "kube-router.io/peers" in node.annotations

        service = snapshot.get(Service, "web/web-lb")
        assert service is not None
        assert (service.type, service.cluster_ips) == ("LoadBalancer", ("10.96.0.60",))
        assert service.external_ips == ("203.0.113.10",)
        assert service.load_balancer_ips == ("198.51.100.7",)
        assert service.ports[0] == ServicePort(
            name="http", protocol="TCP", port=80, target_port="http", node_port=30080
        )
        assert service.ports[1].protocol == "UDP" and service.ports[1].target_port == 5353
        assert service.selector == Labels({"app": "web"})
        assert dict(service.annotations) == {
            "kube-router.io/service.scheduler": "mh",
            "kube-router.io/service.schedflags": "flag-1,flag-2",
        }
        assert service.external_traffic_policy == "Local"
        assert service.internal_traffic_policy == "Cluster"
        assert (service.session_affinity, service.session_affinity_timeout) == ("ClientIP", 600)
        headless = snapshot.get(Service, "db/postgres")
        assert headless is not None and headless.headless and headless.cluster_ips == ()

        slices = snapshot.items(EndpointSlice)
        assert slices["web/web-lb-x1y2z"].service_name == "web-lb"
        assert slices["web/web-lb-x1y2z"].endpoints == (
            Endpoint(addresses=("10.244.0.10",), node_name="node-a", zone="zone-a"),
            Endpoint(
                addresses=("10.244.1.10",), ready=False, serving=True, terminating=True,
                node_name="node-b", zone="zone-b",
            ),
        )  # fmt: skip
        assert slices["web/web-lb-x1y2z"].ports == (
            EndpointPort(name="http", protocol="TCP", port=8080),
            EndpointPort(name="dns", protocol="UDP", port=5353),
        )
        assert set(snapshot.in_namespace(Pod, "web")) == {"web/web-1", "web/web-2"}
        assert snapshot.get(NetworkPolicy, "db/postgres-from-web") is not None


def model_values(value: Any) -> Iterator[object]:
    """Every value reachable through attrs fields and tuples."""
    yield value
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from model_values(getattr(value, field.name))
    elif isinstance(value, tuple | frozenset):
        for item in value:
            yield from model_values(item)


async def test_store_holds_model_views_not_dicts(make_watcher: MakeWatcher) -> None:
    async with running(make_watcher()) as watcher:
        snapshot = watcher.store.snapshot()
        for cls in MODEL_TYPES:
            values = list(snapshot.kind(cls.__name__).values())
            assert values, cls.__name__
            assert all(type(value) is cls for value in values)
            for value in values:
                assert not any(isinstance(v, dict | list) for v in model_values(value))
        # The big annotations of the full objects were not kept.
        annotations = [n.annotations for n in snapshot.items(Node).values()]
        annotations += [s.annotations for s in snapshot.items(Service).values()]
        assert not any("last-applied" in key for keys in annotations for key in keys)


# Changes.


async def test_updates_and_deletes_arrive_as_typed_changes(
    srv: ApiServer, make_watcher: MakeWatcher
) -> None:
    async with running(make_watcher()) as watcher:
        changes = watcher.store.subscribe()
        version = watcher.store.version

        pod = raw(srv, "Pod", "web", "web-1")
        pod["status"]["containerStatuses"][0]["restartCount"] = 3  # nothing a controller reads
        pod = srv.store.put(pod)  # the next write must carry the new resourceVersion
        pod["metadata"]["labels"]["tier"] = "front"
        srv.store.put(pod)
        srv.store.remove({"kind": "Service", "metadata": {"namespace": "web", "name": "web-lb"}})
        node = raw(srv, "Node", None, "node-b")
        node["metadata"]["annotations"]["kube-router.io/node.asn"] = "64999"
        srv.store.put(node)

        # Each kind is its own watch: changes keep their order within a kind only.
        got = {change.kind: change for change in await receive(changes, 3)}
        assert {kind: (c.type, c.key) for kind, c in got.items()} == {
            "Pod": ("MODIFIED", "web/web-1"),
            "Service": ("DELETED", "web/web-lb"),
            "Node": ("MODIFIED", "node-b"),
        }
        pod_change, service_change, node_change = got["Pod"], got["Service"], got["Node"]
        assert isinstance(pod_change.old, Pod) and isinstance(pod_change.new, Pod)
        assert "tier" not in pod_change.old.labels and pod_change.new.labels["tier"] == "front"
        assert isinstance(service_change.old, Service) and service_change.new is None
        assert isinstance(node_change.old, Node) and node_change.old.bgp.asn == 64512
        assert isinstance(node_change.new, Node) and node_change.new.bgp.asn == 64999
        assert watcher.store.version == version + 3
        assert watcher.store.get(Service, "web/web-lb") is None
        await settle(watcher)
        assert pending(changes) == []  # the status-only write made no change
        assert watcher.stats["Pod"].events == 2


async def test_subscribers_can_choose_kinds(srv: ApiServer, make_watcher: MakeWatcher) -> None:
    async with running(make_watcher()) as watcher:
        policies = watcher.store.subscribe(["NetworkPolicy"])
        srv.store.put(new_pod("web-9", "10.244.0.99"))
        policy = raw(srv, "NetworkPolicy", "db", "postgres-from-web")
        policy["spec"]["ingress"][0]["ports"][0]["port"] = 5433
        srv.store.put(policy)
        [change] = await receive(policies, 1)
        assert change.type == "MODIFIED" and change.key == "db/postgres-from-web"
        assert isinstance(change.new, NetworkPolicy)
        await wait_until(lambda: watcher.store.get(Pod, "web/web-9") is not None)
        await settle(watcher)
        assert pending(policies) == []


# Failures: 410 Gone, dropped connections, slow servers.


async def test_410_gone_relists_and_delivers_only_the_differences(
    srv: ApiServer, make_watcher: MakeWatcher
) -> None:
    async with running(make_watcher()) as watcher:
        changes = watcher.store.subscribe()
        # Every reconnect waits 0.5 s in the server, so the history is compacted before
        # any watch resumes: each kind's resourceVersion is then too old.
        srv.store.latency = 0.5
        srv.store.drop_watches()
        pod = raw(srv, "Pod", "web", "web-1")
        pod["metadata"]["labels"]["version"] = "2"
        srv.store.put(pod)
        srv.store.remove({"kind": "Pod", "metadata": {"namespace": "web", "name": "web-2"}})
        srv.store.put(new_pod("web-3", "10.244.0.11"))
        srv.store.put(raw(srv, "Namespace", None, "web"))  # a no-op write
        srv.store.compact()
        srv.store.latency = 0

        await wait_until(lambda: all(s.lists >= 2 for s in watcher.stats.values()), 10)
        await settle(watcher)
        got = pending(changes)
        assert sorted((c.type, c.key) for c in got) == [
            ("ADDED", "web/web-3"),
            ("DELETED", "web/web-2"),
            ("MODIFIED", "web/web-1"),
        ]
        assert all(s.relists >= 1 for s in watcher.stats.values())
        assert watcher.store.snapshot().sizes()["Pod"] == seeded_counts(BASIC, EXTRA)["Pod"]

        # And the watches go on from the new lists.
        srv.store.put(new_pod("web-4", "10.244.0.12"))
        [added] = await receive(changes, 1)
        assert (added.type, added.key) == ("ADDED", "web/web-4")


async def test_a_killed_connection_resumes_without_losing_events(
    srv: ApiServer, make_watcher: MakeWatcher
) -> None:
    async with running(make_watcher()) as watcher:
        changes = watcher.store.subscribe(["Pod"])
        await wait_until(lambda: watcher.stats["Pod"].bookmarks > 0)  # the watch is open
        for index in range(3):
            srv.store.drop_watches()
            srv.store.put(new_pod(f"p-{index}", f"10.244.0.{30 + index}"))  # while cut off
            [change] = await receive(changes, 1)  # from the watch that resumed
            assert (change.type, change.key) == ("ADDED", f"web/p-{index}")
        stats = watcher.stats["Pod"]
        assert stats.watch_restarts >= 3 and "ProtocolError" in stats.last_error
        assert (stats.lists, stats.relists) == (1, 0)  # resumed from its resourceVersion
        assert stats.events == 3  # and nothing was replayed twice


async def test_lists_are_read_in_pages(
    make_watcher: MakeWatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kuberouter.k8s import client

    monkeypatch.setattr(client, "PAGE_SIZE", 2)
    async with running(make_watcher()) as watcher:
        assert watcher.store.snapshot().sizes() == seeded_counts(BASIC, EXTRA)


async def test_watches_ended_by_the_server_resume_quietly(
    srv: ApiServer, make_watcher: MakeWatcher
) -> None:
    async with running(make_watcher(watch_timeout=(1, 1))) as watcher:
        changes = watcher.store.subscribe(["Pod"])
        srv.store.put(new_pod("early", "10.244.0.40"))
        await trio.sleep(1.2)  # every watch has ended and started again
        srv.store.put(new_pod("late", "10.244.0.41"))
        got = await receive(changes, 2)
        assert [c.key for c in got] == ["web/early", "web/late"]
        stats = watcher.stats["Pod"]
        assert (stats.lists, stats.watch_restarts, stats.last_error) == (1, 0, "")
        assert stats.watches >= 2


async def test_stopping_ends_every_watch_thread(make_watcher: MakeWatcher) -> None:
    async with running(make_watcher()):
        assert len(watch_threads()) == len(KIND_NAMES)
    await wait_until(lambda: not watch_threads(), 2)


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("k8s-watch-")]


async def test_a_slow_server_is_bounded_by_the_cache_sync_timeout(
    srv: ApiServer, make_watcher: MakeWatcher
) -> None:
    srv.store.latency = 3.0
    watcher = make_watcher(cache_sync_timeout=0.5)
    began = time.monotonic()
    with pytest.raises(CacheSyncTimeout) as raised:
        await watcher.run()
    assert time.monotonic() - began < 1.5
    assert raised.value.kinds == sorted(KIND_NAMES)
    message = str(raised.value)
    assert "0.5s" in message and "--cache-sync-timeout" in message
    assert "NetworkPolicy (no answer to its list yet)" in message


async def test_a_refused_token_names_the_error_in_the_timeout(
    srv: ApiServer, tmp_path: Path
) -> None:
    from kuberouter.k8s import load_api_client

    config = srv.kubeconfig()
    config["users"][0]["user"]["token"] = "wrong"
    path = tmp_path / "bad-kubeconfig"
    path.write_text(__import__("yaml").safe_dump(config))
    api = load_api_client(str(path), None)
    watcher = Watcher(api, cache_sync_timeout=0.5, kinds=["Node", "Pod"])
    with pytest.raises(CacheSyncTimeout) as raised:
        await watcher.run()
    api.close()
    assert raised.value.kinds == ["Node", "Pod"]
    assert "Node (last error: HTTP 401 Unauthorized)" in str(raised.value)


# Malformed objects.


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and text in r.getMessage()
    ]


async def test_malformed_objects_are_logged_once_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from kuberouter.k8s import load_api_client
    from tests.kuberouter.k8s.conftest import FAST

    caplog.set_level(logging.WARNING, logger="kuberouter.k8s")
    with serve(token=TOKEN, seed=[BASIC, MALFORMED], bookmark_interval=0.2) as srv:
        api = load_api_client(str(srv.write_kubeconfig(tmp_path / "kubeconfig")), None)
        watcher = Watcher(api, backoff=FAST, cache_sync_timeout=10)
        async with running(watcher):
            store = watcher.store
            assert store.get(NetworkPolicy, "db/bad-selector") is None
            assert store.get(Node, "node-bad") is None
            assert store.get(NetworkPolicy, "db/postgres-from-web") is not None
            assert set(store.invalid()) == {
                ("NetworkPolicy", "db/bad-selector"),
                ("Node", "node-bad"),
            }
            changes = store.subscribe()

            # Resyncs and unrelated edits do not log again; other objects keep flowing.
            node = raw(srv, "Node", None, "node-bad")
            node["metadata"]["labels"] = {"edited": "yes"}
            node = srv.store.put(node)
            srv.store.latency = 0.5
            srv.store.drop_watches()
            srv.store.compact()
            srv.store.latency = 0
            await wait_until(lambda: all(s.lists >= 2 for s in watcher.stats.values()), 10)
            srv.store.put(new_pod("web-5", "10.244.0.15"))
            [added] = await receive(changes, 1)
            assert (added.type, added.key) == ("ADDED", "web/web-5")
            assert len(warnings_about(caplog, "NetworkPolicy db/bad-selector")) == 1
            [node_warning] = warnings_about(caplog, "Node node-bad")
            assert "spec.podCIDR" in node_warning and "10.300.0.0/24" in node_warning

            # Fixed: it appears. Broken differently: logged again, and gone.
            node["spec"].update(podCIDR="10.245.9.0/24", podCIDRs=["10.245.9.0/24"])
            node = srv.store.put(node)
            [fixed] = await receive(changes, 1)
            assert fixed.type == "ADDED" and isinstance(fixed.new, Node)
            assert fixed.new.pod_cidrs == ("10.245.9.0/24",)
            node["status"]["addresses"][0]["address"] = "192.168.56.300"
            srv.store.put(node)
            [broken] = await receive(changes, 1)
            assert broken.type == "DELETED" and broken.key == "node-bad"
            assert len(warnings_about(caplog, "Node node-bad")) == 2
        api.close()


# Configuration.


def test_master_overrides_the_kubeconfig_server(kubeconfig: Path) -> None:
    from kuberouter.k8s import load_api_client

    api = load_api_client(str(kubeconfig), "https://10.0.0.1:6443/")
    assert api.configuration.host == "https://10.0.0.1:6443"
    assert api.configuration.api_key == {"BearerToken": f"Bearer {TOKEN}"}
    api.close()
    only_master = load_api_client(None, "http://127.0.0.1:8080")
    assert only_master.configuration.host == "http://127.0.0.1:8080"
    assert not only_master.configuration.api_key
    only_master.close()


async def test_in_cluster_service_account(
    srv: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kuberouter.k8s import load_api_client

    host, _, port = srv.url.removeprefix("https://").rpartition(":")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "ca.crt").write_bytes(srv.ca_pem or b"")
    api = load_api_client(
        None, None, token_file=str(tmp_path / "token"), ca_file=str(tmp_path / "ca.crt")
    )
    watcher = Watcher(api, Store(["Namespace"]), kinds=["Namespace"], cache_sync_timeout=10)
    async with running(watcher):
        assert "web" in watcher.store.snapshot().kind("Namespace")
    api.close()


async def test_watcher_from_the_command_line(kubeconfig: Path) -> None:
    from kuberouter.options import parse_command_line

    argv = [f"--kubeconfig={kubeconfig}", "--cache-sync-timeout=7s"]
    watcher = Watcher.from_options(parse_command_line(argv).options)
    assert watcher.cache_sync_timeout == 7.0
    async with running(watcher):
        assert watcher.store.snapshot().sizes() == seeded_counts(BASIC, EXTRA)
    watcher.api_client.close()


def test_no_configuration_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kuberouter.k8s import ConfigError, load_api_client

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="in-cluster service account"):
        load_api_client(None, None)
    with pytest.raises(ConfigError, match=r"kubeconfig .*missing"):
        load_api_client(str(tmp_path / "missing"), None)


def test_changes_are_frozen_values() -> None:
    change = Change("Pod", "a/b", None, Pod(namespace="a", name="b"))
    assert change.type == "ADDED"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        change.key = "x"  # type: ignore[misc]
