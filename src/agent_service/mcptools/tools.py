"""MCP tools as the agent's tools: names, filters, and results turned into text.

Pure functions over the SDK's types, called by ``connection.ServerConnection`` after each
``tools/list`` and by ``McpTool.invoke`` after each ``tools/call``. The model sees a tool as
``<server>__<tool>``, which must be a valid function name for every provider
(``[A-Za-z0-9_-]``, at most 64 characters): a tool whose name cannot be one is not offered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types

from agent_service.domain.errors import ToolError
from agent_service.domain.messages import ToolSpec

SEPARATOR = "__"
MAX_FUNCTION_NAME = 64
MAX_DESCRIPTION_CHARS = 2000
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class DiscoveredTool:
    """An MCP tool as offered to the model: its server-side name and the spec the model sees."""

    server: str
    name: str
    spec: ToolSpec


def exposed_name(server: str, tool: str) -> str:
    """The name the model calls: ``<server>__<tool>``."""
    return f"{server}{SEPARATOR}{tool}"


def select_tools(
    server: str,
    listed: Sequence[mcp_types.Tool],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[DiscoveredTool], list[str]]:
    """The tools to offer from a ``tools/list`` answer, and why the others were skipped.

    ``include`` (empty: all) and ``exclude`` apply to the server's own tool names. A tool is
    skipped, with a reason, when its exposed name is not a valid function name or its input
    schema does not describe an object (``tools/call`` arguments are always one).
    """
    offered: list[DiscoveredTool] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for tool in listed:
        if (include and tool.name not in include) or tool.name in exclude:
            continue
        name = exposed_name(server, tool.name)
        reason = _unusable(name, tool.input_schema)
        if reason is None and tool.name in seen:
            reason = "listed twice"
        if reason is not None:
            skipped.append(f"{tool.name}: {reason}")
            continue
        seen.add(tool.name)
        description = (tool.description or tool.title or tool.name)[:MAX_DESCRIPTION_CHARS]
        spec = ToolSpec(name=name, description=description, parameters=_parameters(tool))
        offered.append(DiscoveredTool(server=server, name=tool.name, spec=spec))
    return offered, skipped


def _unusable(name: str, schema: dict[str, Any]) -> str | None:
    if len(name) > MAX_FUNCTION_NAME:
        return f"{name!r} is longer than {MAX_FUNCTION_NAME} characters"
    if not _FUNCTION_NAME.match(name):
        return f"{name!r} has characters a function name cannot have"
    if schema.get("type", "object") != "object":
        return "its input schema is not an object"
    return None


def _parameters(tool: mcp_types.Tool) -> dict[str, Any]:
    schema = dict(tool.input_schema)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def result_text(result: mcp_types.CallToolResult) -> str:
    """A ``tools/call`` result as the text the model reads; ``ToolError`` when ``isError``.

    Text blocks are joined by newlines. Structured content is sent as compact JSON when the
    server gave no text or its text is that same JSON. Other blocks are named rather than
    dropped, so the model knows something came back.
    """
    parts = [_block_text(block) for block in result.content]
    text = "\n".join(part for part in parts if part)
    structured = result.structured_content
    if structured is not None and (not text or _parses_to(text, structured)):
        # One line instead of the server's indented copy: the same data in fewer tokens.
        text = json.dumps(structured, ensure_ascii=False, separators=(", ", ": "))
    if result.is_error:
        raise ToolError(text or "the tool reported an error")
    return text


def _block_text(block: mcp_types.ContentBlock) -> str:
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return f"[{block.type}: {block.mime_type}]"
    if isinstance(block, mcp_types.EmbeddedResource):
        contents = block.resource
        if isinstance(contents, mcp_types.TextResourceContents):
            return contents.text
        return f"[resource: {contents.uri}]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[resource link: {block.uri}]"
    return f"[{block.type}]"


def _parses_to(text: str, value: Any) -> bool:
    try:
        return bool(json.loads(text) == value)
    except (ValueError, RecursionError):
        return False
