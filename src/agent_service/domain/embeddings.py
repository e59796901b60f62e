"""What one embedding call returned: vectors in input order, with usage and attempts.

Made by the ``llm`` adapter (``llm.embeddings.LiteLLMEmbedder``), consumed by ``knowledge``
(ingestion embeds chunks, search embeds the question) through its ``Embedder`` port. A plain
dataclass, not a pydantic model: a batch of vectors is hundreds of thousands of floats, which
must not be validated one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_service.domain.messages import LLMAttempt, TokenUsage


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Vectors of the inputs, in order; ``usage`` has input tokens and their cost only.

    ``model`` is the configured model name, ``provider`` the LiteLLM provider; ``attempts``
    lists every try of every batch (for the LLM metrics), ``duration_ms`` the wall time.
    """

    vectors: list[list[float]]
    model: str
    provider: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    duration_ms: float = 0.0
    attempts: list[LLMAttempt] = field(default_factory=list)

    @property
    def dimensions(self) -> int:
        """Length of the vectors (0 when there are none)."""
        return len(self.vectors[0]) if self.vectors else 0
