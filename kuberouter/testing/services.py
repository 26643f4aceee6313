"""Service rules of the real registry that LoadBalancer controllers depend on.

- IP families: `ipFamilyPolicy` (SingleStack by default), `ipFamilies` from the request,
  the given cluster IPs or the cluster's primary range; a dual-stack policy adds the other
  family when the cluster has two service ranges (--service-cluster-ip-range).
- `loadBalancerClass` and `loadBalancerIP` only on type LoadBalancer; the class is immutable
  while the type stays LoadBalancer, and dropped when the type changes away from it and
  the client did not change it (as the registry's dropTypeDependentFields).
- `status.loadBalancer.ingress[].ip` must be an IP address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from kuberouter.testing.errors import invalid
from kuberouter.testing.resources import Resource

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
FORBIDDEN_UNLESS_LB = "Forbidden: may only be used when `type` is 'LoadBalancer'"


def family_of(network_or_ip: str | Network) -> str:
    version = (
        network_or_ip.version
        if not isinstance(network_or_ip, str)
        else ipaddress.ip_address(network_or_ip).version
    )
    return "IPv4" if version == 4 else "IPv6"


def ip_families(
    resource: Resource, name: str, spec: dict[str, Any], cidrs: Sequence[Network], given: list[str]
) -> list[str]:
    """The families a service gets, per its policy and the cluster's ranges (422 if impossible)."""
    policy = spec.setdefault("ipFamilyPolicy", "SingleStack")
    if policy not in POLICIES:
        supported = ", ".join(f'"{p}"' for p in POLICIES)
        detail = f'Unsupported value: "{policy}": supported values: {supported}'
        raise invalid(resource, name, "spec.ipFamilyPolicy", detail)
    configured = [family_of(cidr) for cidr in cidrs]
    if policy == "RequireDualStack" and len(configured) < 2:
        detail = f'Invalid value: "{policy}": this cluster is not configured for dual-stack'
        detail += " services"
        raise invalid(resource, name, "spec.ipFamilyPolicy", detail)
    families = list(spec.get("ipFamilies") or [family_of(ip) for ip in given if ip])
    if len(set(families)) != len(families) or len(families) > 2:
        raise invalid(resource, name, "spec.ipFamilies", f"Invalid value: {families}: duplicate")
    if policy == "SingleStack" and len(families) > 1:
        detail = (
            f'Invalid value: "{policy}": when multiple IP families are specified,'
            " the policy must be RequireDualStack or PreferDualStack"
        )
        raise invalid(resource, name, "spec.ipFamilyPolicy", detail)
    if policy == "PreferDualStack":
        families = [f for f in families if f in configured]  # take what the cluster has
    for index, family in enumerate(families):
        if family not in configured:
            detail = f'Invalid value: "{family}": not configured on this cluster'
            raise invalid(resource, name, f"spec.ipFamilies[{index}]", detail)
    if not families:
        families = configured[:1]
    if policy != "SingleStack" and len(families) == 1 and len(configured) == 2:
        families.append(next(f for f in configured if f != families[0]))
    return families


def check_load_balancer_fields(
    resource: Resource, name: str, spec: dict[str, Any], old_spec: dict[str, Any] | None
) -> None:
    is_lb = spec.get("type") == "LoadBalancer"
    if old_spec is not None:
        drop_type_dependent_fields(old_spec, spec)
    if not is_lb:
        for field in ("loadBalancerClass", "loadBalancerIP"):
            if spec.get(field):
                raise invalid(resource, name, f"spec.{field}", FORBIDDEN_UNLESS_LB)
        return
    old = old_spec or {}
    if old.get("type") == "LoadBalancer" and old.get("loadBalancerClass") != spec.get(
        "loadBalancerClass"
    ):
        detail = f"Invalid value: {spec.get('loadBalancerClass')!r}: may not change once set"
        raise invalid(resource, name, "spec.loadBalancerClass", detail)
    requested = spec.get("loadBalancerIP")
    if requested:
        try:
            ipaddress.ip_address(requested)
        except ValueError:
            detail = f'Invalid value: "{requested}": must be a valid IP address'
            raise invalid(resource, name, "spec.loadBalancerIP", detail) from None


def drop_type_dependent_fields(old_spec: dict[str, Any], spec: dict[str, Any]) -> None:
    """Leaving LoadBalancer drops the class the client did not touch (it was allowed only there)."""
    leaving = old_spec.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer"
    if leaving and spec.get("loadBalancerClass") == old_spec.get("loadBalancerClass"):
        spec.pop("loadBalancerClass", None)


def check_ingress(resource: Resource, name: str, status: dict[str, Any]) -> None:
    balancer = status.get("loadBalancer") or {}
    for index, entry in enumerate(balancer.get("ingress") or []):
        ip = entry.get("ip") if isinstance(entry, dict) else None
        if not ip:
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            field = f"status.loadBalancer.ingress[{index}].ip"
            raise invalid(
                resource, name, field, f'Invalid value: "{ip}": must be a valid IP address'
            ) from None
