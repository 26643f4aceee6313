"""`kube-router-ctl services`: each Service, what is programmed for it and why, as JSON
(what the agent serves on /services) and as text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kuberouter.proxy.state import Backend, ProxyState, ServicePlan, VirtualService

# (virtual service key, backend address) -> weight programmed; the IPVS back end knows
# about weight-0 endpoints draining gracefully, the others program weight 1.
Weights = Callable[[str, str], int]


def report_json(state: ProxyState, weights: Weights | None = None) -> dict[str, Any]:
    return {
        "node": state.node.name,
        "mode": state.config.mode,
        "services": [_service(plan, weights) for _, plan in sorted(state.services.items())],
    }


def _service(plan: ServicePlan, weights: Weights | None) -> dict[str, Any]:
    if plan.ignored is not None:
        return {"service": plan.key, "ignored": plan.ignored}
    return {
        "service": plan.key,
        "ports": [_port(service, weights) for service in plan.virtual_services],
        "skipped": [{"what": item.what, "reason": item.reason} for item in plan.skipped],
    }


def _port(service: VirtualService, weights: Weights | None) -> dict[str, Any]:
    backends: dict[str, tuple[Backend, list[str]]] = {}
    for use, group in (("cluster", service.cluster_backends), ("local", service.local_backends)):
        for backend in group:
            backends.setdefault(backend.address, (backend, []))[1].append(use)
    empty = {
        frontend.describe(): verdict
        for frontend in service.frontends
        if (verdict := service.empty_verdict(frontend)) is not None
    }
    return {
        "port": f"{service.port_name or '-'}/{service.protocol}",
        "family": service.family,
        "frontends": [frontend.describe() for frontend in service.frontends],
        "internalTrafficPolicy": "Local" if service.internal_local else "Cluster",
        "externalTrafficPolicy": "Local" if service.external_local else "Cluster",
        "sessionAffinityTimeout": service.affinity_timeout,
        "scheduler": service.scheduler,
        "endpoints": [
            _backend(service, backend, uses, weights)
            for backend, uses in sorted(backends.values(), key=lambda pair: pair[0].address)
        ],
        "noEndpoint": empty,
    }


def _backend(
    service: VirtualService, backend: Backend, uses: list[str], weights: Weights | None
) -> dict[str, Any]:
    return {
        "address": backend.address,
        "node": backend.node,
        "local": backend.local,
        "state": "terminating" if backend.terminating else "ready",
        "weight": weights(service.key, backend.address) if weights else 1,
        "for": uses,
    }


def report_text(report: Mapping[str, Any]) -> str:
    lines = [f"node {report['node']} ({report['mode']})"]
    for service in report["services"]:
        if "ignored" in service:
            lines.append(f"{service['service']}: not proxied: {service['ignored']}")
            continue
        lines.append(f"{service['service']}:")
        for port in service["ports"]:
            lines += _port_lines(port)
        lines += [f"    skipped {item['what']}: {item['reason']}" for item in service["skipped"]]
    return "\n".join(lines) + "\n"


def _port_lines(port: Mapping[str, Any]) -> list[str]:
    policies = f"internal {port['internalTrafficPolicy']}, external {port['externalTrafficPolicy']}"
    lines = [f"  {port['port']} IPv{port['family']} ({policies}): {', '.join(port['frontends'])}"]
    for endpoint in port["endpoints"]:
        where = (endpoint["node"] or "?") + (" (this node)" if endpoint["local"] else "")
        lines.append(
            f"    -> {endpoint['address']} {endpoint['state']} weight {endpoint['weight']}"
            f" on {where} (for {' and '.join(endpoint['for'])} traffic)"
        )
    lines += [f"    {frontend}: {verdict}" for frontend, verdict in port["noEndpoint"].items()]
    return lines
