"""The simulator's embedding model and its request parsing: the documented rule, table-driven."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from typing import Any

import pytest

from agent_service.sim.embeddings import DEFAULT_DIMENSIONS, embed, words
from agent_service.sim.server import (
    BadRequestError,
    EmbeddingRequest,
    embedding_body,
    parse_embedding_request,
)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_unit_length_deterministic_and_sized() -> None:
    for text in ["how do I scale the workers?", "the", "!!!", "你好世界", "x" * 5000]:
        vector = embed(text)
        assert len(vector) == DEFAULT_DIMENSIONS
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-9)
        assert embed(text) == vector
    assert len(embed("scale workers", 64)) == 64


def test_the_documented_hash_rule_fixes_every_component() -> None:
    # One word, no stop word, no bigram: "w:keda" with weight 1 and the 3..5-grams of "<keda>"
    # at 1/sqrt(their count) each, hashed with 8-byte BLAKE2b read little-endian; then
    # L2-normalised.
    def slot(feature: str) -> tuple[int, int]:
        h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        return h % 32, -1 if h >> 63 else 1

    expected = [0.0] * 32
    index, sign = slot("w:keda")
    expected[index] += sign
    grams = [g for n in (3, 4, 5) for g in ("<keda>"[i : i + n] for i in range(7 - n))]
    for gram in grams:
        index, sign = slot("c:" + gram)
        expected[index] += sign / math.sqrt(len(grams))
    norm = math.sqrt(sum(x * x for x in expected))
    assert embed("KEDA", 32) == pytest.approx([x / norm for x in expected])


def test_related_texts_are_closer_than_unrelated_ones() -> None:
    question = embed("how do I scale the workers?")
    related = embed("Scaling workers: KEDA adds worker pods when the queue grows.")
    unrelated = embed("The webhook signature is an HMAC of the body.")
    assert _cos(question, related) > 0.2 > _cos(question, unrelated)
    # character n-grams bring inflections together
    assert _cos(embed("worker"), embed("workers")) > 0.25 > _cos(embed("worker"), embed("queue"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("ＫＥＤＡ scales", ["keda", "scales"]),  # NFKC: full-width letters
        ("扩展工作者", ["扩", "展", "工", "作", "者"]),
        ("snake_case and x2", ["snake", "case", "and", "x2"]),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_stop_words_alone_still_give_a_vector() -> None:
    assert _cos(embed("the and of"), embed("the and of")) == pytest.approx(1.0)
    assert _cos(embed("the and of"), embed("scale workers")) < 0.5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({}, "'input'"),
        ({"input": []}, "'input'"),
        ({"input": [1, 2, 3]}, "Token arrays"),
        ({"input": [[1, 2]]}, "Token arrays"),
        ({"input": ["ok", ""]}, "'input[1]' must not be empty"),
        ({"input": ["a"] * 2049}, "at most 2048"),
        ({"input": "word " * 8193}, "maximum context length is 8192"),
        ({"input": "x", "dimensions": 0}, "'dimensions'"),
        ({"input": "x", "dimensions": True}, "'dimensions'"),
        ({"input": "x", "encoding_format": "hex"}, "'encoding_format'"),
    ],
)
def test_bad_embedding_requests(body: Any, message: str) -> None:
    with pytest.raises(BadRequestError, match=re.escape(message)):
        parse_embedding_request(body)


def test_base64_body_is_little_endian_float32_of_the_same_vector() -> None:
    request = parse_embedding_request(
        {"input": ["scale workers", "queue"], "model": "m", "encoding_format": "base64"}
    )
    assert request == EmbeddingRequest("m", ["scale workers", "queue"], None, base64=True)
    body = embedding_body(request, 16)
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert list(struct.unpack("<16f", raw)) == pytest.approx(embed("scale workers", 16), abs=1e-6)
    assert [item["index"] for item in body["data"]] == [0, 1]
