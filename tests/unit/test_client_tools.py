"""The agent loop's side of OpenAI's APIs: client tools, a run's own output format, the
conversation that continues a client tool round trip, and the messages a run adds."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.agent.loop import RunFailedError
from agent_service.agentconfig.model import AgentConfig
from agent_service.domain.errors import ErrorType
from agent_service.domain.messages import ChatMessage, ToolCall, ToolSpec
from agent_service.domain.runs import OutputFormat, RunRequest
from tests.unit.fakes import EchoTool, ScriptedLLM, make_agent, text, tool_calls

WEATHER = ToolSpec(name="get_weather", description="", parameters={"type": "object"})


def config(**limits: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        {"defaultModel": "m1", "models": [{"name": "m1", "model": "openai/x"}], "limits": limits}
    )


async def test_client_tools_are_offered_and_a_call_ends_the_run() -> None:
    llm = ScriptedLLM([tool_calls(("get_weather", '{"city": "Paris"}'))])
    request = RunRequest(message="weather?", client_tools=[WEATHER], keep_messages=True)
    result = await make_agent(config(), llm, {"echo": EchoTool()}).run(request)
    assert llm.tools_offered == [["echo", "get_weather"]]
    assert [c.name for c in result.tool_calls] == ["get_weather"]
    assert [s.kind for s in result.steps] == ["llm"]  # nothing ran on the server
    assert result.messages is not None and result.messages[-1].tool_calls == result.tool_calls


async def test_server_calls_of_the_same_turn_run_before_the_run_stops() -> None:
    llm = ScriptedLLM([tool_calls(("echo", '{"text": "hi"}'), ("get_weather", "{}"))])
    request = RunRequest(message="both", client_tools=[WEATHER], keep_messages=True)
    result = await make_agent(config(), llm, {"echo": EchoTool()}).run(request)
    assert [s.kind for s in result.steps] == ["llm", "tool"]
    assert [c.name for c in result.tool_calls] == ["get_weather"]
    assert result.messages is not None
    roles = [(m.role, m.tool_call_id) for m in result.messages]
    assert roles == [("assistant", None), ("tool", "call_0")]


async def test_the_run_continues_from_the_client_results() -> None:
    llm = ScriptedLLM(["It is sunny."])
    call = ToolCall(id="call_9", name="get_weather", arguments="{}")
    request = RunRequest(
        message="weather?",
        client_tools=[WEATHER],
        continuation=[
            ChatMessage(role="assistant", tool_calls=[call]),
            ChatMessage(role="tool", tool_call_id="call_9", content="sunny"),
        ],
        keep_messages=True,
    )
    result = await make_agent(config(), llm, {}).run(request)
    sent = llm.calls[0]
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool"]
    assert result.answer == "It is sunny." and not result.tool_calls
    assert result.messages == [ChatMessage(role="assistant", content="It is sunny.")]


async def test_a_request_format_overrides_the_agent_and_gets_one_repair() -> None:
    llm = ScriptedLLM(["not json", '{"city": "Paris"}'])
    wanted = OutputFormat(
        type="json_schema",
        name="report",
        schema={"type": "object", "required": ["city"]},
        strict=True,
    )
    result = await make_agent(config(), llm, {}).run(
        RunRequest(message="report", output_format=wanted)
    )
    assert result.output == {"city": "Paris"}
    assert llm.response_formats[0] == {
        "type": "json_schema",
        "json_schema": {"name": "report", "schema": wanted.json_schema, "strict": True},
    }
    json_object = ScriptedLLM(["[1, 2]", "still not an object"])
    with pytest.raises(RunFailedError) as failed:
        await make_agent(config(), json_object, {}).run(
            RunRequest(message="x", output_format=OutputFormat(type="json_object"))
        )
    assert failed.value.type == ErrorType.INVALID_OUTPUT
    assert json_object.response_formats[0] == {"type": "json_object"}


async def test_max_output_tokens_caps_each_call_and_the_finish_reason_is_kept() -> None:
    seen: list[int | None] = []
    llm = ScriptedLLM([text("cut")])
    original = llm.complete

    async def complete(**kwargs: Any) -> Any:
        seen.append(kwargs["max_tokens"])
        answer = await original(**kwargs)
        return answer.model_copy(update={"finish_reason": "length"})

    llm.complete = complete  # type: ignore[method-assign]
    result = await make_agent(config(), llm, {}).run(RunRequest(message="x", max_output_tokens=7))
    assert seen == [7] and result.finish_reason == "length"


async def test_a_forced_tool_choice_applies_to_the_first_call_only() -> None:
    llm = ScriptedLLM([tool_calls(("get_weather", "{}")), "done"])
    forced = {"type": "function", "function": {"name": "echo"}}
    request = RunRequest(message="x", tool_choice=forced)
    await make_agent(config(), llm, {"echo": EchoTool()}).run(request)
    assert llm.tool_choices == [forced, None]
