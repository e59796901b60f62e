"""The ``AgentConfig`` CustomResourceDefinition, generated from the pydantic config model.

``agent-service crd`` prints it; the copies committed in the chart (its ``crds`` subchart,
installed only with ``crds.install``) and in ``k8s/crds/`` must equal it (a test checks). It
carries ``helm.sh/resource-policy: keep``: whatever installs it, deleting a release must never
delete the CRD, which would delete every AgentConfig in the cluster with it.

pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3.0 schema, so the
generated schema is rewritten: ``$ref`` inlined,
``Optional`` as ``nullable``, numeric ``exclusiveMinimum`` as the v3.0 boolean form, free-form
objects marked ``x-kubernetes-preserve-unknown-fields``, ``additionalProperties: false`` dropped
(the API server prunes unknown fields instead), titles dropped, descriptions and bounds kept.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.status import AgentConfigStatus

GROUP = "agent-service.dev"
VERSION = "v1alpha1"
KIND = "AgentConfig"
PLURAL = "agentconfigs"
SINGULAR = "agentconfig"
API_VERSION = f"{GROUP}/{VERSION}"

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


_READY = '.status.conditions[?(@.type=="Ready")]'
PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status"},
    {"name": "Reason", "type": "string", "jsonPath": f"{_READY}.reason"},
    {"name": "Generation", "type": "integer", "jsonPath": ".metadata.generation"},
    {"name": "Default Model", "type": "string", "jsonPath": ".spec.defaultModel", "priority": 1},
    {"name": "Hash", "type": "string", "jsonPath": ".status.configHash", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
RESOURCE_DESCRIPTION = (
    "AgentConfig declares the agent configuration of an agent-service release; the controller "
    "validates it and renders it into the ConfigMap the api and worker pods reload without "
    "restart."
)


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    spec = model_schema(AgentConfig)
    spec["description"] = (
        "The agent's configuration: models (provider, prices, fallbacks), tools, system prompt, "
        "limits, rate limits and budgets. Secrets are referenced, never inlined."
    )
    status = model_schema(AgentConfigStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "agent-service",
                "app.kubernetes.io/part-of": "agent-service",
            },
            "annotations": {"helm.sh/resource-policy": "keep"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": ["agentcfg"],
                "categories": ["agent-service"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": RESOURCE_DESCRIPTION,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }  # fmt: skip


HEADER = (
    "# Generated by `agent-service crd` from the pydantic model in\n"
    "# src/agent_service/agentconfig/model.py: do not edit by hand.\n"
)


class _PlainDumper(yaml.SafeDumper):
    """No anchors and aliases: a schema reused in two places is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crd_yaml() -> str:
    """The CRD as the YAML document committed in the chart and in ``k8s/crds/``."""
    text = yaml.dump(
        build_crd(), Dumper=_PlainDumper, sort_keys=False, width=100, allow_unicode=True
    )
    return HEADER + text
