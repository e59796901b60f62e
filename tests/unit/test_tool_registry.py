"""The tool registry: which tools are offered, and parsing the model's argument text."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.agent.tools.registry import build_toolset, parse_arguments
from agent_service.agentconfig.agents import AgentToolsSpec
from agent_service.domain.errors import ToolError
from agent_service.domain.messages import ToolSpec


class Fake:
    def __init__(self, name: str) -> None:
        self._spec = ToolSpec(name=name, description="x", parameters={"type": "object"})

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def invoke(self, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> str:
        return "ok"


HTTP = {"weather": Fake("weather"), "stock": Fake("stock")}


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        (
            AgentToolsSpec(calculator=True, current_time=True, http=["weather"]),
            ["calculator", "current_time", "weather"],
        ),
        (AgentToolsSpec(current_time=True, http=["weather"]), ["current_time", "weather"]),
        (AgentToolsSpec(http=["stock", "weather"]), ["stock", "weather"]),
        (AgentToolsSpec(calculator=True), ["calculator"]),
        (AgentToolsSpec(), []),
    ],
)
def test_toolset(spec: AgentToolsSpec, names: list[str]) -> None:
    assert list(build_toolset(spec, HTTP)) == names


def test_duplicate_names_refused() -> None:
    with pytest.raises(ValueError, match="calculator"):
        build_toolset(
            AgentToolsSpec(calculator=True, http=["calculator"]), {"calculator": Fake("calculator")}
        )


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
