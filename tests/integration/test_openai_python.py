"""The official ``openai`` Python SDK against a real API and worker: Chat Completions and the
Responses API, every answer checked against OpenAI's published schemas (tests/openai_spec.py).

Client tools are reached through the simulator's "call tool NAME with {...}" rule; several such
phrases make parallel calls, which is how a server tool (calculator) and a client tool
(get_weather) land in one model turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from agent_service.api.auth import generate_key
from tests.conftest import RedisServer, Sim
from tests.integration.conftest import OpenAIStack
from tests.integration.stack import parse_sse, secured_env
from tests.openai_spec import OpenAISpec, load_spec

pytestmark = pytest.mark.integration

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
CHAT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather now", "parameters": WEATHER},
    }
]
RESPONSE_TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True}
]
ASK_WEATHER = 'call tool get_weather with {"city": "Paris"}'
HYBRID = 'call tool calculator with {"expression": "6*7"} and ' + ASK_WEATHER
FORECAST = "18 degrees and sunny"
REPORT_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "temperature": {"type": "number"},
        "sunny": {"type": "boolean"},
    },
    "required": ["city", "temperature", "sunny"],
    "additionalProperties": False,
}


class Report(BaseModel):
    city: str
    temperature: float
    sunny: bool


@pytest.fixture(scope="module")
def spec() -> OpenAISpec:
    return load_spec()


@pytest.fixture
def client(openai_stack: OpenAIStack) -> Iterator[openai.OpenAI]:
    # trust_env=False: never a developer's proxy between the SDK and the test server.
    with openai.OpenAI(
        base_url=openai_stack.base_url,
        api_key=openai_stack.key,
        max_retries=0,
        http_client=httpx.Client(trust_env=False, timeout=30),
    ) as sdk:
        yield sdk


@pytest.fixture
def http(openai_stack: OpenAIStack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {openai_stack.key}"}
    with httpx.Client(base_url=openai_stack.url, headers=headers, timeout=30) as raw:
        yield raw


def _chat(client: openai.OpenAI, spec: OpenAISpec, **body: Any) -> Any:
    """A completion, its raw JSON checked against the spec."""
    raw = client.chat.completions.with_raw_response.create(**body)
    spec.check("CreateChatCompletionResponse", raw.http_response.json())
    return raw.parse()


# --- Chat Completions ------------------------------------------------------------------------


def test_chat_plain_and_streamed(
    client: openai.OpenAI, spec: OpenAISpec, http: httpx.Client
) -> None:
    question = [{"role": "user", "content": "what is 12*(3+4)?"}]
    completion = _chat(client, spec, model="sim", messages=question)
    assert "84" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0

    chunks = list(
        client.chat.completions.create(
            model="sim", messages=question, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "84" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    resp = http.post(
        "/v1/chat/completions", json={"model": "sim", "messages": question, "stream": True}
    )
    for event in parse_sse(resp.text.replace("data: [DONE]\n\n", "")):
        spec.check("CreateChatCompletionStreamResponse", event["data"])


def test_chat_history_with_tool_calls(client: openai.OpenAI, spec: OpenAISpec) -> None:
    history: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_earlier",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_earlier", "content": FORECAST},
        {"role": "assistant", "content": "It is 18 degrees and sunny."},
        {"role": "user", "content": "what is 12*(3+4)?"},
    ]
    completion = _chat(client, spec, model="sim", messages=history, tools=CHAT_TOOLS)
    assert "84" in completion.choices[0].message.content
    short = _chat(client, spec, model="sim", messages=history[-1:], tools=CHAT_TOOLS)
    # The history reached the model: it counted the earlier turns.
    assert completion.usage.prompt_tokens > short.usage.prompt_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_chat_client_tool_round_trip(client: openai.OpenAI, spec: OpenAISpec, stream: bool) -> None:
    messages: list[Any] = [{"role": "user", "content": ASK_WEATHER}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="sim", messages=messages, tools=CHAT_TOOLS, stream=True
            )
        )
        deltas = [c.choices[0] for c in chunks if c.choices]
        assert deltas[-1].finish_reason == "tool_calls"
        calls = [call for d in deltas for call in d.delta.tool_calls or ()]
        call_id, name = calls[0].id, calls[0].function.name
        arguments = "".join(c.function.arguments or "" for c in calls)
        assistant: Any = {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        }
    else:
        first = _chat(client, spec, model="sim", messages=messages, tools=CHAT_TOOLS)
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        call = choice.message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        assistant = choice.message.model_dump(exclude_none=True)
    assert name == "get_weather" and json.loads(arguments) == {"city": "Paris"}
    messages += [assistant, {"role": "tool", "tool_call_id": call_id, "content": FORECAST}]
    final = _chat(client, spec, model="sim", messages=messages, tools=CHAT_TOOLS)
    assert final.choices[0].finish_reason == "stop"
    assert FORECAST in final.choices[0].message.content


def test_chat_server_and_client_tool_in_one_turn(client: openai.OpenAI, spec: OpenAISpec) -> None:
    messages: list[Any] = [{"role": "user", "content": HYBRID}]
    first = _chat(client, spec, model="sim", messages=messages, tools=CHAT_TOOLS)
    calls = first.choices[0].message.tool_calls
    # The calculator ran on the server: only the client's function comes back.
    assert [c.function.name for c in calls] == ["get_weather"]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": FORECAST},
    ]
    final = _chat(client, spec, model="sim", messages=messages, tools=CHAT_TOOLS)
    answer = final.choices[0].message.content
    # The server step the client never saw was put back: the model answers from both results.
    assert "The answer is 42" in answer and FORECAST in answer


def test_chat_structured_output(client: openai.OpenAI, spec: OpenAISpec) -> None:
    messages: list[Any] = [{"role": "user", "content": "report the weather in Paris: 18 degrees"}]
    parsed = client.chat.completions.parse(model="sim", messages=messages, response_format=Report)
    report = parsed.choices[0].message.parsed
    assert isinstance(report, Report) and report.temperature == 18
    schema_format = {
        "type": "json_schema",
        "json_schema": {"name": "report", "schema": REPORT_SCHEMA, "strict": True},
    }
    raw = _chat(client, spec, model="sim", messages=messages, response_format=schema_format)
    assert set(json.loads(raw.choices[0].message.content)) == {"city", "temperature", "sunny"}
    obj = _chat(
        client, spec, model="sim", messages=messages, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(obj.choices[0].message.content), dict)
    with pytest.raises(openai.APIStatusError) as invalid:
        client.chat.completions.create(
            model="sim",
            messages=[{"role": "user", "content": "[[invalid-json]] weather?"}],
            response_format=schema_format,
        )
    assert invalid.value.status_code == 502 and invalid.value.code == "invalid_output"


def test_chat_errors_in_openai_shape(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.param == "model"
    resp = http.post(
        "/v1/chat/completions",
        json={
            "model": "sim",
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ],
        },
    )
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert "not served" in error["message"]
    resp = http.post(
        "/v1/chat/completions",
        json={"model": "sim", "messages": [{"role": "user", "content": "hi"}], "stream": 0},
    )
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "stream"


# --- Responses API ---------------------------------------------------------------------------


def _create(client: openai.OpenAI, spec: OpenAISpec, **body: Any) -> Any:
    raw = client.responses.with_raw_response.create(**body)
    spec.check("Response", raw.http_response.json())
    return raw.parse()


def test_response_plain_with_server_tool_items(client: openai.OpenAI, spec: OpenAISpec) -> None:
    response = _create(
        client,
        spec,
        model="sim",
        input="what is 12*(3+4)?",
        instructions="Be brief.",
        metadata={"ticket": "T-1"},
    )
    assert response.status == "completed" and "84" in response.output_text
    kinds = [item.type for item in response.output]
    assert kinds == ["mcp_call", "message"]
    step = response.output[0]
    assert step.name == "calculator" and step.server_label == "agent-service"
    assert step.output == "84"
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens > 0
    assert response.metadata == {"ticket": "T-1"} and response.instructions == "Be brief."


def test_response_streamed_events(
    client: openai.OpenAI, spec: OpenAISpec, http: httpx.Client
) -> None:
    events = list(client.responses.create(model="sim", input="what is 12*(3+4)?", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in (
        "response.output_item.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.output_item.done",
    ):
        assert kind in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "84" in events[-1].response.output_text
    resp = http.post("/v1/responses", json={"model": "sim", "input": "hello", "stream": True})
    for event in parse_sse(resp.text):
        spec.check("ResponseStreamEvent", event["data"])
        assert event["event"] == event["data"]["type"]


def test_response_function_call_round_trip(
    client: openai.OpenAI, spec: OpenAISpec, http: httpx.Client
) -> None:
    first = _create(client, spec, model="sim", input=ASK_WEATHER, tools=RESPONSE_TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    result = {"type": "function_call_output", "call_id": calls[0].call_id, "output": FORECAST}
    chained = _create(
        client,
        spec,
        model="sim",
        previous_response_id=first.id,
        input=[result],
        tools=RESPONSE_TOOLS,
    )
    assert FORECAST in chained.output_text
    # Stateless: the whole conversation as items, nothing stored.
    items: list[Any] = [{"role": "user", "content": ASK_WEATHER}, calls[0].model_dump(), result]
    stateless = _create(client, spec, model="sim", input=items, tools=RESPONSE_TOOLS, store=False)
    assert FORECAST in stateless.output_text
    assert http.get(f"/v1/responses/{stateless.id}").status_code == 404
    # A server tool and a client function in one turn: the step is an item the client keeps.
    hybrid = _create(client, spec, model="sim", input=HYBRID, tools=RESPONSE_TOOLS, store=False)
    assert [i.type for i in hybrid.output] == ["mcp_call", "function_call"]
    call = hybrid.output[1]
    items = [
        {"role": "user", "content": HYBRID},
        *(item.model_dump() for item in hybrid.output),
        {"type": "function_call_output", "call_id": call.call_id, "output": FORECAST},
    ]
    done = _create(client, spec, model="sim", input=items, tools=RESPONSE_TOOLS, store=False)
    assert "The answer is 42" in done.output_text and FORECAST in done.output_text


def test_response_structured_output(client: openai.OpenAI, spec: OpenAISpec) -> None:
    parsed = client.responses.parse(
        model="sim", input="report the weather in Paris: 18 degrees", text_format=Report
    )
    assert isinstance(parsed.output_parsed, Report) and parsed.output_parsed.temperature == 18
    text = {"format": {"type": "json_schema", "name": "report", "schema": REPORT_SCHEMA}}
    raw = _create(client, spec, model="sim", input="weather in Paris, 18 degrees", text=text)
    assert set(json.loads(raw.output_text)) == {"city", "temperature", "sunny"}


def test_response_background_polled(client: openai.OpenAI, spec: OpenAISpec) -> None:
    queued = _create(client, spec, model="sim", input="what is 12*(3+4)?", background=True)
    assert queued.status in ("queued", "in_progress", "completed") and queued.background
    deadline = time.monotonic() + 30
    response = queued
    while response.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        raw = client.responses.with_raw_response.retrieve(queued.id)
        spec.check("Response", raw.http_response.json())
        response = raw.parse()
    assert response.status == "completed" and "84" in response.output_text
    assert response.usage.total_tokens > 0


def test_response_chain_of_three(client: openai.OpenAI, spec: OpenAISpec) -> None:
    first = _create(client, spec, model="sim", input="My name is Ada.")
    second = _create(
        client, spec, model="sim", input="I live in Paris.", previous_response_id=first.id
    )
    third = _create(
        client,
        spec,
        model="sim",
        input="What is my name?",
        previous_response_id=second.id,
        background=True,
    )
    while third.status in ("queued", "in_progress"):
        time.sleep(0.05)
        third = client.responses.retrieve(third.id)
    assert third.status == "completed" and "What is my name" in third.output_text
    assert third.previous_response_id == second.id
    # Each turn (one LLM call each) saw the ones before it: the prompt grows along the chain.
    assert first.usage.input_tokens < second.usage.input_tokens < third.usage.input_tokens
    alone = _create(client, spec, model="sim", input="What is my name?")
    assert alone.usage.input_tokens < first.usage.input_tokens + 10 < third.usage.input_tokens


def test_response_stream_resumes_after_a_sequence_number(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    created = client.responses.create(model="sim", input="what is 12*(3+4)?", background=True)
    deadline = time.monotonic() + 30
    while client.responses.retrieve(created.id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    whole = parse_sse(http.get(f"/v1/responses/{created.id}", params={"stream": "true"}).text)
    numbers = [e["data"]["sequence_number"] for e in whole]
    assert numbers == list(range(len(whole))) and whole[-1]["event"] == "response.completed"
    middle = len(whole) // 2
    resumed = parse_sse(
        http.get(
            f"/v1/responses/{created.id}", params={"stream": "true", "starting_after": middle}
        ).text
    )
    assert [e["data"] for e in resumed] == [e["data"] for e in whole[middle + 1 :]]
    sdk_events = list(client.responses.retrieve(created.id, stream=True, starting_after=middle))
    assert [e.sequence_number for e in sdk_events] == numbers[middle + 1 :]


def test_response_delete_cancel_and_errors(
    client: openai.OpenAI, openai_stack: OpenAIStack, http: httpx.Client
) -> None:
    done = client.responses.create(model="sim", input="hello")
    with pytest.raises(openai.ConflictError):
        client.responses.cancel(done.id)  # only background responses, and only running ones
    other = httpx.get(
        f"{openai_stack.base_url}/responses/{done.id}",
        headers={"Authorization": f"Bearer {openai_stack.other_key}"},
    )
    assert other.status_code == 404  # another tenant's
    client.responses.delete(done.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(done.id)
    assert gone.value.code == "not_found"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="sim", input="hi", previous_response_id=done.id)
    assert unknown.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError) as no_model:
        client.responses.create(model="gpt-x", input="hi")
    assert no_model.value.param == "model"
    resp = http.post(
        "/v1/responses",
        json={
            "model": "sim",
            "input": [
                {
                    "role": "user",
                    "content": [{"type": "input_image", "image_url": "https://x/y.png"}],
                }
            ],
        },
    )
    assert resp.status_code == 422 and "not served" in resp.json()["error"]["message"]
    resp = http.post(
        "/v1/responses", json={"model": "sim", "input": "hi", "tools": [{"type": "web_search"}]}
    )
    assert resp.status_code == 422 and "not served" in resp.json()["error"]["message"]


def test_tool_choice_forces_and_none_withholds(client: openai.OpenAI, spec: OpenAISpec) -> None:
    hello: list[Any] = [{"role": "user", "content": "hello"}]
    forced = _chat(
        client,
        spec,
        model="sim",
        messages=hello,
        tools=CHAT_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert forced.choices[0].finish_reason == "tool_calls"
    withheld = _chat(
        client,
        spec,
        model="sim",
        messages=[{"role": "user", "content": ASK_WEATHER}],
        tools=CHAT_TOOLS,
        tool_choice="none",
    )
    assert withheld.choices[0].finish_reason == "stop"
    response = _create(
        client,
        spec,
        model="sim",
        input="hello",
        tools=RESPONSE_TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert [item.type for item in response.output] == ["function_call"]
    assert response.tool_choice.name == "get_weather"


@pytest.fixture(scope="module")
def queued_only(
    redis_server: RedisServer, sim: Sim, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenAIStack]:
    """An API with no worker on its queue: background responses stay queued."""
    key = generate_key()
    root = tmp_path_factory.mktemp("queued-only")
    env = secured_env(redis_server.url, sim.url, log_dir, root, {"waiting": key})
    api, url = env.start_api()
    yield OpenAIStack(url, key, key)
    api.stop()


def test_background_idempotency_cancel_and_delete(queued_only: OpenAIStack) -> None:
    with openai.OpenAI(
        base_url=queued_only.base_url,
        api_key=queued_only.key,
        max_retries=0,
        http_client=httpx.Client(trust_env=False, timeout=30),
    ) as sdk:
        again = {"Idempotency-Key": "order-17"}
        first = sdk.responses.create(
            model="sim", input="hello", background=True, extra_headers=again
        )
        replay = sdk.responses.create(
            model="sim", input="hello", background=True, extra_headers=again
        )
        assert first.status == "queued" and replay.id == first.id
        with pytest.raises(openai.ConflictError):
            sdk.responses.create(model="sim", input="bye", background=True, extra_headers=again)
        with pytest.raises(openai.ConflictError):
            sdk.responses.delete(first.id)  # still queued: cancel it first
        cancelled = sdk.responses.cancel(first.id)
        assert cancelled.status == "cancelled"
        assert sdk.responses.retrieve(first.id).status == "cancelled"
        sdk.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(first.id)
