"""Upstream's per-service metrics, read from the IPVS counters when /metrics is scraped:
kube_router_service_total_connections, _packets_in/_out, _bytes_in/_out, _pps_in/_out,
_cps, _bps_in/_out, labelled svc_namespace, service_name, service_vip, protocol, port (the
address and port of the IPVS service: a cluster IP, external or LoadBalancer IP, or a
node address with the nodePort)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import prometheus_client
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kuberouter.proxy.ipvs_plan import Key
from kuberouter.proxy.state import VirtualService

log = logging.getLogger(__name__)
LABELS = ["svc_namespace", "service_name", "service_vip", "protocol", "port"]
# metric name -> (IPVS counter, help, is a running total)
METRICS = {
    "service_total_connections": ("conns", "Total incoming connections made", True),
    "service_packets_in": ("inpkts", "Total incoming packets", True),
    "service_packets_out": ("outpkts", "Total outgoing packets", True),
    "service_bytes_in": ("inbytes", "Total incoming bytes", True),
    "service_bytes_out": ("outbytes", "Total outgoing bytes", True),
    "service_pps_in": ("inpps", "Incoming packets per second", False),
    "service_pps_out": ("outpps", "Outgoing packets per second", False),
    "service_cps": ("cps", "Service connections per second", False),
    "service_bps_in": ("inbps", "Incoming bytes per second", False),
    "service_bps_out": ("outbps", "Outgoing bytes per second", False),
}
Counters = Callable[[], Iterable[tuple[VirtualService, Key, dict[str, int]]]]


class ServiceCounters(Collector):
    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[prometheus_client.Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for name, (_, text, total) in METRICS.items():
            kind = CounterMetricFamily if total else GaugeMetricFamily
            families[name] = kind(f"kube_router_{name}", text, labels=LABELS)
        try:
            found = list(self.counters())
        except Exception as error:  # a scrape never fails on IPVS being unreadable
            log.warning("IPVS counters unreadable: %s", error)
            found = []
        for service, key, values in found:
            namespace, _, name = service.service.partition("/")
            labels = [namespace, name, key.address, service.protocol.lower(), str(key.port)]
            for metric, (counter, _, _) in METRICS.items():
                families[metric].add_metric(labels, values.get(counter, 0))
        yield from families.values()
