"""The agent loop's spans (``invoke_agent``, ``chat``, ``execute_tool``) and their attributes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agent_service.agent import spans
from agent_service.agent.loop import RunFailedError
from agent_service.agentconfig.model import AgentConfig, ModelSpec
from agent_service.domain.errors import LLMUnavailableError, ToolError
from agent_service.domain.messages import ChatMessage, LLMAttempt, ToolCall
from agent_service.domain.runs import RunRequest
from tests.unit.fakes import EchoTool, ScriptedLLM, make_agent, text, tool_calls

CONTENT = {spans.INPUT_MESSAGES, spans.OUTPUT_MESSAGES, spans.TOOL_ARGUMENTS, spans.TOOL_RESULT}


def config() -> AgentConfig:
    return AgentConfig(
        default_model="m1",
        models=[
            ModelSpec(name="m1", model="openai/m1"),
            ModelSpec(name="m2", model="anthropic/m2"),
        ],
    )


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_a_run_is_an_invoke_agent_span_over_chat_and_tool_spans(
    exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    llm = ScriptedLLM([tool_calls(("echo", '{"x": 1}')), "done"])
    agent = make_agent(config(), llm, {"echo": EchoTool()}, tracer=tracer, generation=5)
    result = await agent.run(RunRequest(message="secret prompt", session_id="s-1"))
    assert result.config_generation == 5

    run, chat1, tool, chat2 = finished(exporter)
    assert [run.name, chat1.name, tool.name, chat2.name] == [
        "invoke_agent default",
        "chat m1",
        "execute_tool echo",
        "chat m1",
    ]
    assert result.trace_id == f"{run.context.trace_id:032x}"
    for child in (chat1, tool, chat2):
        assert child.parent is not None and child.parent.span_id == run.context.span_id
    assert attrs(run) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "default",
        "gen_ai.request.model": "m1",
        "gen_ai.response.model": "m1",
        "gen_ai.conversation.id": "s-1",
        "agent.config.generation": 5,
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 10,
        "agent.cost_usd": pytest.approx(0.002),
        "agent.mode": "sync",
        "agent.steps": 3,
    }
    assert chat1.kind is SpanKind.CLIENT
    assert attrs(chat1) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m1",
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.response.model": "m1",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
        "agent.cost_usd": pytest.approx(0.001),
        "agent.llm.attempts": 0,
    }
    assert attrs(tool) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "echo",
        "gen_ai.tool.call.id": "call_0",
        "gen_ai.tool.type": "function",
    }
    for span in (run, chat1, tool, chat2):
        assert span.status.status_code is StatusCode.UNSET
        assert not CONTENT & set(attrs(span))
        assert not any("secret" in str(v) for v in attrs(span).values())


async def test_capture_content_records_messages_and_tool_io(
    exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    llm = ScriptedLLM([tool_calls(("echo", '{"x": 1}')), "done"])
    agent = make_agent(config(), llm, {"echo": EchoTool()}, tracer=tracer, capture_content=True)
    await agent.run(RunRequest(message="hello"))
    _, chat1, tool, chat2 = finished(exporter)
    sent = json.loads(attrs(chat1)[spans.INPUT_MESSAGES])
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[1]["parts"] == [{"type": "text", "content": "hello"}]
    assert json.loads(attrs(chat1)[spans.OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_0", "name": "echo", "arguments": {"x": 1}}],
            "finish_reason": None,
        }
    ]
    assert attrs(tool)[spans.TOOL_ARGUMENTS] == '{"x": 1}'
    assert attrs(tool)[spans.TOOL_RESULT] == "echo:{'x': 1}"
    second = json.loads(attrs(chat2)[spans.INPUT_MESSAGES])
    assert second[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_0", "response": "echo:{'x': 1}"}],
    }
    assert json.loads(attrs(chat2)[spans.OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": "done"}
    ]


async def test_a_failed_llm_call_is_an_error_on_chat_and_invoke_agent(
    exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    error = LLMUnavailableError("m1: rate_limited")
    error.attempts = [  # type: ignore[attr-defined]
        LLMAttempt(model="m1", provider="openai", outcome="rate_limited", duration_ms=3.0)
    ]
    agent = make_agent(config(), ScriptedLLM([error]), {}, tracer=tracer)
    with pytest.raises(RunFailedError):
        await agent.run(RunRequest(message="hi"))
    run, chat = finished(exporter)
    for span in (run, chat):
        assert span.status.status_code is StatusCode.ERROR
        assert attrs(span)["error.type"] == "llm_unavailable"
        assert [e.name for e in span.events if e.name == "exception"] == ["exception"]
    (attempt,) = [e for e in chat.events if e.name == "gen_ai.attempt"]
    assert dict(attempt.attributes or {}) == {
        "gen_ai.request.model": "m1",
        "gen_ai.provider.name": "openai",
        "agent.llm.outcome": "rate_limited",
        "agent.llm.duration_ms": 3.0,
    }
    assert attrs(run)["agent.steps"] == 1


async def test_a_fallback_names_the_requested_and_the_answering_model(
    exporter: InMemorySpanExporter, tracer: trace.Tracer
) -> None:
    completion = text("ok", model="m2")
    completion.requested_model, completion.provider = "m1", "anthropic"
    completion.attempts = [
        LLMAttempt(model="m1", provider="openai", outcome="server_error", duration_ms=1.0),
        LLMAttempt(model="m2", provider="anthropic", outcome="ok", duration_ms=2.0),
    ]
    await make_agent(config(), ScriptedLLM([completion]), {}, tracer=tracer).run(
        RunRequest(message="x")
    )
    run, chat = finished(exporter)
    assert chat.name == "chat m1"
    assert attrs(chat)["gen_ai.request.model"] == "m1"
    assert attrs(chat)["gen_ai.response.model"] == "m2"
    assert attrs(chat)["gen_ai.provider.name"] == "anthropic"
    assert attrs(chat)["agent.llm.fallback_from"] == "m1"
    assert [e.name for e in chat.events] == ["gen_ai.attempt"]  # the failed try only
    assert attrs(run)["gen_ai.response.model"] == "m2"


@pytest.mark.parametrize(
    ("tools", "span_name", "error_type", "exception_event"),
    [
        ({"echo": EchoTool(fail=ToolError("boom"))}, "execute_tool echo", "tool_error", False),
        ({"echo": EchoTool(fail=RuntimeError("bug"))}, "execute_tool echo", "RuntimeError", True),
        ({}, "execute_tool unknown", "tool_error", False),
    ],
)
async def test_a_failed_tool_call_is_an_error_span_and_the_run_goes_on(
    exporter: InMemorySpanExporter,
    tracer: trace.Tracer,
    tools: dict[str, EchoTool],
    span_name: str,
    error_type: str,
    exception_event: bool,
) -> None:
    llm = ScriptedLLM([tool_calls(("echo", "{}")), "recovered"])
    await make_agent(config(), llm, tools, tracer=tracer).run(RunRequest(message="go"))
    run, _, tool, _ = finished(exporter)
    assert tool.name == span_name
    assert tool.status.status_code is StatusCode.ERROR
    assert attrs(tool)["error.type"] == error_type
    assert any(e.name == "exception" for e in tool.events) is exception_event
    assert run.status.status_code is StatusCode.UNSET


async def test_without_an_sdk_spans_are_no_ops_and_results_have_no_trace_id() -> None:
    provider = trace.NoOpTracerProvider()
    agent = make_agent(config(), ScriptedLLM(["hi"]), {}, tracer=spans.get_tracer(provider))
    assert (await agent.run(RunRequest(message="x"))).trace_id is None


def test_input_messages_follow_the_genai_parts_shape() -> None:
    messages = [
        ChatMessage(role="system", content="be brief"),
        ChatMessage(role="user", content="hi"),
        ChatMessage(
            role="assistant",
            content="checking",
            tool_calls=[ToolCall(id="c1", name="calc", arguments="not json")],
        ),
        ChatMessage(role="tool", content="42", tool_call_id="c1", name="calc"),
    ]
    assert json.loads(spans.input_messages(messages)) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "checking"},
                {"type": "tool_call", "id": "c1", "name": "calc", "arguments": "not json"},
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]},
    ]


def test_completion_attributes_skip_what_is_unknown() -> None:
    completion = text("ok")
    assert "agent.llm.fallback_from" not in spans.completion_attributes(completion)
    completion.finish_reason, completion.response_model = "stop", "gpt-4o-mini-2024-07-18"
    completion.time_to_first_token_ms = 12.5
    attributes = spans.completion_attributes(completion)
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["agent.llm.provider_model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["agent.llm.time_to_first_token_ms"] == 12.5
