"""Pure helpers of ``llm.embeddings``: batching texts and decoding vectors (no litellm import).

``LiteLLMEmbedder`` plans its requests with ``plan_batches`` and reads each returned vector with
``decode_vector``; kept apart so their unit tests do not pay LiteLLM's import (~3 s).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

from agent_service.domain.tokens import count_tokens


def plan_batches(
    texts: Sequence[str], batch_size: int, max_batch_tokens: int
) -> list[tuple[int, list[str]]]:
    """``texts`` cut into consecutive batches, each with its start index: at most
    ``batch_size`` texts and, unless a single text is larger, ``max_batch_tokens`` tokens."""
    batches: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = tokens = 0
    for index, text in enumerate(texts):
        size = count_tokens(text)
        if current and (len(current) >= batch_size or tokens + size > max_batch_tokens):
            batches.append((start, current))
            current, start, tokens = [], index, 0
        current.append(text)
        tokens += size
    if current:
        batches.append((start, current))
    return batches


def decode_vector(raw: Any) -> list[float]:
    """One ``embedding`` value of a response: a list of numbers, or base64 little-endian
    float32 bytes (OpenAI's ``encoding_format: base64``). Raises ``ValueError`` otherwise."""
    if isinstance(raw, str):
        data = base64.b64decode(raw, validate=True)
        if len(data) % 4:
            raise ValueError("a base64 embedding is not a whole number of float32 values")
        return list(struct.unpack(f"<{len(data) // 4}f", data))
    if isinstance(raw, list) and all(isinstance(x, int | float) for x in raw):
        return [float(x) for x in raw]
    raise ValueError(f"an embedding is neither a list of numbers nor base64 ({type(raw).__name__})")
