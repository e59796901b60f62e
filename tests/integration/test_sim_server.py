"""The LLM simulator as a real process over HTTP: wire format, streaming, failures, LiteLLM."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from agent_service.domain.tokens import count_tokens
from agent_service.sim.embeddings import embed
from tests.conftest import Sim, SimFactory

pytestmark = pytest.mark.integration

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}


def _ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "sim-agent", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def _post(
    http: aiohttp.ClientSession, sim: Sim, body: Any
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    async with http.post(f"{sim.url}/chat/completions", json=body) as resp:
        return resp.status, await resp.json(), resp.headers


async def _stream(http: aiohttp.ClientSession, sim: Sim, body: Any) -> list[dict[str, Any]]:
    """The decoded SSE events of a streamed completion; asserts it ends with [DONE]."""
    async with http.post(f"{sim.url}/chat/completions", json={**body, "stream": True}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = (await resp.read()).decode()
    events = [block for block in raw.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events)
    assert events[-1] == "data: [DONE]"
    return [json.loads(block.removeprefix("data: ")) for block in events[:-1]]


async def test_models_and_health(http: aiohttp.ClientSession, sim: Sim) -> None:
    async with http.get(f"{sim.url}/models") as resp:
        body = await resp.json()
    assert body["object"] == "list"
    assert {m["id"] for m in body["data"]} >= {"sim-agent", "sim-agent-backup"}
    assert all(
        m["object"] == "model" and m["owned_by"] == "agent-service-sim" for m in body["data"]
    )
    async with http.get(sim.url.removesuffix("/v1") + "/health") as resp:
        assert resp.status == 200


async def test_tool_call_completion(http: aiohttp.ClientSession, sim: Sim) -> None:
    status, body, headers = await _post(
        http, sim, _ask("what is 12*(3+4)?", tools=[CALCULATOR], model="my-model")
    )
    assert status == 200
    assert headers["x-request-id"]
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "my-model"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "calculator"
    assert json.loads(call["function"]["arguments"]) == {"expression": "12*(3+4)"}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_answer_from_tool_result(http: aiohttp.ClientSession, sim: Sim) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "calculator", "arguments": "{}"},
    }
    messages = [
        {"role": "user", "content": "what is 12*(3+4)?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "84"},
    ]
    body = {"model": "sim-agent", "messages": messages, "tools": [CALCULATOR]}
    status, answer, _ = await _post(http, sim, body)
    assert status == 200
    assert answer["choices"][0]["message"]["content"] == "The answer is 84."
    assert answer["choices"][0]["finish_reason"] == "stop"


async def test_max_tokens_truncates(http: aiohttp.ClientSession, sim: Sim) -> None:
    _, full, _ = await _post(http, sim, _ask("tell me a story"))
    _, short, _ = await _post(http, sim, _ask("tell me a story", max_tokens=3))
    text = short["choices"][0]["message"]["content"]
    assert full["choices"][0]["message"]["content"].startswith(text)
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] == 3


async def test_stream_text_with_usage(http: aiohttp.ClientSession, sim: Sim) -> None:
    question = _ask("你好，请介绍一下你自己。")
    _, whole, _ = await _post(http, sim, question)
    events = await _stream(http, sim, {**question, "stream_options": {"include_usage": True}})
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert len({e["id"] for e in events}) == 1
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    contents = [d["content"] for d in deltas if d.get("content")]
    assert len(contents) > 1
    assert "".join(contents) == whole["choices"][0]["message"]["content"]
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["choices"] == []
    assert events[-1]["usage"] == whole["usage"]


async def test_stream_tool_call(http: aiohttp.ClientSession, sim: Sim) -> None:
    events = await _stream(http, sim, _ask("what is 12*(3+4)?", tools=[CALCULATOR]))
    calls = [
        c for e in events for c in e["choices"][0]["delta"].get("tool_calls") or () if e["choices"]
    ]
    assert calls[0]["index"] == 0
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["type"] == "function"
    assert calls[0]["function"]["name"] == "calculator"
    assert all("id" not in c and c["index"] == 0 for c in calls[1:])
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"expression": "12*(3+4)"}
    assert len(calls) > 2
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all("usage" not in e for e in events)


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (b'{"model": "sim-agent"}', "messages"),
        (b'{"model": "sim-agent", "messages": []}', "messages"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}', "max_tokens"),
    ],
)
async def test_bad_requests(
    http: aiohttp.ClientSession, sim: Sim, raw: bytes, param: str | None
) -> None:
    async with http.post(f"{sim.url}/chat/completions", data=raw) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


async def _statuses(http: aiohttp.ClientSession, sim: Sim, n: int, model: str) -> list[int]:
    """Statuses of ``n`` sequential requests (sequential, so the seeded draws are in order)."""
    statuses = []
    for _ in range(n):
        status, body, headers = await _post(http, sim, _ask("hi", model=model))
        if status == 429:
            assert body["error"]["type"] == "rate_limit_error"
            assert body["error"]["code"] == "rate_limit_exceeded"
            assert int(headers["retry-after"]) >= 0
        elif status == 500:
            assert body["error"]["type"] == "server_error"
        statuses.append(status)
    return statuses


async def test_fail_500_everything(http: aiohttp.ClientSession, sim_factory: SimFactory) -> None:
    sim = sim_factory("--ttft", "0", "--fail-500", "1.0")
    assert await _statuses(http, sim, 20, "sim-agent") == [500] * 20


async def test_fail_429_share_is_seeded(
    http: aiohttp.ClientSession, sim_factory: SimFactory
) -> None:
    first = sim_factory("--ttft", "0", "--fail-429", "0.5", "--seed", "7")
    second = sim_factory("--ttft", "0", "--fail-429", "0.5", "--seed", "7")
    statuses = await _statuses(http, first, 200, "sim-agent")
    assert set(statuses) == {200, 429}
    assert 70 <= statuses.count(429) <= 130
    assert await _statuses(http, second, 200, "sim-agent") == statuses


async def test_fail_model_only_affects_that_model(
    http: aiohttp.ClientSession, sim_factory: SimFactory
) -> None:
    sim = sim_factory("--ttft", "0", "--fail-500", "1.0", "--fail-model", "sim-flaky")
    assert await _statuses(http, sim, 10, "sim-flaky") == [500] * 10
    assert await _statuses(http, sim, 10, "sim-agent") == [200] * 10


async def test_hang_is_cut_by_the_client_timeout(
    http: aiohttp.ClientSession, sim_factory: SimFactory
) -> None:
    sim = sim_factory("--ttft", "0", "--hang", "1.0", "--hang-seconds", "60")
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            f"{sim.url}/chat/completions",
            json=_ask("hi"),
            timeout=aiohttp.ClientTimeout(total=0.5),
        ):
            pass
    assert time.monotonic() - started < 2
    async with http.get(f"{sim.url}/models") as resp:  # still serving
        assert resp.status == 200


async def test_pacing(http: aiohttp.ClientSession, sim_factory: SimFactory) -> None:
    sim = sim_factory("--ttft", "0.2", "--tokens-per-second", "100")
    started = time.monotonic()
    _, body, _ = await _post(http, sim, _ask("pace me please"))
    elapsed = time.monotonic() - started
    expected = 0.2 + body["usage"]["completion_tokens"] / 100
    assert expected * 0.95 <= elapsed < expected + 1.0  # upper bound loose for busy CI hosts

    started = time.monotonic()
    arrivals = []
    async with http.post(
        f"{sim.url}/chat/completions", json=_ask("pace me please", stream=True)
    ) as resp:
        async for line in resp.content:
            if line.startswith(b"data: {") and b'"content": "' in line:
                arrivals.append(time.monotonic() - started)
    assert arrivals[0] >= 0.19
    assert arrivals[-1] - arrivals[0] >= (body["usage"]["completion_tokens"] - 2) / 100 * 0.9


async def test_litellm_parses_the_simulator(sim: Sim) -> None:
    import litellm

    messages = [{"role": "user", "content": "what is 12*(3+4)?"}]
    common: dict[str, Any] = {
        "model": "openai/sim-agent",
        "api_base": sim.url,
        "api_key": "sim",
        "tools": [CALCULATOR],
        # litellm 1.106 imports its MCP gateway (which needs the uninstalled `mcp` package) for
        # any request with tools; this private flag skips that path. Our tools are plain functions.
        "_skip_mcp_handler": True,
    }
    # litellm's own annotations are unions of response shapes; these tests read them as Any.
    response: Any = await litellm.acompletion(messages=messages, **common)
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls
    assert call.function.name == "calculator"
    assert json.loads(call.function.arguments) == {"expression": "12*(3+4)"}
    assert response.usage.total_tokens > 0

    followup = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "84"},
    ]
    answer: Any = await litellm.acompletion(messages=followup, **common)
    assert answer.choices[0].message.content == "The answer is 84."

    stream = await litellm.acompletion(
        messages=messages, stream=True, stream_options={"include_usage": True}, **common
    )
    chunks = [chunk async for chunk in stream]
    rebuilt: Any = litellm.stream_chunk_builder(chunks, messages=messages)
    assert rebuilt is not None
    [streamed_call] = rebuilt.choices[0].message.tool_calls
    assert streamed_call.function.name == "calculator"
    assert json.loads(streamed_call.function.arguments) == {"expression": "12*(3+4)"}

    text_stream = await litellm.acompletion(
        messages=[{"role": "user", "content": "你好，世界"}], stream=True, **common
    )
    text = "".join([c.choices[0].delta.content or "" async for c in text_stream if c.choices])
    assert text.startswith("You said: 你好，世界.")


async def test_embeddings_wire_format(http: aiohttp.ClientSession, sim: Sim) -> None:
    body = {"model": "sim-embedding", "input": ["how do I scale the workers?", "你好"]}
    async with http.post(f"{sim.url}/embeddings", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["x-request-id"]
        floats = await resp.json()
    assert floats["object"] == "list"
    assert floats["model"] == "sim-embedding"
    assert [item["object"] for item in floats["data"]] == ["embedding", "embedding"]
    assert [item["index"] for item in floats["data"]] == [0, 1]
    first = floats["data"][0]["embedding"]
    assert len(first) == 512
    assert sum(x * x for x in first) == pytest.approx(1.0)
    assert floats["usage"] == {"prompt_tokens": 9, "total_tokens": 9}

    async with http.post(
        f"{sim.url}/embeddings", json={**body, "encoding_format": "base64", "dimensions": 8}
    ) as resp:
        packed = await resp.json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert len(raw) == 8 * 4
    assert list(struct.unpack("<8f", raw)) == pytest.approx(embed(body["input"][0], 8), abs=1e-6)

    async with http.post(f"{sim.url}/embeddings", json={"input": ""}) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "input"


async def test_embedding_dimensions_flag_and_failures(
    http: aiohttp.ClientSession, sim_factory: SimFactory
) -> None:
    small = sim_factory("--ttft", "0", "--embedding-dimensions", "64")
    async with http.post(f"{small.url}/embeddings", json={"input": "scale"}) as resp:
        assert len((await resp.json())["data"][0]["embedding"]) == 64
    failing = sim_factory("--ttft", "0", "--fail-500", "1.0", "--fail-model", "sim-embedding")
    async with http.post(
        f"{failing.url}/embeddings", json={"model": "sim-embedding", "input": "x"}
    ) as resp:
        assert resp.status == 500
    async with http.post(
        f"{failing.url}/embeddings", json={"model": "other-embedding", "input": "x"}
    ) as resp:
        assert resp.status == 200


async def test_litellm_embeds_through_the_simulator(sim: Sim) -> None:
    import litellm

    texts = ["how do I scale the workers?", "Scaling workers with KEDA", "webhook signatures"]
    common: dict[str, Any] = {"model": "openai/sim-embedding", "api_base": sim.url, "api_key": "s"}
    response: Any = await litellm.aembedding(input=texts, **common)
    vectors = [item["embedding"] for item in response.data]
    assert vectors[0] == pytest.approx(embed(texts[0]), abs=1e-9)
    assert response.usage.prompt_tokens == sum(count_tokens(t) for t in texts)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
