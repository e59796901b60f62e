"""Pure parts of the embeddings adapter (llm.vectors): batch planning and vector decoding."""

from __future__ import annotations

import base64
import struct

import pytest

from agent_service.llm.vectors import decode_vector, plan_batches


def test_batches_respect_count_and_tokens_and_keep_order() -> None:
    texts = [f"t{i}" for i in range(10)]
    assert plan_batches(texts, 4, 1000) == [(0, texts[:4]), (4, texts[4:8]), (8, texts[8:])]
    words = ["a b c", "d e", "f g h i", "j"]  # 3, 2, 4, 1 tokens
    assert plan_batches(words, 100, 5) == [(0, ["a b c", "d e"]), (2, ["f g h i", "j"])]
    # a single text above the token cap still goes, alone
    assert plan_batches(["x " * 10, "y"], 100, 5) == [(0, ["x " * 10]), (1, ["y"])]
    assert plan_batches([], 4, 10) == []


def test_vectors_decode_from_floats_and_base64() -> None:
    assert decode_vector([1, 0.5, -2]) == [1.0, 0.5, -2.0]
    raw = base64.b64encode(struct.pack("<3f", 0.25, -1.0, 3.5)).decode()
    assert decode_vector(raw) == [0.25, -1.0, 3.5]
    for bad in [base64.b64encode(b"12345").decode(), "not base64!", None, ["x"]]:
        with pytest.raises(ValueError, match=r"."):
            decode_vector(bad)
