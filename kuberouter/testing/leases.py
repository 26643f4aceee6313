"""coordination.k8s.io/v1 Lease rules of the real registry.

- acquireTime and renewTime are MicroTimes: any RFC 3339 time is accepted and stored
  in UTC with microseconds ("2006-01-02T15:04:05.000000Z"); anything else is a decode
  error (400), as the real server fails to read the body.
- leaseDurationSeconds must be greater than 0 and leaseTransitions not negative (422).
- An update must name the resourceVersion it replaces (resources.Resource
  .unconditional_update is False for Leases); the store enforces that on PUT.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kuberouter.testing.errors import bad_request, invalid
from kuberouter.testing.resources import Resource

MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(MICRO_TIME)


def parse_micro_time(text: str) -> datetime:
    """An RFC 3339 time ("Z" or an offset, any fraction); ValueError if it is not one."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def default_lease(resource: Resource, obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise bad_request('Lease in version "v1" cannot be handled as a Lease: spec: not an object')
    name = obj["metadata"]["name"]
    for field in ("acquireTime", "renewTime"):
        value = spec.get(field)
        if value is None:
            continue
        try:
            spec[field] = format_micro_time(parse_micro_time(str(value)))
        except ValueError:
            raise bad_request(
                f'Lease in version "v1" cannot be handled as a Lease: parsing time "{value}"'
                ' as "2006-01-02T15:04:05.000000Z07:00": cannot parse'
            ) from None
    _check_number(resource, name, spec, "leaseDurationSeconds", 1, "must be greater than 0")
    _check_number(resource, name, spec, "leaseTransitions", 0, "must be greater than or equal to 0")


def _check_number(
    resource: Resource, name: str, spec: dict[str, Any], field: str, low: int, why: str
) -> None:
    value = spec.get(field)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(
            f'Lease in version "v1" cannot be handled as a Lease: spec.{field}: expected an integer'
        )
    if value < low:
        raise invalid(resource, name, f"spec.{field}", f"Invalid value: {value}: {why}")
