"""Fakes for unit tests of the agent loop (never used by integration tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from agent_service.agent.ports import DeltaCallback
from agent_service.domain.agent_config import AgentConfig
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
        self.delay = delay

    async def complete(
        self,
        *,
        config: AgentConfig,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
    ) -> LLMCompletion:
        self.calls.append(list(messages))
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

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def invoke(self, arguments: dict[str, Any]) -> str:
        self.calls.append(arguments)
        if self.fail:
            raise self.fail
        return f"echo:{arguments}"


class MemoryFake:
    def __init__(self) -> None:
        self.turns: dict[str, list[ChatMessage]] = {}

    async def load(self, session_id: str, max_turns: int) -> list[ChatMessage]:
        return self.turns.get(session_id, [])[-2 * max_turns :]

    async def append(
        self, session_id: str, messages: Sequence[ChatMessage], max_turns: int
    ) -> None:
        self.turns.setdefault(session_id, []).extend(messages)


__all__ = ["AgentError", "EchoTool", "MemoryFake", "ScriptedLLM", "ToolError", "text", "tool_calls"]
