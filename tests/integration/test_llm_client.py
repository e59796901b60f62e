"""``LiteLLMClient`` against the real simulator process (``agent-service sim-llm``).

Every test that calls a model runs on both transports: ``direct`` (the ``openai`` SDK alone,
the default for OpenAI-compatible servers like the simulator) and ``litellm`` (LiteLLM's real
stack: aiohttp transport, OpenAI provider), over loopback. The first call of a transport in a
process pays its lazy imports, so timing tests warm up first.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_service.agentconfig.model import AgentConfig, ModelSpec, RetryPolicy
from agent_service.agentconfig.spec import SecretRef
from agent_service.domain.errors import LLMBadRequestError, LLMUnavailableError
from agent_service.domain.messages import ChatMessage, LLMCompletion, ToolCall, ToolSpec
from agent_service.llm import LiteLLMClient, close_llm_clients
from agent_service.llm.client import RequestRejectedError, Transport
from agent_service.llm.cost import cost_usd
from agent_service.llm.embeddings import LiteLLMEmbedder
from agent_service.llm.retry import classify
from tests.conftest import Sim, SimFactory
from tests.procs import base_env

pytestmark = [
    pytest.mark.integration,
    # LiteLLM's first call (lazy imports) builds pydantic schemas that warn about a `ReadOnly`
    # TypedDict item; under "error" the warning becomes an exception inside litellm.acompletion.
    pytest.mark.filterwarnings("ignore:Item .* is using the .ReadOnly. qualifier:UserWarning"),
]

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)
ARITHMETIC = [ChatMessage(role="user", content="what is 12*(3+4)?")]
HELLO = [ChatMessage(role="user", content="hello there, how are you?")]


def make_config(
    url: str,
    *,
    max_retries: int = 2,
    timeout: float = 10.0,
    primary_timeout: float | None = None,
    fallbacks: bool = True,
) -> AgentConfig:
    """Two simulator models, ``primary`` falling back to ``backup``, with tiny backoff."""
    return AgentConfig(
        default_model="primary",
        models=[
            ModelSpec(
                name="primary",
                model="openai/sim-agent",
                api_base=url,
                input_cost_per_1k=0.5,
                output_cost_per_1k=1.5,
                timeout_seconds=primary_timeout or timeout,
                fallbacks=["backup"] if fallbacks else [],
            ),
            ModelSpec(
                name="backup",
                model="openai/sim-agent-backup",
                api_base=url,
                input_cost_per_1k=1.0,
                output_cost_per_1k=3.0,
                timeout_seconds=timeout,
            ),
        ],
        retry=RetryPolicy(
            max_retries=max_retries, backoff_initial_seconds=0.001, backoff_max_seconds=0.01
        ),
    )


class ClientFor:
    """Calls ``complete`` on the client of the config each test passes (clients are built per
    config snapshot, as the runtime does), with a seeded jitter, on one transport."""

    def __init__(self, transport: Transport) -> None:
        self._rng = random.Random(1)
        self.transport = transport

    def of(self, config: AgentConfig, **kwargs: Any) -> LiteLLMClient:
        return LiteLLMClient.for_config(config, transport=self.transport, **kwargs)

    async def complete(self, *, config: AgentConfig, **kwargs: Any) -> LLMCompletion:
        return await self.of(config, rng=self._rng).complete(**kwargs)


@pytest.fixture(params=["auto", "litellm"], ids=["direct", "litellm"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[ClientFor]:
    yield ClientFor(request.param)
    # closes LiteLLM's sessions on this test's event loop (the next test runs on a new one)
    await close_llm_clients()


async def test_plain_answer_with_usage_and_cost(client: ClientFor, sim: Sim) -> None:
    config = make_config(sim.url)
    completion = await client.complete(config=config, model="primary", messages=HELLO, tools=[])

    assert completion.content and "hello there" in completion.content
    assert completion.tool_calls == []
    assert completion.model == completion.requested_model == "primary"
    assert not completion.fell_back
    assert completion.provider == "openai"
    assert completion.response_model == "sim-agent"
    assert completion.finish_reason == "stop"
    assert completion.duration_ms > 0
    assert completion.time_to_first_token_ms is None
    usage = completion.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.cost_usd == cost_usd(
        config.model("primary"), usage.input_tokens, usage.output_tokens
    )
    assert usage.cost_usd == pytest.approx(
        (usage.input_tokens * 0.5 + usage.output_tokens * 1.5) / 1000
    )
    assert [(a.model, a.outcome) for a in completion.attempts] == [("primary", "ok")]


async def test_tool_call_is_parsed(client: ClientFor, sim: Sim) -> None:
    completion = await client.complete(
        config=make_config(sim.url), model="primary", messages=ARITHMETIC, tools=[CALCULATOR]
    )

    assert completion.content is None
    assert completion.finish_reason == "tool_calls"
    [call] = completion.tool_calls
    assert call.name == "calculator"
    assert call.id
    assert json.loads(call.arguments) == {"expression": "12*(3+4)"}


async def test_tool_result_is_answered_in_text(client: ClientFor, sim: Sim) -> None:
    call = ToolCall(id="call_1", name="calculator", arguments='{"expression": "12*(3+4)"}')
    messages = [
        *ARITHMETIC,
        ChatMessage(role="assistant", tool_calls=[call]),
        ChatMessage(role="tool", tool_call_id="call_1", name="calculator", content="84"),
    ]
    completion = await client.complete(
        config=make_config(sim.url), model="primary", messages=messages, tools=[CALCULATOR]
    )

    assert completion.tool_calls == []
    assert completion.content is not None and "84" in completion.content


async def test_max_tokens_is_capped_by_the_model(client: ClientFor, sim: Sim) -> None:
    # the model allows 3 output tokens: asking for more must not get more
    config = make_config(sim.url)
    config = config.model_copy(
        update={"models": [config.models[0].model_copy(update={"max_tokens": 3})]}
    )
    completion = await client.complete(
        config=config, model="primary", messages=HELLO, tools=[], max_tokens=500
    )

    assert completion.finish_reason == "length"
    assert completion.usage.output_tokens <= 3


async def test_streaming_sends_deltas_and_measures_ttft(
    client: ClientFor, sim_factory: SimFactory
) -> None:
    sim = sim_factory("--ttft", "0.2", "--tokens-per-second", "100")
    config = make_config(sim.url)
    await client.complete(config=config, model="backup", messages=HELLO, tools=[])  # warm-up
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    streamed = await client.complete(
        config=config, model="primary", messages=HELLO, tools=[], on_delta=on_delta
    )
    plain = await client.complete(config=config, model="primary", messages=HELLO, tools=[])

    assert len(deltas) > 1
    assert "".join(deltas) == streamed.content == plain.content
    assert streamed.time_to_first_token_ms is not None
    assert 150 <= streamed.time_to_first_token_ms < streamed.duration_ms
    assert streamed.finish_reason == "stop"
    assert streamed.response_model == "sim-agent"
    # usage comes from the final chunk (include_usage), the same the provider reports otherwise
    assert streamed.usage == plain.usage
    assert streamed.usage.input_tokens > 0 and streamed.usage.output_tokens > 0


async def test_streamed_tool_call_is_assembled(client: ClientFor, sim: Sim) -> None:
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    completion = await client.complete(
        config=make_config(sim.url),
        model="primary",
        messages=ARITHMETIC,
        tools=[CALCULATOR],
        on_delta=on_delta,
    )

    assert deltas == []
    assert completion.content is None
    assert completion.finish_reason == "tool_calls"
    assert completion.time_to_first_token_ms is not None
    [call] = completion.tool_calls
    assert call.name == "calculator"
    assert call.id
    assert json.loads(call.arguments) == {"expression": "12*(3+4)"}


async def test_a_failing_delta_callback_propagates_unretried(client: ClientFor, sim: Sim) -> None:
    calls = 0

    async def on_delta(text: str) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError, match="went away"):
        await client.complete(
            config=make_config(sim.url),
            model="primary",
            messages=HELLO,
            tools=[],
            on_delta=on_delta,
        )
    assert calls == 1


async def test_a_stream_failing_after_output_is_neither_retried_nor_replaced(
    client: ClientFor, sim: Sim, sim_factory: SimFactory
) -> None:
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    # warm-up of the streaming path (its lazy imports would eat the short timeout below)
    await client.complete(
        config=make_config(sim.url), model="primary", messages=HELLO, tools=[], on_delta=on_delta
    )
    deltas.clear()
    # first token at once, then one every 0.5 s: the 0.3 s read timeout fires mid-answer
    slow = sim_factory("--ttft", "0.01", "--tokens-per-second", "2")
    config = make_config(slow.url, max_retries=2, timeout=0.3)

    with pytest.raises(LLMUnavailableError, match="mid-stream") as caught:
        await client.complete(
            config=config, model="primary", messages=HELLO, tools=[], on_delta=on_delta
        )

    assert deltas  # the caller saw the answer begin, so no retry or fallback may restart it
    attempts = caught.value.attempts  # type: ignore[attr-defined]
    # the SDK's read timeout is a timeout; LiteLLM reports it inside a stream as a connection
    # error
    outcome = "timeout" if client.transport == "auto" else "connection_error"
    assert [(a.model, a.outcome) for a in attempts] == [("primary", outcome)]


async def test_rate_limited_primary_falls_back(client: ClientFor, sim_factory: SimFactory) -> None:
    sim = sim_factory("--ttft", "0.005", "--fail-429", "1.0", "--fail-model", "sim-agent")
    config = make_config(sim.url, max_retries=2)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    llm = client.of(config, rng=random.Random(3), sleep=sleep)
    completion = await llm.complete(model="primary", messages=HELLO, tools=[])

    assert completion.model == "backup"
    assert completion.requested_model == "primary"
    assert completion.fell_back
    assert completion.response_model == "sim-agent-backup"
    assert [(a.model, a.outcome) for a in completion.attempts] == [
        ("primary", "rate_limited"),
        ("primary", "rate_limited"),
        ("primary", "rate_limited"),
        ("backup", "ok"),
    ]
    assert all(a.error and "RateLimitError" in a.error for a in completion.attempts[:3])
    assert completion.duration_ms == completion.attempts[-1].duration_ms
    # priced at the model that answered
    usage = completion.usage
    assert usage.cost_usd == cost_usd(
        config.model("backup"), usage.input_tokens, usage.output_tokens
    )
    # backoff between retries of one model, none before the fallback
    assert len(sleeps) == 2 and all(0 <= s <= 0.01 for s in sleeps)


async def test_server_errors_everywhere_exhaust_the_chain(
    client: ClientFor, sim_factory: SimFactory
) -> None:
    sim = sim_factory("--ttft", "0.005", "--fail-500", "1.0")

    with pytest.raises(LLMUnavailableError) as caught:
        await client.complete(
            config=make_config(sim.url, max_retries=2), model="primary", messages=HELLO, tools=[]
        )

    attempts = caught.value.attempts  # type: ignore[attr-defined]
    assert [(a.model, a.outcome) for a in attempts] == [
        ("primary", "server_error"),
    ] * 3 + [("backup", "server_error")] * 3
    assert "primary→server_error x3" in caught.value.message
    assert "backup→server_error x3" in caught.value.message


async def test_bad_request_is_raised_at_once(client: ClientFor, sim: Sim) -> None:
    # the simulator rejects a conversation without messages (400)
    with pytest.raises(LLMBadRequestError) as caught:
        await client.complete(config=make_config(sim.url), model="primary", messages=[], tools=[])

    attempts = caught.value.attempts  # type: ignore[attr-defined]
    assert [(a.model, a.outcome) for a in attempts] == [("primary", "bad_request")]


async def test_unknown_model_is_a_bad_request(client: ClientFor, sim: Sim) -> None:
    with pytest.raises(LLMBadRequestError, match="not configured"):
        await client.complete(config=make_config(sim.url), model="nope", messages=HELLO, tools=[])


async def test_hanging_primary_times_out_and_falls_back(
    client: ClientFor, sim_factory: SimFactory
) -> None:
    sim = sim_factory(
        "--ttft", "0.005", "--hang", "1.0", "--hang-seconds", "30", "--fail-model", "sim-agent"
    )
    config = make_config(sim.url, max_retries=1, primary_timeout=0.5)
    await client.complete(config=config, model="backup", messages=HELLO, tools=[])  # warm-up

    started = time.perf_counter()
    completion = await client.complete(config=config, model="primary", messages=HELLO, tools=[])
    elapsed = time.perf_counter() - started

    assert completion.model == "backup"
    assert [(a.model, a.outcome) for a in completion.attempts] == [
        ("primary", "timeout"),
        ("primary", "timeout"),
        ("backup", "ok"),
    ]
    assert elapsed < 2.5, f"two 0.5 s timeouts and a fallback took {elapsed:.2f}s"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_hang_without_fallback_is_bounded(
    client: ClientFor, sim_factory: SimFactory, stream: bool
) -> None:
    sim = sim_factory("--ttft", "0.005", "--hang", "1.0", "--hang-seconds", "30")
    config = make_config(sim.url, max_retries=0, timeout=0.5, fallbacks=False)
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    started = time.perf_counter()
    with pytest.raises(LLMUnavailableError, match="primary→timeout") as caught:
        await client.complete(
            config=config,
            model="primary",
            messages=HELLO,
            tools=[],
            on_delta=on_delta if stream else None,
        )
    elapsed = time.perf_counter() - started

    assert [a.outcome for a in caught.value.attempts] == ["timeout"]  # type: ignore[attr-defined]
    assert deltas == []
    # 0.5 s timeout (+1 s safety margin at worst), plus a cold first call
    assert elapsed < 3.5, f"a 0.5 s timeout took {elapsed:.2f}s"


async def test_concurrent_calls_are_not_capped_by_the_connection_pool(
    client: ClientFor, sim_factory: SimFactory
) -> None:
    calls = 200
    sim = sim_factory("--ttft", "1.0")
    config = make_config(sim.url, max_retries=0, fallbacks=False)
    await client.complete(config=config, model="primary", messages=HELLO, tools=[])  # warm-up

    cpu_started = time.process_time()
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            client.complete(
                config=config,
                model="primary",
                messages=[ChatMessage(role="user", content=f"request {i}")],
                tools=[],
            )
            for i in range(calls)
        )
    )
    elapsed = time.perf_counter() - started
    cpu_ms = (time.process_time() - cpu_started) * 1000 / calls

    print(f"\n{calls} concurrent 1-s calls: {elapsed:.2f}s wall, {cpu_ms:.2f} ms CPU per call")
    assert all(r.model == "primary" and r.content for r in results)
    # a pool capped at 50 per host would need 4 waves (>= 4 s); generous for a loaded CI box
    assert elapsed < 10


async def test_litellm_sessions_get_the_raised_pool_limits() -> None:
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    from agent_service.llm.via_litellm import POOL_LIMIT, POOL_LIMIT_PER_HOST

    transport = AsyncHTTPHandler.create_aiohttp_transport()
    session = transport.get_valid_client_session()
    try:
        assert session.connector is not None
        assert session.connector.limit >= POOL_LIMIT
        assert session.connector.limit_per_host >= POOL_LIMIT_PER_HOST >= 500
    finally:
        await session.close()


async def test_client_works_again_after_close(client: ClientFor, sim: Sim) -> None:
    config = make_config(sim.url)
    await client.complete(config=config, model="primary", messages=HELLO, tools=[])
    await close_llm_clients()
    completion = await client.complete(config=config, model="primary", messages=HELLO, tools=[])
    assert completion.content


async def test_the_model_api_key_is_sent_and_a_wrong_one_is_not_retried(
    client: ClientFor, sim_factory: SimFactory, tmp_path: Path
) -> None:
    keyed = sim_factory("--ttft", "0.005", "--api-key", "sk-sim-right")
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text("sk-sim-right\n")
    wrong.write_text("sk-sim-wrong\n")
    config = make_config(keyed.url, fallbacks=False)
    models = [m.model_copy(update={"api_key": SecretRef(file=str(right))}) for m in config.models]
    keyed_config = config.model_copy(update={"models": models})
    completion = await client.complete(
        config=keyed_config, model="primary", messages=HELLO, tools=[]
    )
    assert completion.content
    models = [m.model_copy(update={"api_key": SecretRef(file=str(wrong))}) for m in config.models]
    with pytest.raises(RequestRejectedError) as raised:
        await client.complete(
            config=config.model_copy(update={"models": models}),
            model="primary",
            messages=HELLO,
            tools=[],
        )
    # a refused key is not tried again
    assert [(a.model, a.outcome) for a in raised.value.attempts] == [("primary", "bad_request")]


async def test_structured_output_is_passed_through(client: ClientFor, sim: Sim) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            },
        },
    }
    completion = await client.complete(
        config=make_config(sim.url),
        model="primary",
        messages=HELLO,
        tools=[],
        response_format=schema,
    )
    assert completion.content is not None
    assert set(json.loads(completion.content)) == {"answer"}


async def test_embeddings_are_the_same_on_both_transports(sim: Sim) -> None:
    spec = ModelSpec(
        name="emb", model="openai/sim-embedding", api_base=sim.url, input_cost_per_1k=0.1
    )
    texts = ["how do workers scale?", "webhooks are signed", "backups every night"]
    results = []
    for transport in ("auto", "litellm"):
        embedder = LiteLLMEmbedder(spec, RetryPolicy(max_retries=0), transport=transport)
        results.append(await embedder.embed(texts))
    await close_llm_clients()
    direct, via_litellm = results
    assert direct.vectors == via_litellm.vectors
    assert len(direct.vectors) == 3 and len(direct.vectors[0]) > 8
    assert direct.usage == via_litellm.usage and direct.usage.input_tokens > 0


def test_a_process_on_openai_compatible_models_never_imports_litellm(
    sim: Sim, tmp_path: Path
) -> None:
    # A whole agent run (2 LLM calls, a tool) and an embedding, in a fresh interpreter.
    code = f"""
import asyncio, sys
from agent_service.agentconfig.model import AgentConfig, ModelSpec
from agent_service.domain.messages import ChatMessage
from agent_service.llm import LiteLLMClient, close_llm_clients
from agent_service.llm.embeddings import LiteLLMEmbedder

async def main():
    model = ModelSpec(name="sim", model="openai/sim-agent", api_base={sim.url!r})
    config = AgentConfig(default_model="sim", models=[model])
    llm = LiteLLMClient.for_config(config)
    done = await llm.complete(model="sim", messages=[ChatMessage(role="user", content="hi")],
                              tools=[])
    embedder = LiteLLMEmbedder(ModelSpec(name="e", model="openai/sim-embedding",
                                         api_base={sim.url!r}))
    vectors = await embedder.embed(["a text"])
    await close_llm_clients()
    print(bool(done.content), len(vectors.vectors), "litellm" in sys.modules)

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=base_env(),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1", "False"], result.stdout + result.stderr


def _litellm_exceptions() -> list[tuple[BaseException, str]]:
    from litellm import exceptions as ex

    p, m = "openai", "sim-agent"
    return [
        (ex.RateLimitError(message="x", llm_provider=p, model=m), "rate_limited"),
        (ex.InternalServerError(message="x", llm_provider=p, model=m), "server_error"),
        (ex.ServiceUnavailableError(message="x", llm_provider=p, model=m), "server_error"),
        (ex.BadGatewayError(message="x", llm_provider=p, model=m), "server_error"),
        (ex.APIError(status_code=503, message="x", llm_provider=p, model=m), "server_error"),
        (ex.APIError(status_code=429, message="x", llm_provider=p, model=m), "rate_limited"),
        (ex.Timeout(message="x", llm_provider=p, model=m), "timeout"),
        (ex.APIConnectionError(message="x", llm_provider=p, model=m), "connection_error"),
        (ex.BadRequestError(message="x", llm_provider=p, model=m), "bad_request"),
        (ex.AuthenticationError(message="x", llm_provider=p, model=m), "bad_request"),
        (ex.NotFoundError(message="x", llm_provider=p, model=m), "bad_request"),
        (ex.ContextWindowExceededError(message="x", llm_provider=p, model=m), "bad_request"),
        (ex.ContentPolicyViolationError(message="x", llm_provider=p, model=m), "bad_request"),
    ]


def test_classify_knows_litellm_exceptions() -> None:
    wrong = [
        (type(exc).__name__, classify(exc), outcome)
        for exc, outcome in _litellm_exceptions()
        if classify(exc) != outcome
    ]
    assert wrong == []
