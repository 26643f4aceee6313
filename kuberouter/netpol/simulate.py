"""What the data plane will do: compile every node of a snapshot and evaluate flows on it.

`Simulator` compiles a node's rules the first time a flow touches that node and reuses
them; verdicts come only from `evaluate` walking those rules. A pod reaches another
when the flow is allowed for every address family both have (see reference rule 8);
finished pods and pods without addresses reach nothing and are reached by nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from kuberouter.model import Pod
from kuberouter.netpol.cluster import Cluster
from kuberouter.netpol.compiler import build_index, compile_node
from kuberouter.netpol.evaluate import Packet, Verdict, evaluate
from kuberouter.netpol.reference import address_pairs
from kuberouter.netpol.ruleset import DesiredState, Ruleset

Matrix = dict[str, dict[str, bool]]


class Simulator:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._index = build_index(cluster)
        self._states: dict[str, DesiredState] = {}

    def state(self, node: str) -> DesiredState:
        found = self._states.get(node)
        if found is None:
            found = compile_node(self.cluster, node, index=self._index)
            self._states[node] = found
        return found

    def ruleset(self, node: str, family: int) -> Ruleset:
        return self.state(node).rulesets[family]

    def flow(self, src_ip: str, dst_ip: str, port: int, protocol: str) -> Verdict:
        packet = Packet(src=src_ip, dst=dst_ip, protocol=protocol, dport=port)
        src, dst = self.cluster.locate(packet.src), self.cluster.locate(packet.dst)
        return evaluate(packet, src, dst, self.ruleset)

    def pod_verdicts(self, src: Pod, dst: Pod, port: int, protocol: str) -> list[Verdict]:
        """One verdict per same-family address pair; empty when the pods cannot talk."""
        if src.finished or dst.finished:
            return []
        return [
            self.flow(src_ip, dst_ip, port, protocol) for src_ip, dst_ip in address_pairs(src, dst)
        ]

    def allowed(
        self, src: Pod, dst: Pod, port: int, protocol: str, family: int | None = None
    ) -> bool:
        verdicts = self.pod_verdicts(src, dst, port, protocol)
        if family is not None:
            verdicts = [verdict for verdict in verdicts if verdict.packet.family == family]
        return bool(verdicts) and all(verdict.allowed for verdict in verdicts)

    def matrix(
        self, port: int, protocol: str, family: int | None = None, pods: Iterable[Pod] | None = None
    ) -> Matrix:
        """{source key: {destination key: allowed}} over every ordered pair, self included."""
        chosen = sorted(self.cluster.pods if pods is None else pods, key=_order)
        return {
            src.key: {dst.key: self.allowed(src, dst, port, protocol, family) for dst in chosen}
            for src in chosen
        }


def _order(pod: Pod) -> tuple[str, str]:
    return (pod.namespace, pod.name)
