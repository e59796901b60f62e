"""The pure translation between OpenAI's wire formats and runs (api/openai): continuations of
client tool calls, output items and their ids, input items, streamed events and resumption."""

from __future__ import annotations

import json

import pytest

from agent_service.api.errors import ApiError
from agent_service.api.openai import chat
from agent_service.api.openai.common import split_conversation
from agent_service.api.openai.response_events import ResponseEvents
from agent_service.api.openai.responses import (
    Outcome,
    StoredResponse,
    item_messages,
    merge_calls,
    output_items,
    parse_item_id,
)
from agent_service.domain.messages import ChatMessage, ToolCall
from agent_service.domain.runs import RunResult, Step, Usage

HEX = "0123456789abcdef0123456789abcdef"
CALC = ToolCall(id="call_a", name="calculator", arguments='{"expression": "6*7"}')
WEATHER = ToolCall(id="call_b", name="get_weather", arguments='{"city": "Paris"}')
HYBRID = [
    ChatMessage(role="assistant", tool_calls=[CALC, WEATHER]),
    ChatMessage(role="tool", tool_call_id="call_a", content="42", name="calculator"),
]


def result(messages: list[ChatMessage], calls: list[ToolCall], answer: str = "") -> RunResult:
    return RunResult(
        answer=answer,
        steps=[],
        usage=Usage(),
        model="m1",
        duration_ms=1,
        tool_calls=calls,
        messages=messages,
    )


def test_hidden_server_steps_are_kept_under_fresh_ids_and_put_back() -> None:
    found = chat.client_calls(result(HYBRID, [WEATHER]))
    (call,) = found.calls
    assert call.name == "get_weather" and call.id != "call_b" and call.id.startswith("call_")
    # The kept steps carry the new id, so the client's tool message matches them.
    assert [c.id for c in found.hidden_steps[0].tool_calls] == ["call_a", call.id]
    client_view = [
        ChatMessage(role="user", content="both"),
        ChatMessage(role="assistant", tool_calls=[call]),
        ChatMessage(role="tool", tool_call_id=call.id, content="sunny"),
    ]
    assert chat.tool_call_ids(client_view) == [call.id]
    expanded = chat.expand(client_view, {call.id: found.hidden_steps})
    assert [(m.role, m.tool_call_id) for m in expanded] == [
        ("user", None),
        ("assistant", None),
        ("tool", "call_a"),
        ("tool", call.id),
    ]


def test_nothing_is_kept_when_the_client_saw_everything() -> None:
    only = [ChatMessage(role="assistant", tool_calls=[WEATHER])]
    assert chat.client_calls(result(only, [WEATHER])).hidden_steps == []


def test_output_items_and_their_ids() -> None:
    messages = [*HYBRID, ChatMessage(role="assistant", content="done")]
    items = output_items(HEX, messages, ["get_weather"])
    assert [(i["type"], i["id"]) for i in items] == [
        ("mcp_call", f"mcp_{HEX}_0"),
        ("function_call", f"fc_{HEX}_1"),
        ("message", f"msg_{HEX}_2"),
    ]
    assert items[0]["output"] == "42" and items[0]["server_label"] == "agent-service"
    assert items[1]["call_id"] == "call_b"
    assert parse_item_id(items[2]["id"]) == (HEX, 2)
    assert parse_item_id("msg_nothex_1") is None and parse_item_id("rs_x") is None


def test_call_items_of_one_turn_join_one_assistant_message() -> None:
    items = output_items(HEX, HYBRID, ["get_weather"])
    messages = [m for item in items for m in item_messages(item)]
    messages.append(ChatMessage(role="tool", tool_call_id="call_b", content="sunny"))
    merged = merge_calls([ChatMessage(role="user", content="both"), *messages])
    assert [m.role for m in merged] == ["user", "assistant", "tool", "tool"]
    assert [c.name for c in merged[1].tool_calls] == ["calculator", "get_weather"]


def test_the_conversation_splits_at_the_last_user_text() -> None:
    conversation = [
        ChatMessage(role="system", content="be brief"),
        ChatMessage(role="user", content="weather?"),
        ChatMessage(role="assistant", tool_calls=[WEATHER]),
        ChatMessage(role="tool", tool_call_id="call_b", content="sunny"),
    ]
    history, message, continuation = split_conversation(conversation, "messages")
    assert message == "weather?" and len(history) == 1 and len(continuation) == 2
    with pytest.raises(ApiError) as refused:
        split_conversation(conversation[:1], "input")
    assert refused.value.status == 422 and refused.value.param == "input"


def _stored() -> StoredResponse:
    return StoredResponse(id=f"resp_{HEX}", created_at=1, params={"model": "sim"}, conversation=[])


def _events(after: int = -1) -> list[dict[str, object]]:
    events = ResponseEvents(_stored(), after)
    chunks = [*events.begin("in_progress")]
    step = Step(
        index=1,
        kind="tool",
        name="calculator",
        started_at=0,
        duration_ms=1,
        input=CALC.arguments,
        output="42",
    )
    chunks += events.step(step)
    chunks += events.delta("The answer ")
    chunks += events.delta("is 42.")
    messages = [
        ChatMessage(role="assistant", tool_calls=[CALC]),
        ChatMessage(role="tool", tool_call_id="call_a", content="42"),
        ChatMessage(role="assistant", content="The answer is 42."),
    ]
    chunks += events.finish(Outcome(status="completed", result=result(messages, [])))
    return [json.loads(c.decode().split("data: ", 1)[1]) for c in chunks]


def test_streamed_events_are_numbered_and_match_the_final_output() -> None:
    events = _events()
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    added = [e["item"]["id"] for e in events if e["type"] == "response.output_item.added"]
    final = events[-1]["response"]["output"]  # type: ignore[index]
    assert added == [item["id"] for item in final]
    assert events[-1]["response"]["output_text"] == "The answer is 42."  # type: ignore[index]


def test_a_stream_resumes_after_a_sequence_number() -> None:
    whole = _events()
    assert _events(after=4) == whole[5:]


@pytest.mark.parametrize(
    "extra",
    [{"tools": True}, {"modalities": 5}, {"tool_choice": {"type": 3}}, {"messages": "x"}],
)
def test_malformed_bodies_are_validation_errors_never_crashes(extra: dict[str, object]) -> None:
    from pydantic import ValidationError

    from agent_service.api.openai.chat_models import CompletionBody
    from agent_service.api.openai.responses_models import ResponseBody

    chat_body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    with pytest.raises(ValidationError):
        CompletionBody.model_validate(chat_body)
    with pytest.raises(ValidationError):
        ResponseBody.model_validate({"model": "m", "input": "hi", **extra})
