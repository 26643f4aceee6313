"""The pod network controller on a real kernel, in network namespaces made here:

    pod ns  eth0 10.244.1.5/24 fd00:1::5/64 --veth-- kube-bridge  [node ns]
    node ns eth0 198.51.100.1/24 2001:db8::1/64 --veth-- far ns (198.51.100.2, 2001:db8::2)
    node ns eth1 192.168.50.1/24 fd50::1/64 --veth-- node-2 ns (its pod 10.244.2.7, fd00:2::7)

The controller runs with the real back ends aimed at the node namespace (kube-bridge, an
`ipset`/`iptables` egress, a CNI file in a temporary directory). Real UDP datagrams show
what the far side sees: the node's address for pod traffic leaving the cluster, the pod's
own address for traffic to another node's pod CIDR. The reference CNI plugins then read
the file we wrote and plug a second pod in, as a container runtime would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from kuberouter.cluster.netns import batch
from kuberouter.controllers import podnet
from kuberouter.controllers.podnet import PodNetController
from kuberouter.dataplane.bridge import IpBridge, link_events
from kuberouter.dataplane.commands import Runner
from kuberouter.dataplane.egress import IptablesEgress
from kuberouter.health import Health
from kuberouter.k8s.store import Store
from kuberouter.options import Options
from kuberouter.podnet.desired import Settings
from tests import netns
from tests.kuberouter.dataplane.probe import in_netns
from tests.kuberouter.podnet.builders import node
from tests.support import require, require_root, require_tools

pytestmark = pytest.mark.privileged

CNI_BIN = Path("/usr/lib/cni")
PORT = 5300


@attrs.frozen
class Topology:
    node: str
    pod: str
    far: str
    node2: str


def _batch(namespace: str, *commands: str) -> None:
    batch(namespace, commands)


def _link(a: str, b: str) -> tuple[str, str]:
    """A veth pair from namespace a to b; (name in a, name in b)."""
    near, far = netns.unique_name("pa"), netns.unique_name("pb")
    netns.run("ip", "-n", a, "link", "add", near, "type", "veth", "peer", "name", far, "netns", b)
    return near, far


@pytest.fixture
def topology() -> Iterator[Topology]:
    require_root()
    require_tools("ip", "ipset", "iptables-nft", "ip6tables-nft", "sysctl")
    with ExitStack() as stack:
        names = [stack.enter_context(netns.netns(p)) for p in ("pn", "pp", "pf", "p2")]
        box = Topology(*names)
        up, far = _link(box.node, box.far)
        _batch(box.node, f"addr add 198.51.100.1/24 dev {up}", f"addr add 2001:db8::1/64 dev {up} nodad", f"link set {up} up")  # fmt: skip
        _batch(box.far, f"addr add 198.51.100.2/24 dev {far}", f"addr add 2001:db8::2/64 dev {far} nodad", f"link set {far} up")  # fmt: skip
        side, other = _link(box.node, box.node2)
        _batch(box.node, f"addr add 192.168.50.1/24 dev {side}", f"addr add fd50::1/64 dev {side} nodad", f"link set {side} up",
               "route add 10.244.2.0/24 via 192.168.50.2", "route add fd00:2::/64 via fd50::2")  # fmt: skip
        _batch(box.node2, f"addr add 192.168.50.2/24 dev {other}", f"addr add fd50::2/64 dev {other} nodad", f"link set {other} up",
               "addr add 10.244.2.7/32 dev lo", "addr add fd00:2::7/128 dev lo",
               "route add 10.244.1.0/24 via 192.168.50.1", "route add fd00:1::/64 via fd50::1")  # fmt: skip
        netns.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", netns=box.node)  # fmt: skip
        yield box


def plug_pod(box: Topology) -> None:
    """A pod as the box makes one: a veth onto kube-bridge, addresses, default routes."""
    host, _ = _link(box.node, box.pod)
    subprocess.run(["ip", "-n", box.pod, "link", "set", _, "name", "eth0"], check=True)
    _batch(box.node, f"link set {host} master kube-bridge", f"link set {host} up")
    _batch(box.pod, "addr add 10.244.1.5/24 dev eth0", "addr add fd00:1::5/64 dev eth0 nodad",
           "link set eth0 up", "route add default via 10.244.1.1", "route add default via fd00:1::1")  # fmt: skip


def store_for(*extra: Any) -> Store:
    store = Store()
    nodes = [
        node("node-1", "198.51.100.1", "2001:db8::1", pod_cidrs=("10.244.1.0/24", "fd00:1::/64")),
        node("node-2", "192.168.50.2", "fd50::2", pod_cidrs=("10.244.2.0/24", "fd00:2::/64")),
        *extra,
    ]
    for value in nodes:
        store.apply("Node", value.key, value)
    return store


@asynccontextmanager
async def controller_in(box: Topology, store: Store, conf: Path) -> AsyncIterator[PodNetController]:
    runner = Runner(box.node)
    settings = Settings(node_name="node-1", families=(4, 6), cni_conf_file=conf)
    egress = IptablesEgress(runner, variant="nft")
    health = Health()
    health.register("podnet", 30.0)
    controller = PodNetController(
        store, IpBridge(runner), egress, settings, health, 30.0,
        link_events=lambda: link_events(box.node),
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        yield controller
        nursery.cancel_scope.cancel()


def source_seen(sender_ns: str, receiver_ns: str, destination: str) -> str | None:
    """The source address a UDP datagram from `sender_ns` to `destination` arrives with."""
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET

    def listen() -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((destination, PORT))
        sock.settimeout(3)
        return sock

    def send() -> None:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"hello", (destination, PORT))

    with in_netns(receiver_ns, listen) as server:
        in_netns(sender_ns, send)
        try:
            return str(server.recvfrom(64)[1][0])
        except TimeoutError:
            return None


def run_in(namespace: str, *argv: str) -> str:
    return netns.run(*argv, netns=namespace).stdout


async def test_pod_traffic_leaving_the_cluster_is_masqueraded_both_families(
    topology: Topology, tmp_path: Path
) -> None:
    box = topology
    async with controller_in(box, store_for(), tmp_path / "10-kuberouter.conflist"):
        plug_pod(box)
        sources = {
            "far v4": await trio.to_thread.run_sync(source_seen, box.pod, box.far, "198.51.100.2"),
            "far v6": await trio.to_thread.run_sync(source_seen, box.pod, box.far, "2001:db8::2"),
            "pod v4": await trio.to_thread.run_sync(source_seen, box.pod, box.node2, "10.244.2.7"),
            "pod v6": await trio.to_thread.run_sync(source_seen, box.pod, box.node2, "fd00:2::7"),
        }
    assert sources == {
        "far v4": "198.51.100.1",  # the node's address
        "far v6": "2001:db8::1",
        "pod v4": "10.244.1.5",  # another node's pod CIDR: the pod's own
        "pod v6": "fd00:1::5",
    }
    saved = run_in(box.node, "iptables-nft-save", "-t", "nat")
    assert (
        "-A POSTROUTING -m set --match-set kube-router-pod-subnets src -m set ! --match-set "
        "kube-router-pod-subnets dst -m set ! --match-set kube-router-node-ips dst "
        "-j MASQUERADE --random-fully"
    ) in saved


async def test_nodes_coming_and_going_update_the_sets_and_hairpin_follows_new_ports(
    topology: Topology, tmp_path: Path
) -> None:
    box = topology
    store = store_for()
    async with controller_in(box, store, tmp_path / "10-kuberouter.conflist") as controller:
        joined = node("node-3", "192.168.50.3", pod_cidrs=("10.244.3.0/24",))
        store.apply("Node", "node-3", joined)
        await _until(lambda: controller.syncs == 2)
        members = run_in(box.node, "ipset", "list", "kube-router-pod-subnets")
        assert "10.244.3.0/24" in members and "10.244.2.0/24" in members
        assert "192.168.50.3" in run_in(box.node, "ipset", "list", "kube-router-node-ips")
        store.apply("Node", "node-3", None)
        await _until(lambda: controller.syncs == 3)
        assert "10.244.3.0/24" not in run_in(box.node, "ipset", "list", "kube-router-pod-subnets")
        sweeps = controller.hairpin_sweeps
        plug_pod(box)  # a port joins the bridge after the sync: the link watch sees it
        await _until(lambda: controller.hairpin_sweeps > sweeps and _hairpins(box) == [True])
    shown = json.loads(run_in(box.node, "ip", "-j", "addr", "show", "dev", "kube-bridge"))[0]
    globals_ = {(a["local"], a["prefixlen"]) for a in shown["addr_info"] if a["scope"] == "global"}
    assert globals_ == {("10.244.1.1", 24), ("fd00:1::1", 64)}
    assert "UP" in shown["flags"]


async def test_the_cni_file_is_written_once_and_the_reference_plugins_can_use_it(
    topology: Topology, tmp_path: Path
) -> None:
    require(all((CNI_BIN / p).exists() for p in ("bridge", "host-local", "portmap")),
            f"the reference CNI plugins in {CNI_BIN} (Debian containernetworking-plugins)")  # fmt: skip
    box = topology
    conf = tmp_path / "net.d" / "10-kuberouter.conflist"
    async with controller_in(box, store_for(), conf) as controller:
        first = conf.stat()
        await controller._sync("reconcile", repair=True)  # the periodic repair, now
        assert controller.syncs == 2
        again = conf.stat()
        assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
        assert oct(again.st_mode & 0o777) == "0o644"
        assert [p.name for p in conf.parent.iterdir()] == [conf.name]  # no temporary left
        result = cni_add(conf.read_text(), box, tmp_path / "ipam")
    assigned = {ip["address"] for ip in result["ips"]}
    assert {a.split("/")[0] for a in assigned} == {"10.244.1.2", "fd00:1::2"}  # host-local
    assert _hairpins(box) == [True]  # from hairpinMode, set by the plugin itself
    mtu = json.loads(run_in(box.node, "ip", "-j", "link", "show", "dev", "kube-bridge"))[0]["mtu"]
    plugin = json.loads(conf.read_text())["plugins"][0]
    node_mtu = json.loads(run_in(box.node, "ip", "-j", "link", "show"))
    uplink = next(l for l in node_mtu if l["ifname"].startswith("pa") and l["mtu"])  # noqa: E741
    assert mtu == plugin["mtu"] == uplink["mtu"]  # --auto-mtu: the node address's link


async def test_cleanup_removes_the_rule_the_sets_and_the_cni_file_and_keeps_the_bridge(
    topology: Topology, tmp_path: Path
) -> None:
    box = topology
    conf = tmp_path / "10-kuberouter.conflist"
    async with controller_in(box, store_for(), conf):
        pass
    assert conf.exists() and "kube-router-pod-subnets" in run_in(box.node, "ipset", "list", "-n")
    environ = {"KUBE_ROUTER_CNI_CONF_FILE": str(conf)}
    await trio.to_thread.run_sync(
        lambda: podnet.cleanup(Options.defaults(), runner=Runner(box.node), environ=environ)
    )
    assert not conf.exists()
    assert "kube-router" not in run_in(box.node, "ipset", "list", "-n")
    for tool in ("iptables-nft-save", "ip6tables-nft-save"):
        assert "MASQUERADE" not in run_in(box.node, tool, "-t", "nat")
    assert json.loads(run_in(box.node, "ip", "-j", "link", "show", "dev", "kube-bridge"))


def cni_add(conflist: str, box: Topology, data_dir: Path) -> dict[str, Any]:
    """ADD through each plugin of the list in turn, as libcni does (prevResult chained);
    host-local keeps its leases under `data_dir`, not the host's /var/lib/cni."""
    document = json.loads(conflist)
    previous: dict[str, Any] | None = None
    for plugin in document["plugins"]:
        config = {"cniVersion": document["cniVersion"], "name": document["name"], **plugin}
        if "ipam" in config:
            config["ipam"] = {**config["ipam"], "dataDir": str(data_dir)}
        if "capabilities" in plugin:
            config["runtimeConfig"] = {"portMappings": []}
        if previous is not None:
            config["prevResult"] = previous
        env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "podnet-test",
               "CNI_NETNS": f"/run/netns/{box.pod}", "CNI_IFNAME": "eth0", "CNI_PATH": str(CNI_BIN)}  # fmt: skip
        done = subprocess.run(
            ["ip", "netns", "exec", box.node, str(CNI_BIN / plugin["type"])],
            input=json.dumps(config), env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{plugin['type']}: {done.stdout} {done.stderr}"
        previous = json.loads(done.stdout)
    assert previous is not None
    return previous


def _hairpins(box: Topology) -> list[bool]:
    ports = json.loads(run_in(box.node, "ip", "-j", "-d", "link", "show", "master", "kube-bridge"))
    return [port["linkinfo"]["info_slave_data"]["hairpin"] for port in ports]


async def _until(condition: Any) -> None:
    with trio.fail_after(20):
        while not await trio.to_thread.run_sync(condition):
            await trio.sleep(0.05)
