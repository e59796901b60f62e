"""The agent loop against a scripted fake LLM: answers, tools, failures, limits, memory."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.agent.loop import RunFailedError
from agent_service.agentconfig.model import AgentConfig, Limits, ModelSpec
from agent_service.domain.errors import ErrorType, LLMUnavailableError, ToolError
from agent_service.domain.runs import RunEvent, RunRequest
from tests.unit.fakes import EchoTool, MemoryFake, ScriptedLLM, make_agent, text, tool_calls


def config(**limits: Any) -> AgentConfig:
    return AgentConfig(
        default_model="m1",
        models=[ModelSpec(name="m1", model="openai/m1"), ModelSpec(name="m2", model="openai/m2")],
        limits=Limits(**limits),
    )


async def test_plain_answer_has_one_llm_step_and_usage() -> None:
    llm = ScriptedLLM(["hello there"])
    result = await make_agent(config(), llm, {}).run(RunRequest(message="hi"))
    assert result.answer == "hello there"
    assert [s.kind for s in result.steps] == ["llm"]
    assert result.usage.total_tokens == 15
    assert result.model == "m1"
    first_call = llm.calls[0]
    assert first_call[0].role == "system" and first_call[-1].content == "hi"


async def test_tool_call_then_answer_records_both_steps_and_feeds_result_back() -> None:
    tool = EchoTool()
    llm = ScriptedLLM([tool_calls(("echo", '{"x": 1}')), "done"])
    result = await make_agent(config(), llm, {"echo": tool}).run(RunRequest(message="go"))
    assert result.answer == "done"
    assert [(s.kind, s.name, s.status) for s in result.steps] == [
        ("llm", "m1", "ok"),
        ("tool", "echo", "ok"),
        ("llm", "m1", "ok"),
    ]
    assert tool.calls == [{"x": 1}]
    tool_message = llm.calls[1][-1]
    assert tool_message.role == "tool" and tool_message.tool_call_id == "call_0"
    assert tool_message.content == "echo:{'x': 1}"
    assert result.usage.total_tokens == 30


@pytest.mark.parametrize(
    ("tools", "arguments", "expected"),
    [
        ({"echo": EchoTool(fail=ToolError("boom"))}, "{}", "error: boom"),
        ({"echo": EchoTool(fail=RuntimeError("bug"))}, "{}", "error: tool failed (RuntimeError)"),
        ({}, "{}", "error: unknown tool 'echo'"),
        ({"echo": EchoTool()}, "not json", "error: "),
    ],
)
async def test_failing_tool_is_reported_to_the_model_and_the_run_goes_on(
    tools: dict[str, EchoTool], arguments: str, expected: str
) -> None:
    llm = ScriptedLLM([tool_calls(("echo", arguments)), "recovered"])
    result = await make_agent(config(), llm, tools).run(RunRequest(message="go"))
    assert result.answer == "recovered"
    assert result.steps[1].status == "error"
    assert llm.calls[1][-1].content is not None
    assert llm.calls[1][-1].content.startswith(expected)


async def test_all_models_failing_ends_with_llm_unavailable_and_the_failed_step() -> None:
    llm = ScriptedLLM([LLMUnavailableError("m1: rate_limited; m2: server_error")])
    with pytest.raises(RunFailedError) as info:
        await make_agent(config(), llm, {}).run(RunRequest(message="hi"))
    assert info.value.type == ErrorType.LLM_UNAVAILABLE
    assert [s.status for s in info.value.steps] == ["error"]


async def test_max_iterations_stops_a_tool_loop() -> None:
    llm = ScriptedLLM([tool_calls(("echo", "{}"))] * 3)
    with pytest.raises(RunFailedError) as info:
        await make_agent(config(max_iterations=3), llm, {"echo": EchoTool()}).run(
            RunRequest(message="x")
        )
    assert info.value.type == ErrorType.MAX_ITERATIONS
    assert len(llm.calls) == 3


async def test_token_limit_stops_the_run() -> None:
    llm = ScriptedLLM([tool_calls(("echo", "{}")), "never"])
    with pytest.raises(RunFailedError) as info:
        await make_agent(config(max_tokens_per_run=12), llm, {"echo": EchoTool()}).run(
            RunRequest(message="x")
        )
    assert info.value.type == ErrorType.TOKEN_LIMIT
    assert info.value.usage.total_tokens == 15


async def test_run_timeout() -> None:
    llm = ScriptedLLM(["slow"], delay=5)
    with pytest.raises(RunFailedError) as info:
        await make_agent(config(run_timeout_seconds=0.05), llm, {}).run(RunRequest(message="x"))
    assert info.value.type == ErrorType.RUN_TIMEOUT


async def test_requested_model_is_used_and_fallback_is_recorded() -> None:
    completion = text("ok", model="m2")
    completion.requested_model = "m1"
    llm = ScriptedLLM([completion])
    result = await make_agent(config(), llm, {}).run(RunRequest(message="x", model="m1"))
    assert result.model == "m2"
    assert result.steps[0].fallback_from == "m1"


async def test_session_memory_is_loaded_trimmed_and_appended() -> None:
    memory = MemoryFake()
    llm = ScriptedLLM(["first answer", "second answer", "third answer"])
    agent = make_agent(config(memory_turns=5), llm, {}, memory=memory)
    await agent.run(RunRequest(message="first", session_id="s1"))
    await agent.run(RunRequest(message="second", session_id="s1"))
    second_call = [m.content for m in llm.calls[1]]
    assert second_call[1:] == ["first", "first answer", "second"]
    assert len(memory.turns["default:s1"]) == 4, "sessions are kept per tenant"
    # Another tenant's session of the same id is another conversation.
    await agent.run(RunRequest(message="third", session_id="s1", tenant="team-b"))
    assert [m.content for m in llm.calls[2]][1:] == ["third"]


async def test_stream_mode_emits_deltas_and_steps_in_order() -> None:
    events: list[RunEvent] = []

    async def sink(event: RunEvent) -> None:
        events.append(event)

    llm = ScriptedLLM([tool_calls(("echo", "{}")), "two words"])
    await make_agent(config(), llm, {"echo": EchoTool()}).run(
        RunRequest(message="x"), mode="stream", sink=sink
    )
    kinds = [(e.type, e.data.get("kind")) for e in events]
    assert kinds == [
        ("step", "llm"),
        ("step", "tool"),
        ("delta", None),
        ("delta", None),
        ("step", "llm"),
    ]
    assert "".join(e.data["text"] for e in events if e.type == "delta") == "two words "
