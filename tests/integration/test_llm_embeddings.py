"""``LiteLLMEmbedder`` against the real simulator process over HTTP, on both transports: the
``openai`` SDK directly (the default for OpenAI-compatible servers) and LiteLLM."""

from __future__ import annotations

import random

import pytest

from agent_service.agentconfig.model import ModelSpec, RetryPolicy
from agent_service.domain.errors import LLMBadRequestError, LLMUnavailableError
from agent_service.domain.tokens import count_tokens
from agent_service.llm.client import Transport
from agent_service.llm.embeddings import LiteLLMEmbedder
from agent_service.sim.embeddings import embed
from tests.conftest import Sim, SimFactory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Item .* is using the .ReadOnly. qualifier:UserWarning"),
]


@pytest.fixture(params=["auto", "litellm"], ids=["direct", "litellm"])
def transport(request: pytest.FixtureRequest) -> Transport:
    return request.param  # type: ignore[no-any-return]


FAST_RETRY = RetryPolicy(max_retries=3, backoff_initial_seconds=0.001, backoff_max_seconds=0.01)


def spec(url: str, **extra: object) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": "emb",
            "model": "openai/sim-embedding",
            "api_base": url,
            "input_cost_per_1k": 0.02,
            "timeout_seconds": 10,
            **extra,
        }
    )


async def test_batches_come_back_in_order_with_usage_cost_and_progress(
    transport: Transport, sim: Sim
) -> None:
    texts = [f"chunk {i} about scaling workers and queues" for i in range(300)]
    seen: list[int] = []
    embedder = LiteLLMEmbedder(spec(sim.url), batch_size=32, concurrency=3, transport=transport)
    result = await embedder.embed(texts, on_progress=seen.append)
    assert len(result.vectors) == 300
    assert result.dimensions == 512
    for i in (0, 31, 32, 299):  # base64 float32 on the wire: equal to float32 precision
        assert result.vectors[i] == pytest.approx(embed(texts[i]), abs=1e-6)
    tokens = sum(count_tokens(t) for t in texts)
    assert result.usage.input_tokens == tokens
    assert result.usage.output_tokens == 0
    assert result.usage.cost_usd == pytest.approx(tokens * 0.02 / 1000)
    assert [a.outcome for a in result.attempts] == ["ok"] * 10  # ceil(300 / 32)
    assert result.model == "emb" and result.provider == "openai"
    assert sorted(seen) == seen and seen[-1] == 300 and len(seen) == 10
    assert (await embedder.embed([])).vectors == []


async def test_transient_failures_are_retried(
    transport: Transport, sim_factory: SimFactory
) -> None:
    flaky = sim_factory("--ttft", "0", "--fail-500", "0.5", "--seed", "3")
    embedder = LiteLLMEmbedder(
        spec(flaky.url),
        FAST_RETRY,
        batch_size=8,
        concurrency=1,
        rng=random.Random(1),
        transport=transport,
    )
    result = await embedder.embed([f"text {i}" for i in range(64)])
    assert len(result.vectors) == 64
    outcomes = [a.outcome for a in result.attempts]
    assert outcomes.count("ok") == 8
    assert "server_error" in outcomes


async def test_exhausted_retries_and_rejections_raise_typed_errors(
    transport: Transport, sim_factory: SimFactory, sim: Sim
) -> None:
    broken = sim_factory("--ttft", "0", "--fail-500", "1.0")
    embedder = LiteLLMEmbedder(
        spec(broken.url), FAST_RETRY, rng=random.Random(1), transport=transport
    )
    with pytest.raises(LLMUnavailableError, match="did not answer") as unavailable:
        await embedder.embed(["a", "b"])
    assert [a.outcome for a in unavailable.value.attempts] == ["server_error"] * 4  # type: ignore[attr-defined]

    # an empty input is a 400 from the provider: not retried
    with pytest.raises(LLMBadRequestError, match="rejected") as rejected:
        await LiteLLMEmbedder(spec(sim.url), FAST_RETRY, transport=transport).embed(["fine", ""])
    assert [a.outcome for a in rejected.value.attempts] == ["bad_request"]  # type: ignore[attr-defined]


async def test_a_silent_server_is_cut_by_the_model_timeout(
    transport: Transport, sim_factory: SimFactory
) -> None:
    hanging = sim_factory("--ttft", "0", "--hang", "1.0", "--hang-seconds", "30")
    embedder = LiteLLMEmbedder(
        spec(hanging.url, timeout_seconds=0.5), RetryPolicy(max_retries=0), transport=transport
    )
    with pytest.raises(LLMUnavailableError) as caught:
        await embedder.embed(["x"])
    assert [a.outcome for a in caught.value.attempts] == ["timeout"]  # type: ignore[attr-defined]
