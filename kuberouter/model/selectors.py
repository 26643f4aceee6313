"""metav1.LabelSelector: matchLabels AND every matchExpression.

Semantics from the Kubernetes API reference: an empty selector matches everything;
`In` needs the key with one of the values, `NotIn` matches when the key is absent or its
value is not listed, `Exists` / `DoesNotExist` test the key only. `In`/`NotIn` need a
non-empty value list, `Exists`/`DoesNotExist` must have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from kuberouter.model import fields
from kuberouter.model.errors import FieldError
from kuberouter.model.labels import NO_LABELS, Labels
from kuberouter.model.shared import shared, shared_tuple, text

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
OPERATORS: tuple[Operator, ...] = ("In", "NotIn", "Exists", "DoesNotExist")


@attrs.frozen(kw_only=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        if self.operator == "Exists":
            return value is not None
        return value is None

    def __str__(self) -> str:
        if self.operator in ("In", "NotIn"):
            return f"{self.key} {self.operator.lower()} ({','.join(sorted(self.values))})"
        return self.key if self.operator == "Exists" else f"!{self.key}"

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any], path: str) -> Requirement:
        key = fields.string(d, "key", path)
        operator = fields.string(d, "operator", path)
        if operator not in OPERATORS:
            raise FieldError(f"{path}.operator", f"unknown operator {operator!r}")
        values = []
        for value_path, value in fields.items(d, "values", path):
            if not isinstance(value, str):
                raise FieldError(value_path, f"expected a string, got {value!r}")
            values.append(value)
        if operator in ("In", "NotIn") and not values:
            raise FieldError(f"{path}.values", f"must be non-empty for {operator}")
        if operator in ("Exists", "DoesNotExist") and values:
            raise FieldError(f"{path}.values", f"must be empty for {operator}")
        op: Operator = operator  # narrowed by the OPERATORS check above
        return shared(cls(key=text(key), operator=op, values=frozenset(map(text, values))))


@attrs.frozen(kw_only=True)
class LabelSelector:
    match_labels: Labels = NO_LABELS
    match_expressions: tuple[Requirement, ...] = ()

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @property
    def is_empty(self) -> bool:
        """True when the selector matches every object."""
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(requirement.matches(labels) for requirement in self.match_expressions)

    def __str__(self) -> str:
        parts = [f"{key}={value}" for key, value in sorted(self.match_labels.items())]
        parts += sorted(str(requirement) for requirement in self.match_expressions)
        return ",".join(parts) if parts else "<all>"

    @classmethod
    def from_k8s(cls, d: Mapping[str, Any] | None, path: str = "selector") -> LabelSelector:
        """Parse a selector; raises FieldError (callers add the object's identity)."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise FieldError(path, "expected a label selector object")
        expressions = tuple(
            Requirement.from_k8s(element, element_path)
            for element_path, element in fields.objects(d, "matchExpressions", path)
        )
        labels = fields.labels(d, "matchLabels", path)
        return shared(cls(match_labels=labels, match_expressions=shared_tuple(expressions)))
