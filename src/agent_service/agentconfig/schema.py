"""pydantic models as *structural* OpenAPI v3.0 schemas, the form a CustomResourceDefinition needs.

Called by ``crd`` for the spec and status of every resource kind. pydantic emits JSON Schema
2020-12; Kubernetes wants a structural OpenAPI v3.0 schema, so the generated schema is
rewritten: ``$ref`` inlined, ``Optional`` as ``nullable``, numeric ``exclusiveMinimum`` as the
v3.0 boolean form, free-form objects marked ``x-kubernetes-preserve-unknown-fields``,
``additionalProperties: false`` dropped (the API server prunes unknown fields instead), titles
dropped, descriptions and bounds kept.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_KEPT = {
    "type", "description", "default", "enum", "pattern", "format", "minimum", "maximum",
    "minLength", "maxLength", "minItems", "maxItems", "required", "nullable",
}  # fmt: skip


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _nullable_branch(node: dict[str, Any]) -> dict[str, Any] | None:
    """For ``anyOf: [X, {type: null}]`` (pydantic's ``X | None``), X; else None."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2:
        return None
    others = [b for b in branches if b != {"type": "null"}]
    return others[0] if len(others) == 1 else None


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One JSON Schema node of pydantic's output as a structural OpenAPI v3.0 node."""
    node = _resolve(node, defs)
    branch = _nullable_branch(node)
    if branch is not None:
        inner = structural(branch, defs)
        outer = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        merged = {**inner, **structural_scalars(outer)}
        merged["nullable"] = True
        if node.get("default") is not None:
            merged["default"] = node["default"]
        return merged
    if "anyOf" in node or "oneOf" in node or "allOf" in node:
        raise ValueError(f"cannot express a union in a structural schema: {node}")
    out = structural_scalars(node)
    if "const" in node:
        out["enum"] = [node["const"]]
    if node.get("type") == "object" or "properties" in node:
        out["type"] = "object"
        properties = node.get("properties")
        if properties:
            out["properties"] = {k: structural(v, defs) for k, v in properties.items()}
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = structural(extra, defs)
        elif not properties and extra is not False:
            # dict[str, Any]: a free-form object (a JSON schema of tool arguments, ...)
            out["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("type") == "array":
        out["items"] = structural(node.get("items", {}), defs)
    if out.get("default") is None:
        out.pop("default", None)
    return out


def structural_scalars(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if k in _KEPT}
    if isinstance(out.get("description"), str):  # docstrings are reST; kubectl explain is not
        out["description"] = " ".join(out["description"].replace("``", "`").split())
    if "exclusiveMinimum" in node:
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "exclusiveMaximum" in node:
        out["maximum"], out["exclusiveMaximum"] = node["exclusiveMaximum"], True
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of a pydantic model, with camelCase field names."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


def without_field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """``schema`` (an object's) without property ``name``: the spec of a resource whose name is
    its ``metadata.name`` (an Agent is an ``agents`` entry without ``name``)."""
    out = {**schema, "properties": {k: v for k, v in schema["properties"].items() if k != name}}
    required = [field for field in schema.get("required", []) if field != name]
    if required:
        out["required"] = required
    else:
        out.pop("required", None)
    return out
