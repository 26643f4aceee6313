"""API errors as Kubernetes `Status` objects, with the messages the real API server uses.

Clients branch on `reason` and `code` (kubectl prints `message`), so these follow
k8s.io/apimachinery/pkg/api/errors closely.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kuberouter.testing.resources import Resource


class ApiError(Exception):
    """An error answered as a `Status` object with an HTTP code."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        status["details"] = details
    if not reason:
        del status["reason"]
    return status


def _details(resource: Resource, name: str) -> dict[str, Any]:
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name)
    )


def namespace_not_found(name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"}
    )


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{resource.qualified} "{name}" already exists',
        _details(resource, name),
    )


def conflict(resource: Resource, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {resource.qualified} "{name}": {why}'
    return ApiError(409, "Conflict", message, _details(resource, name))


def stale_resource_version(resource: Resource, name: str) -> ApiError:
    return conflict(
        resource,
        name,
        "the object has been modified; please apply your changes to the latest version"
        " and try again",
    )


def invalid(resource: Resource, name: str, field: str, detail: str) -> ApiError:
    message = f'{resource.kind} "{name}" is invalid: {field}: {detail}'
    details = _details(resource, name) | {
        "kind": resource.kind,
        "causes": [{"reason": "FieldValueInvalid", "message": detail, "field": field}],
    }
    return ApiError(422, "Invalid", message, details)


def namespace_terminating(resource: Resource, name: str, namespace: str) -> ApiError:
    message = (
        f'{resource.qualified} "{name}" is forbidden: unable to create new content in'
        f" namespace {namespace} because it is being terminated"
    )
    return ApiError(403, "Forbidden", message, _details(resource, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method ({method}) on the requested resource",
    )


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> ApiError:
    message = (
        f"the body of the request was in an unknown format ({content_type!r})"
        f" - accepted media types include: {', '.join(accepted)}"
    )
    return ApiError(415, "UnsupportedMediaType", message)


def not_acceptable(*offered: str) -> ApiError:
    message = f"only the following media types are accepted: {', '.join(offered)}"
    return ApiError(406, "NotAcceptable", message)


def path_not_found(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
