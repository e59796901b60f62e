"""The tool set of an agent: its built-ins plus the external (HTTP) tools it names, by name.

The runtime calls ``build_toolset`` once per agent of a config snapshot; the agent loop calls
``parse_arguments`` on each tool call's raw JSON before ``Tool.invoke``. External tools come
from the ``httptools`` adapter (and MCP tools from ``mcptools``), which the runtime builds, so
this module never imports an adapter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent_service.agent.ports import Tool
from agent_service.agent.tools.calculator import CalculatorTool
from agent_service.agent.tools.clock import CurrentTimeTool
from agent_service.agentconfig.agents import AgentToolsSpec
from agent_service.domain.errors import ToolError


def build_toolset(spec: AgentToolsSpec, http: Mapping[str, Tool]) -> dict[str, Tool]:
    """The built-ins ``spec`` switches on, then the ``http`` tools it names, by name.

    ``KeyError`` for a name ``http`` lacks and ``ValueError`` on a duplicate name (the config's
    validation refuses both first).
    """
    enabled: list[Tool] = []
    if spec.calculator:
        enabled.append(CalculatorTool())
    if spec.current_time:
        enabled.append(CurrentTimeTool())
    toolset: dict[str, Tool] = {}
    for tool in [*enabled, *(http[name] for name in spec.http)]:
        name = tool.spec.name
        if name in toolset:
            raise ValueError(f"duplicate tool name {name!r}")
        toolset[name] = tool
    return toolset


def parse_arguments(raw: str) -> dict[str, Any]:
    """The model's argument text as a dict; ``ToolError`` unless it is a JSON object.

    Empty text means no arguments: some models send ``""`` for a tool without parameters.
    """
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ToolError(f"arguments are not valid JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise ToolError("arguments are nested too deeply") from None
    if not isinstance(value, dict):
        raise ToolError(f"arguments must be a JSON object, not {type(value).__name__}")
    return value
