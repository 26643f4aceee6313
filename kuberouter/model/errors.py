"""Typed errors for objects that cannot be turned into model values.

A controller that meets an `InvalidObject` logs it once and skips the object; one bad
NetworkPolicy must never stop the firewall for everyone else.
"""

from __future__ import annotations


class InvalidObject(ValueError):
    """A Kubernetes object the model refuses, with enough context to log one clear line."""

    def __init__(self, kind: str, name: str, reason: str) -> None:
        super().__init__(f"{kind} {name}: {reason}")
        self.kind = kind
        self.name = name  # "namespace/name" for namespaced kinds, "name" otherwise
        self.reason = reason


class FieldError(ValueError):
    """A bad field inside an object; `from_k8s` turns it into `InvalidObject`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
