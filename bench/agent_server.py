"""The agent bench's cluster: the project's test API server holding bench.cluster's
objects, and a churn driver writing to it as kubelets and controllers would.

    python -m bench.agent_server --pods N --nodes N --namespaces N --services N \\
        --kubeconfig PATH

Prints `ready <seconds to load>` once it serves (a kubeconfig for it at PATH), then reads
commands from standard input, one per line:

    churn RATE SECONDS   RATE pod changes per second for SECONDS; prints
                         `churned <changes> <seconds> <lag>` when done (lag: the worst
                         delay behind schedule, in seconds)
    (end of input)       stop

A pod change is, in turns: a new pod (on a random node, in a random namespace), a
deleted pod, a pod whose app label changes (and with it its role), or a pod whose
readiness flips; each also updates its namespace's EndpointSlice when a backend of the
namespace's Service comes, goes or changes readiness, as the EndpointSlice controller
would. Pods carry a realistic body (bench.cluster, rich=True).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from typing import Any

import attrs

from bench.cluster import (
    Doc,
    endpoint,
    layout,
    namespace_doc,
    node_doc,
    pod_doc,
    pod_ip,
    policy_docs,
    service_doc,
    slice_doc,
)
from kuberouter.testing.apiserver import ApiServer
from kuberouter.testing.store import Store

APPS = 5  # pods per namespace in the initial layout: apps 0..4; 2..4 are backends


@attrs.define
class PodState:
    name: str
    namespace: int
    node: int
    slot: int
    app: int
    metrics: bool
    ready: bool = True

    @property
    def backend(self) -> bool:
        return self.app >= 2

    def doc(self) -> Doc:
        return pod_doc(
            self.name, f"ns-{self.namespace}", self.node, self.slot, self.app,
            metrics=self.metrics, ready=self.ready, rich=True,
        )  # fmt: skip


class Cluster:
    """What the driver knows of the cluster it changes."""

    def __init__(self, pods: int, nodes: int, namespaces: int, services: int, seed: int = 1):
        self.nodes, self.namespaces, self.services = nodes, namespaces, services
        self.rng = random.Random(seed + 1)
        self.pods: dict[str, PodState] = {}
        self.names: list[str] = []  # the keys of `pods`, for a random pick
        self.by_namespace: dict[int, dict[str, PodState]] = {n: {} for n in range(namespaces)}
        self.next_slot = [0] * nodes
        self.created = 0
        for place in layout(pods, nodes, namespaces, seed):
            self._add(PodState(place.name, place.namespace, place.node, place.slot,
                               place.app, place.metrics))  # fmt: skip
            self.next_slot[place.node] = max(self.next_slot[place.node], place.slot + 1)

    def _add(self, pod: PodState) -> None:
        self.pods[pod.name] = pod
        self.names.append(pod.name)
        self.by_namespace[pod.namespace][pod.name] = pod

    def _remove(self, name: str) -> PodState:
        pod = self.pods.pop(name)
        del self.by_namespace[pod.namespace][name]
        return pod

    def documents(self) -> list[Doc]:
        docs = [namespace_doc(number) for number in range(self.namespaces)]
        docs += [node_doc(number) for number in range(self.nodes)]
        for number in range(self.namespaces):
            docs += policy_docs(f"ns-{number}", namespace_doc(number)["metadata"]["labels"]["team"])
        docs += [pod.doc() for pod in self.pods.values()]
        for number in range(self.services):
            docs += [service_doc(f"ns-{number}", number), self.slice(number)]
        return docs

    def slice(self, namespace: int) -> Doc:
        backends = sorted(
            (pod for pod in self.by_namespace[namespace].values() if pod.backend),
            key=lambda pod: pod.name,
        )
        endpoints = [
            endpoint(pod_ip(pod.node, pod.slot), pod.node, pod.name, f"ns-{namespace}", pod.ready)
            for pod in backends
        ]
        return slice_doc(f"ns-{namespace}", endpoints)

    # -- changes: each returns the objects to write and the pod to delete, if any -------

    def pick(self) -> PodState:
        while True:  # `names` keeps deleted names until they are picked
            index = self.rng.randrange(len(self.names))
            name = self.names[index]
            if name in self.pods:
                return self.pods[name]
            self.names[index] = self.names[-1]
            self.names.pop()

    def change(self, turn: int) -> tuple[list[Doc], PodState | None]:
        kind = turn % 4
        if kind == 0:
            node = self.rng.randrange(self.nodes)
            self.created += 1
            pod = PodState(
                f"churn-{self.created}", self.rng.randrange(self.namespaces), node,
                self.next_slot[node], self.rng.randrange(APPS), self.rng.random() < 0.5,
            )  # fmt: skip
            self.next_slot[node] += 1
            self._add(pod)
            return self._with_slice([pod.doc()], pod, pod.backend), None
        pod = self.pick()
        if kind == 1:
            self._remove(pod.name)
            return self._with_slice([], pod, pod.backend), pod
        if kind == 2:
            was = pod.backend
            pod.app = (pod.app + 1 + self.rng.randrange(APPS - 1)) % APPS
            return self._with_slice([pod.doc()], pod, was or pod.backend), None
        pod.ready = not pod.ready
        return self._with_slice([pod.doc()], pod, pod.backend), None

    def _with_slice(self, docs: list[Doc], pod: PodState, touched: bool) -> list[Doc]:
        if touched and pod.namespace < self.services:
            docs.append(self.slice(pod.namespace))
        return docs


def churn(store: Store, cluster: Cluster, rate: float, seconds: float) -> tuple[int, float, float]:
    """Changes at `rate` per second; (changes, seconds taken, worst lag behind schedule)."""
    start = time.monotonic()
    turn, worst = 0, 0.0
    while (due := start + turn / rate) < start + seconds:
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        worst = max(worst, time.monotonic() - due)
        docs, deleted = cluster.change(turn)
        if deleted is not None:
            meta = {"namespace": f"ns-{deleted.namespace}", "name": deleted.name}
            store.remove({"kind": "Pod", "metadata": meta})
        for doc in docs:
            store.put(doc)
        turn += 1
    return turn, time.monotonic() - start, worst


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("pods", "nodes", "namespaces", "services"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--history-size", type=int, default=100_000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    started = time.monotonic()
    cluster = Cluster(args.pods, args.nodes, args.namespaces, args.services)
    server = ApiServer(history_size=args.history_size)
    gc.disable()  # the seed is millions of lasting dicts and lists: walk them once, then
    server.store.load(cluster.documents())
    gc.collect()
    gc.freeze()  # never again (a full walk of them stalls the driver for seconds)
    gc.enable()
    with server:
        server.write_kubeconfig(args.kubeconfig)
        print(f"ready {time.monotonic() - started:.1f}", flush=True)
        for line in sys.stdin:
            words: list[Any] = line.split()
            if words[:1] == ["churn"]:
                done, took, lag = churn(server.store, cluster, float(words[1]), float(words[2]))
                print(f"churned {done} {took:.1f} {lag:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
