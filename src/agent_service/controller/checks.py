"""What the controller checks beyond each resource's schema, one function per kind.

Pure but for the ``Cluster`` port's read of Secret keys. Each problem comes with its path on the
resource (``spec.models[0].apiKey.secretKeyRef``, ``metadata.name``) and a CamelCase reason, so
a status message says exactly what to fix:

* ``check_spec``: an AgentConfig's spec, as the config model validates it (its own agents and
  MCP servers included), then every referenced Secret (exists, holds the key, mounted into the
  pods) and every outbound URL (HTTP tools and MCP servers: SSRF guard, allowed hosts, private
  networks only where the controller allows them). Its ``defaultAgent`` is left out: it may name
  an Agent resource, which only the composition knows (``compose``).
* ``check_mcp_server``: an MCPServer resource, with the same Secret and URL rules.
* ``check_agent``: an Agent resource's own fields; what it names (model, tools, servers) is
  checked against the config it would join (``compose``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from agent_service.agentconfig.agents import AgentSpec
from agent_service.agentconfig.load import validation_errors
from agent_service.agentconfig.mcp import SERVER_NAME_PATTERN, McpServerSpec
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.spec import NAME_PATTERN, Loc, SecretKeyRef, format_path
from agent_service.controller.ports import Cluster, Policy, Problem
from agent_service.domain.errors import ToolError
from agent_service.egress.guard import check_url
from agent_service.egress.hosts import host_allowed, url_host

Checked = tuple[Any | None, list[Problem]]


def _invalid(exc: ValidationError, prefix: Loc) -> list[Problem]:
    return [
        Problem(path, "InvalidSpec", message) for path, message in validation_errors(exc, prefix)
    ]


def check_spec(
    spec: Mapping[str, Any], cluster: Cluster, policy: Policy
) -> tuple[AgentConfig | None, list[Problem]]:
    """An AgentConfig's spec as a config without ``defaultAgent`` (see ``wanted_default``), or
    the problems that make it unusable (paths under ``spec``)."""
    problems = _default_agent_problems(spec)
    try:
        config = AgentConfig.model_validate({**spec, "defaultAgent": None})
    except ValidationError as exc:
        return None, [*_invalid(exc, ("spec",)), *problems]
    problems += [
        *_secret_problems(config, ("spec",), cluster, policy),
        *_http_tool_problems(config, policy),
    ]
    for index, server in enumerate(config.mcp_servers):
        problems += _server_url_problems(server, policy, ("spec", "mcpServers", index))
    return (None if problems else config), problems


def wanted_default(spec: Mapping[str, Any]) -> str | None:
    """The ``defaultAgent`` an AgentConfig's spec asks for (checked by ``check_spec``)."""
    value = spec.get("defaultAgent", spec.get("default_agent"))
    return value if isinstance(value, str) else None


def _default_agent_problems(spec: Mapping[str, Any]) -> list[Problem]:
    value = spec.get("defaultAgent", spec.get("default_agent"))
    if value is None or (isinstance(value, str) and re.match(NAME_PATTERN, value)):
        return []
    return [Problem("spec.defaultAgent", "InvalidSpec", f"{value!r} is not an agent name")]


def check_mcp_server(
    name: str, spec: Mapping[str, Any], cluster: Cluster, policy: Policy
) -> tuple[McpServerSpec | None, list[Problem]]:
    """An MCPServer resource as the ``mcpServers`` entry named ``name`` (its metadata.name), or
    the problems that make it unusable."""
    if not re.match(SERVER_NAME_PATTERN, name):
        return None, [
            Problem(
                "metadata.name",
                "InvalidSpec",
                f"{name!r} cannot name an MCP server: lowercase letters, digits and '-', at most "
                "32 characters, no dots (the model sees its tools as <name>__<tool>)",
            )
        ]
    if "name" in spec:
        return None, [_name_in_spec("MCPServer")]
    try:
        server = McpServerSpec.model_validate({**spec, "name": name})
    except ValidationError as exc:
        return None, _invalid(exc, ("spec",))
    problems = [
        *_secret_problems(server, ("spec",), cluster, policy),
        *_server_url_problems(server, policy, ("spec",)),
    ]
    return (None if problems else server), problems


def check_agent(name: str, spec: Mapping[str, Any]) -> tuple[AgentSpec | None, list[Problem]]:
    """An Agent resource as the ``agents`` entry named ``name`` (its metadata.name), or the
    problems of its own fields (the names it uses are checked by ``compose``)."""
    if not re.match(NAME_PATTERN, name):
        return None, [
            Problem(
                "metadata.name",
                "InvalidSpec",
                f"{name!r} cannot name an agent: lowercase letters, digits, '.', '_' and '-', "
                "at most 63 characters",
            )
        ]
    if "name" in spec:
        return None, [_name_in_spec("Agent")]
    try:
        return AgentSpec.model_validate({**spec, "name": name}), []
    except ValidationError as exc:
        return None, _invalid(exc, ("spec",))


def _name_in_spec(kind: str) -> Problem:
    return Problem(
        "spec.name", "InvalidSpec", f"not a field: an {kind}'s name is its metadata.name"
    )


def secret_refs(node: object, loc: Loc) -> Iterator[tuple[Loc, SecretKeyRef]]:
    """Every Kubernetes Secret key a spec references, with its path (``models[0].apiKey``)."""
    if isinstance(node, SecretKeyRef):
        yield loc, node
    elif isinstance(node, BaseModel):
        for field, info in type(node).model_fields.items():
            yield from secret_refs(getattr(node, field), (*loc, info.alias or field))
    elif isinstance(node, list | tuple):
        for index, item in enumerate(node):
            yield from secret_refs(item, (*loc, index))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from secret_refs(item, (*loc, str(key)))


def _secret_problems(
    spec: BaseModel, loc: Loc, cluster: Cluster, policy: Policy
) -> Iterator[Problem]:
    for where, ref in secret_refs(spec, loc):
        path = format_path(where)
        keys = cluster.secret_keys(ref.name)
        if keys is None:
            yield Problem(path, "SecretNotFound", f"Secret {ref.name!r} does not exist")
        elif ref.key not in keys:
            yield Problem(path, "SecretKeyNotFound", f"Secret {ref.name!r} has no key {ref.key!r}")
        elif policy.mounted_secrets is not None and ref.name not in policy.mounted_secrets:
            yield Problem(
                path,
                "SecretNotMounted",
                f"Secret {ref.name!r} is not mounted into the pods (add it to the chart's "
                "agentConfigSecrets value)",
            )


def _http_tool_problems(config: AgentConfig, policy: Policy) -> Iterator[Problem]:
    tools = config.tools
    if tools.allow_private_networks and not policy.allow_private_networks:
        yield _private_networks(("spec", "tools"), "HTTP tools")
    for index, tool in enumerate(tools.http):
        path = format_path(("spec", "tools", "http", index, "url"))
        yield from _url_problems(tool.url, tools.allow_private_networks, policy, path)


def _server_url_problems(server: McpServerSpec, policy: Policy, loc: Loc) -> Iterator[Problem]:
    if server.allow_private_networks and not policy.allow_private_networks:
        yield _private_networks(loc, "MCP servers")
    path = format_path((*loc, "url"))
    yield from _url_problems(server.url, server.allow_private_networks, policy, path)


def _url_problems(url: str, private: bool, policy: Policy, path: str) -> Iterator[Problem]:
    """The SSRF guard (private addresses only where both the spec and the controller allow
    them) and the allowed hosts, on ``url`` at ``path``."""
    try:
        check_url(url, private and policy.allow_private_networks)
    except ToolError as exc:
        yield Problem(path, "ToolURLNotAllowed", f"{url}: {exc}")
        return
    host = url_host(url)
    allowed = policy.allowed_tool_hosts
    if not host_allowed(host, allowed):
        yield Problem(
            path,
            "ToolURLNotAllowed",
            f"host {host!r} is not in the allowed tool hosts ({', '.join(allowed)})",
        )


def _private_networks(loc: Loc, what: str) -> Problem:
    return Problem(
        format_path((*loc, "allowPrivateNetworks")),
        "PrivateNetworksNotAllowed",
        f"this controller does not allow {what} to reach private networks",
    )
