"""The tool set of a run: enabled built-ins plus external (HTTP) tools, keyed by name.

The agent loop calls ``build_toolset`` once per config and ``parse_arguments`` on each tool
call's raw JSON before ``Tool.invoke``. External tools come from the ``httptools`` adapter, which
the composition root builds, so this module never imports an adapter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent_service.agent.ports import Tool
from agent_service.agent.tools.calculator import CalculatorTool
from agent_service.agent.tools.clock import CurrentTimeTool
from agent_service.agentconfig.model import ToolsSpec
from agent_service.domain.errors import ToolError


def build_toolset(tools: ToolsSpec, external: Sequence[Tool] = ()) -> dict[str, Tool]:
    """The enabled built-ins and ``external`` by name; ``ValueError`` on a duplicate name."""
    enabled: list[Tool] = []
    if tools.calculator:
        enabled.append(CalculatorTool())
    if tools.current_time:
        enabled.append(CurrentTimeTool())
    toolset: dict[str, Tool] = {}
    for tool in [*enabled, *external]:
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
