"""Fakes for unit tests of the agent loop (never used by integration tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from agent_service.agent.loop import Agent
from agent_service.agent.ports import DeltaCallback
from agent_service.agentconfig.model import AgentConfig
from agent_service.domain.errors import AgentError, ToolError
from agent_service.domain.messages import (
    ChatMessage,
    LLMCompletion,
    TokenUsage,
    ToolCall,
    ToolSpec,
)


class ScriptedLLM:
    """Answers with the next scripted item: an LLMCompletion, an exception, or a text."""

    def __init__(
        self, script: Sequence[LLMCompletion | Exception | str], delay: float = 0.0
    ) -> None:
        self.script = list(script)
        self.calls: list[list[ChatMessage]] = []
        self.tools_offered: list[list[str]] = []
        self.response_formats: list[dict[str, Any] | None] = []
        self.tool_choices: list[str | dict[str, Any] | None] = []
        self.delay = delay

    async def complete(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        response_format: dict[str, Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> LLMCompletion:
        self.calls.append(list(messages))
        self.response_formats.append(response_format)
        self.tool_choices.append(tool_choice)
        self.tools_offered.append([t.name for t in tools])
        if self.delay:
            await asyncio.sleep(self.delay)
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, str):
            item = text(item, model)
        if on_delta and item.content:
            for word in item.content.split(" "):
                await on_delta(word + " ")
        return item


def text(content: str, model: str = "m1", tokens: tuple[int, int] = (10, 5)) -> LLMCompletion:
    return LLMCompletion(
        content=content,
        usage=TokenUsage(input_tokens=tokens[0], output_tokens=tokens[1], cost_usd=0.001),
        model=model,
        requested_model=model,
        provider="openai",
    )


def tool_calls(*calls: tuple[str, str], model: str = "m1") -> LLMCompletion:
    return LLMCompletion(
        content=None,
        tool_calls=[
            ToolCall(id=f"call_{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)
        ],
        usage=TokenUsage(input_tokens=10, output_tokens=5, cost_usd=0.001),
        model=model,
        requested_model=model,
        provider="openai",
    )


class EchoTool:
    def __init__(self, name: str = "echo", fail: Exception | None = None) -> None:
        self._spec = ToolSpec(name=name, description="echo", parameters={"type": "object"})
        self.fail = fail
        self.calls: list[dict[str, Any]] = []
        self.keys: list[str | None] = []

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def invoke(self, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> str:
        self.calls.append(arguments)
        self.keys.append(idempotency_key)
        if self.fail:
            raise self.fail
        return f"echo:{arguments}"


class GuardFake:
    """A RunGuard that stops the run at its ``stop_at``-th check with ``error``."""

    def __init__(self, stop_at: int | None = None, error: AgentError | None = None) -> None:
        self.checks = 0
        self.charged: list[TokenUsage] = []
        self.stop_at = stop_at
        self.error = error

    async def check(self) -> None:
        self.checks += 1
        if self.stop_at is not None and self.checks >= self.stop_at and self.error is not None:
            raise self.error

    async def charge(self, usage: TokenUsage) -> None:
        self.charged.append(usage)


class CacheFake:
    def __init__(self) -> None:
        self.items: dict[str, Any] = {}
        self.ttls: list[int] = []

    async def get(self, key: str) -> Any:
        return self.items.get(key)

    async def put(self, key: str, result: Any, ttl_seconds: int) -> None:
        self.items[key] = result
        self.ttls.append(ttl_seconds)


class MemoryFake:
    def __init__(self) -> None:
        self.turns: dict[str, list[ChatMessage]] = {}

    async def load(self, session_id: str, max_turns: int) -> list[ChatMessage]:
        return self.turns.get(session_id, [])[-2 * max_turns :]

    async def append(
        self, session_id: str, messages: Sequence[ChatMessage], max_turns: int
    ) -> None:
        self.turns.setdefault(session_id, []).extend(messages)


__all__ = [
    "AgentError",
    "CacheFake",
    "EchoTool",
    "GuardFake",
    "MemoryFake",
    "ScriptedLLM",
    "ToolError",
    "text",
    "tool_calls",
]


def make_agent(
    config: AgentConfig,
    llm: Any,
    tools: Mapping[str, Any],
    *,
    agent: str | None = None,
    **kwargs: Any,
) -> Agent:
    """Agent ``agent`` of ``config`` (its default agent when None), as the runtime builds it."""
    profile = config.profiles()[agent or config.default_agent_name]
    return Agent(profile, config, llm, tools, **kwargs)
