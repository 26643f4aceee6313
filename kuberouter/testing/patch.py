"""The three PATCH formats: JSON merge patch, strategic merge patch, JSON patch.

Strategic merge patch needs each field's Go struct tags; we keep a short table of the
list fields that merge by key in the kinds we serve. Every other list is replaced, as
with a merge patch. Inputs are never mutated: each function returns a new document.
"""

from __future__ import annotations

import copy
from typing import Any

from kuberouter.testing.errors import ApiError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# (parent field, list field) -> merge key, from patchMergeKey tags in k8s.io/api.
_MERGE_KEYS: dict[tuple[str, str], str] = {
    ("spec", "containers"): "name",
    ("spec", "initContainers"): "name",
    ("spec", "ephemeralContainers"): "name",
    ("spec", "volumes"): "name",
    ("spec", "imagePullSecrets"): "name",
    ("spec", "ports"): "port",  # Service
    ("containers", "ports"): "containerPort",
    ("initContainers", "ports"): "containerPort",
    ("containers", "env"): "name",
    ("containers", "volumeMounts"): "mountPath",
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",  # Node
    ("status", "podIPs"): "ip",
    ("metadata", "ownerReferences"): "uid",
}
# Lists of scalars with patchStrategy=merge: a patch adds to them.
_MERGE_SCALAR_LISTS = {("metadata", "finalizers")}


def invalid_patch(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    if content_type == MERGE_PATCH:
        result = merge_patch(target, patch)
    elif content_type == STRATEGIC_MERGE_PATCH:
        result = strategic_merge_patch(target, patch)
    else:
        result = json_patch(target, patch)
    if not isinstance(result, dict):
        raise invalid_patch("the patch did not produce an object")
    return result


# RFC 7386 merge patch: objects merge, null deletes, anything else replaces.


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Strategic merge patch.


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    return _smp_map(target if isinstance(target, dict) else {}, patch, ())


def _smp_map(target: dict[str, Any], patch: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue  # ordering hints and directives handled below
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
        elif value is None:
            result.pop(key, None)
        else:
            merged = _smp_value(result.get(key), value, (*path, key))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    if isinstance(patch.get("$retainKeys"), list):
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    return result


def _smp_value(target: Any, patch: Any, path: tuple[str, ...]) -> Any:
    if isinstance(patch, dict):
        return _smp_map(target if isinstance(target, dict) else {}, patch, path)
    if isinstance(patch, list) and isinstance(target, list):
        field = tuple(path[-2:])
        if field in _MERGE_KEYS:
            return _smp_keyed_list(target, patch, _MERGE_KEYS[field], path)
        if field in _MERGE_SCALAR_LISTS:
            return target + [v for v in patch if v not in target]
    return copy.deepcopy(patch)


def _smp_keyed_list(
    target: list[Any], patch: list[Any], key: str, path: tuple[str, ...]
) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise invalid_patch(f"map: {item!r} does not contain declared merge key: {key}")
        index = next(
            (
                i
                for i, old in enumerate(result)
                if isinstance(old, dict) and old.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_smp_map({}, item, path))
        else:
            result[index] = _smp_map(result[index], item, path)
    return result


# RFC 6902 JSON patch.


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise invalid_patch(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    parts = _pointer(path)
    if not parts:
        raise invalid_patch("cannot operate on the document root")
    node = doc
    for part in parts[:-1]:
        node = _child(node, part, path)
    return node, parts[-1]


def _child(node: Any, part: str, path: str) -> Any:
    try:
        return node[int(part)] if isinstance(node, list) else node[part]
    except (KeyError, IndexError, ValueError, TypeError):
        raise invalid_patch(f"path {path!r} does not exist") from None


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _pointer(path):
        node = _child(node, part, path)
    return node


def _add(doc: Any, path: str, value: Any) -> None:
    parent, last = _parent(doc, path)
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if not 0 <= index <= len(parent):
            raise invalid_patch(f"index out of range in {path!r}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise invalid_patch(f"path {path!r} does not exist")


def _remove(doc: Any, path: str) -> Any:
    parent, last = _parent(doc, path)
    value = _child(parent, last, path)
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return value


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise invalid_patch("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        if op == "add":
            _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(doc, path)
        elif op == "replace":
            _remove(doc, path)
            _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            source = operation.get("from", "")
            value = _remove(doc, source) if op == "move" else copy.deepcopy(_get(doc, source))
            _add(doc, path, value)
        elif op == "test":
            if _get(doc, path) != operation.get("value"):
                raise invalid_patch(f"testing value {path} failed")
        else:
            raise invalid_patch(f"unexpected JSON patch operation {op!r}")
    return doc
