"""The tool registry: which tools are offered, and parsing the model's argument text."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.agent.tools.registry import build_toolset, parse_arguments
from agent_service.agentconfig.model import ToolsSpec
from agent_service.domain.errors import ToolError
from agent_service.domain.messages import ToolSpec


class Fake:
    def __init__(self, name: str) -> None:
        self._spec = ToolSpec(name=name, description="x", parameters={"type": "object"})

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def invoke(self, arguments: dict[str, Any]) -> str:
        return "ok"


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        (ToolsSpec(), ["calculator", "current_time", "weather"]),
        (ToolsSpec(calculator=False), ["current_time", "weather"]),
        (ToolsSpec(calculator=False, current_time=False), ["weather"]),
    ],
)
def test_toolset(spec: ToolsSpec, names: list[str]) -> None:
    assert list(build_toolset(spec, [Fake("weather")])) == names


def test_duplicate_names_refused() -> None:
    with pytest.raises(ValueError, match="calculator"):
        build_toolset(ToolsSpec(), [Fake("calculator")])


@pytest.mark.parametrize(("raw", "expected"), [('{"a": 1}', {"a": 1}), ("", {}), ("  ", {})])
def test_parse(raw: str, expected: dict[str, Any]) -> None:
    assert parse_arguments(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{", "not valid JSON"),
        ("[1]", "JSON object, not list"),
        ("1", "not int"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_parse_refuses(raw: str, reason: str) -> None:
    with pytest.raises(ToolError, match=reason):
        parse_arguments(raw)
