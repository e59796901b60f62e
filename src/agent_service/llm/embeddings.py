"""``LiteLLMEmbedder``: vectors of texts from one configured model, through ``litellm.aembedding``
or, for an OpenAI-compatible server (``openai/<name>`` with an ``apiBase``), the ``openai`` SDK
directly (``direct``: the same rule and setting as chat models).

Built once per process for each knowledge base's embedding model and used by ingestion (many
chunks) and search (one question) through ``knowledge``'s ``Embedder`` port. Texts go out in
batches of at most ``batch_size`` texts and ``max_batch_tokens`` tokens, ``concurrency``
batches at a time, and come back in input order. Each batch gets ``1 + retry.max_retries``
attempts with the chat client's error classification and backoff (``retry``); LiteLLM's own
retries are off. There is no fallback model: two models' vectors live in different spaces, so a
knowledge base is embedded and searched by one model. Usage is the provider's input tokens
(estimated with ``domain.tokens`` when it reports none), priced at the model's configured
``inputCostPer1K``.

For the ``openai`` provider (OpenAI and every OpenAI-compatible server, the simulator
included) vectors travel as base64: LiteLLM otherwise asks for JSON floats, which the OpenAI SDK
rebuilds one by one at ~5 µs each (256 texts of 512 dimensions: 550 ms of client CPU a call,
against 63 ms with base64, measured on the simulator).
"""

from __future__ import annotations

import asyncio
import random
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace

from agent_service.agentconfig.model import ModelSpec, RetryPolicy
from agent_service.domain.embeddings import Embeddings
from agent_service.domain.errors import AgentError
from agent_service.domain.messages import LLMAttempt, TokenUsage
from agent_service.domain.tokens import count_tokens
from agent_service.llm import direct
from agent_service.llm.client import (
    DEADLINE_MARGIN_SECONDS,
    ChainExhaustedError,
    RequestRejectedError,
    Transport,
    attempt_summary,
    failed_attempt,
    litellm_transport,
    provider_api_key,
    retry_pause,
)
from agent_service.llm.cost import cost_usd
from agent_service.llm.retry import classify, is_retryable
from agent_service.llm.vectors import decode_vector, plan_batches
from agent_service.settings import DEFAULT_SECRETS_DIR

_tracer = trace.get_tracer("agent_service.llm")

BASE64_PROVIDERS = frozenset({"openai"})
"""Providers asked for base64 vectors (others may not know ``encoding_format``)."""

# LiteLLM copies the SDK's response into a model typed ``list[float]``: the base64 string we
# asked for makes pydantic warn on every call. The value is exactly what was requested.
warnings.filterwarnings(
    "ignore",
    message=r"(?s)Pydantic serializer warnings.*field_name='embedding'",
    category=UserWarning,
)

ProgressCallback = Callable[[int], None]
"""Called with the number of texts embedded so far, after each batch."""


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _vectors(response: Any, expected: int) -> list[list[float]]:
    """The vectors of a LiteLLM ``EmbeddingResponse`` in input order, checked for shape."""
    items = sorted(response.data or [], key=lambda item: _field(item, "index") or 0)
    vectors = [decode_vector(_field(item, "embedding")) for item in items]
    if len(vectors) != expected:
        raise ValueError(f"the provider returned {len(vectors)} vectors for {expected} texts")
    if vectors and (not vectors[0] or any(len(v) != len(vectors[0]) for v in vectors)):
        raise ValueError("the provider returned empty vectors or vectors of different lengths")
    return vectors


class LiteLLMEmbedder:
    """The ``knowledge.Embedder`` port on LiteLLM, for configured model ``spec``.

    ``rng`` and ``sleep`` are injectable for deterministic tests; ``secrets_dir`` is where
    Secrets named by ``secretKeyRef`` are mounted.
    """

    def __init__(
        self,
        spec: ModelSpec,
        retry: RetryPolicy | None = None,
        *,
        batch_size: int = 128,
        max_batch_tokens: int = 100_000,
        concurrency: int = 4,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        secrets_dir: Path = DEFAULT_SECRETS_DIR,
        transport: Transport = "auto",
    ) -> None:
        if batch_size < 1 or max_batch_tokens < 1 or concurrency < 1:
            raise ValueError("batch_size, max_batch_tokens and concurrency must be positive")
        self._spec = spec
        self._retry = retry if retry is not None else RetryPolicy()
        self._batch_size = batch_size
        self._max_batch_tokens = max_batch_tokens
        self._concurrency = concurrency
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter only
        self._sleep = sleep
        self._secrets_dir = secrets_dir
        self._direct = transport == "auto" and direct.is_direct(spec)

    @property
    def model(self) -> str:
        """The configured model name (what knowledge bases record as their embedding model)."""
        return self._spec.name

    async def embed(
        self, texts: Sequence[str], *, on_progress: ProgressCallback | None = None
    ) -> Embeddings:
        """The vectors of ``texts`` in order, with usage and every attempt made.

        Raises ``RequestRejectedError`` (an ``LLMBadRequestError``) when the provider rejects a
        batch, ``ChainExhaustedError`` (an ``LLMUnavailableError``) when a batch fails every
        attempt; the other batches in flight are cancelled. Both carry all attempts so far.
        """
        with _tracer.start_as_current_span(
            f"embeddings {self._spec.name}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "embeddings",
                "gen_ai.request.model": self._spec.name,
                "gen_ai.provider.name": self._spec.provider,
                "agent.embeddings.inputs": len(texts),
            },
        ) as span:
            try:
                embedded = await self._embed(texts, on_progress)
            except AgentError as exc:
                span.set_status(trace.Status(trace.StatusCode.ERROR, exc.message))
                span.set_attribute("error.type", exc.type)
                raise
            span.set_attribute("gen_ai.usage.input_tokens", embedded.usage.input_tokens)
            return embedded

    async def _embed(
        self, texts: Sequence[str], on_progress: ProgressCallback | None
    ) -> Embeddings:
        started = time.perf_counter()
        vectors: list[list[float]] = [[] for _ in texts]
        attempts: list[LLMAttempt] = []
        tokens = done = 0
        gate = asyncio.Semaphore(self._concurrency)

        async def run(start: int, batch: list[str]) -> None:
            nonlocal tokens, done
            async with gate:
                got, used = await self._embed_batch(batch, attempts)
            vectors[start : start + len(batch)] = got
            tokens += used
            done += len(batch)
            if on_progress is not None:
                on_progress(done)

        tasks = [
            asyncio.create_task(run(start, batch))
            for start, batch in plan_batches(texts, self._batch_size, self._max_batch_tokens)
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return Embeddings(
            vectors=vectors,
            model=self._spec.name,
            provider=self._spec.provider,
            usage=TokenUsage(input_tokens=tokens, cost_usd=cost_usd(self._spec, tokens, 0)),
            duration_ms=(time.perf_counter() - started) * 1000.0,
            attempts=attempts,
        )

    async def _send(self, texts: list[str]) -> Any:
        """One embeddings request on the model's transport (the same response shape on both)."""
        spec = self._spec
        api_key = provider_api_key(spec, self._secrets_dir)
        if self._direct:
            assert api_key is not None  # a keyless apiBase gets NO_KEY
            return await direct.embed(spec, api_key, texts)
        extra = {"encoding_format": "base64"} if spec.provider in BASE64_PROVIDERS else {}
        return await litellm_transport().aembedding(
            model=spec.model,
            input=texts,
            api_base=spec.api_base,
            api_key=api_key,
            timeout=spec.timeout_seconds,
            num_retries=0,
            max_retries=0,
            **extra,
        )

    async def _embed_batch(
        self, texts: list[str], attempts: list[LLMAttempt]
    ) -> tuple[list[list[float]], int]:
        spec = self._spec
        for attempt in range(1 + self._retry.max_retries):
            await retry_pause(attempt, self._retry, self._rng, self._sleep)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(spec.timeout_seconds + DEADLINE_MARGIN_SECONDS):
                    response = await self._send(texts)
                vectors = _vectors(response, len(texts))
            except Exception as exc:
                outcome = classify(exc)
                attempts.append(failed_attempt(spec, outcome, started, exc))
                if outcome == "bad_request":
                    raise RequestRejectedError(
                        f"embedding model {spec.name!r} rejected the request "
                        f"({type(exc).__name__})",
                        list(attempts),
                    ) from exc
                if is_retryable(outcome):
                    continue
                break
            attempts.append(
                LLMAttempt(
                    model=spec.name,
                    provider=spec.provider,
                    outcome="ok",
                    duration_ms=(time.perf_counter() - started) * 1000.0,
                )
            )
            reported = getattr(getattr(response, "usage", None), "prompt_tokens", None)
            used = reported if isinstance(reported, int) else sum(map(count_tokens, texts))
            return vectors, used
        raise ChainExhaustedError(
            f"embedding model {spec.name!r} did not answer: {attempt_summary(attempts)}",
            list(attempts),
        )
