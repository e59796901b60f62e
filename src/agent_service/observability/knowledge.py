"""``KnowledgeMetricsObserver``: the knowledge bases' ``KnowledgeObserver`` port on ``Metrics``.

Built by the runtime for the process's knowledge bases. Retrieval and chunk figures go to the
knowledge metrics (``agent_retrieval_duration_seconds``, ``agent_retrieval_hits``,
``agent_knowledge_chunks``); embedding calls go to the existing LLM metrics under the embedding
model's configured name (requests by outcome, duration, input tokens, cost), so an embedding
model's spend shows next to the chat models' on the same dashboards.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_service.domain.embeddings import Embeddings
from agent_service.domain.messages import LLMAttempt
from agent_service.observability.metrics import Metrics


class KnowledgeMetricsObserver:
    """Records what knowledge bases do on the process's ``Metrics``."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def retrieval_finished(self, kb: str, seconds: float, hits: int) -> None:
        self._m.retrieval_finished(kb, seconds, hits)

    def knowledge_chunks_counted(self, kb: str, chunks: int) -> None:
        self._m.knowledge_chunks_counted(kb, chunks)

    def embedded(self, embeddings: Embeddings) -> None:
        m = self._m
        self.embedding_failed(embeddings.attempts)
        model, provider = embeddings.model, embeddings.provider
        m.llm_duration.labels(model, provider).observe(embeddings.duration_ms / 1000)
        m.llm_tokens.labels(model, provider, "input").inc(embeddings.usage.input_tokens)
        m.llm_cost.labels(model, provider).inc(embeddings.usage.cost_usd)

    def embedding_failed(self, attempts: Sequence[LLMAttempt]) -> None:
        for attempt in attempts:
            self._m.llm_requests.labels(attempt.model, attempt.provider, attempt.outcome).inc()
