"""The simulator's embedding model: deterministic hashed word and character n-gram vectors.

``server`` calls ``embed`` for ``POST /v1/embeddings``. The vector of a text is a bag of
lexical features folded into a fixed number of dimensions by a hash (the "hashing trick"),
then L2-normalised, so the cosine of two vectors is a real lexical similarity: retrieval in
tests and in the local stack finds the passages that share words with the question, as a
small real embedding model would on such questions. The rule, step by step (docs/simulator.md
has the same with an example):

1. The text is NFKC-normalised and case-folded. Words are runs of letters and digits; each CJK
   character is a word of its own. Words in ``STOPWORDS`` are not features.
2. Features, each with a weight: every word (``w:<word>``, weight 1), every pair of consecutive
   non-stop words (``b:<word> <word>``, ``BIGRAM_WEIGHT``), and the character 3- to 5-grams of
   each word wrapped in ``<`` and ``>`` (``c:<gram>``), each weighing ``CHAR_NGRAM_WEIGHT``
   divided by the square root of the word's gram count (so a word's grams together weigh as
   much as the word itself, whatever its length): "workers" and "worker" come close.
3. A feature occurring ``n`` times counts ``1 + ln(n)`` times its weight (sublinear frequency,
   so a word repeated ten times does not drown the rest).
4. Each feature's UTF-8 bytes are hashed with BLAKE2b (8-byte digest, read little-endian as an
   unsigned 64-bit ``h``): it adds its weight to dimension ``h mod D`` with the sign of the
   top bit of ``h`` (+ when 0), which keeps collisions from piling up in one direction.
5. The vector is divided by its L2 norm. A text with no feature but stop words uses those; a
   text with no word at all (punctuation only) hashes the whole text as one feature.

Cost: about 0.8 ms of CPU per 300-token chunk once the words' features are cached (2.8 ms
cold), so one simulator process embeds about a thousand chunks a second.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

DEFAULT_DIMENSIONS = 512
"""Dimensions of a vector unless the request or ``--embedding-dimensions`` says otherwise."""
MAX_DIMENSIONS = 4096

BIGRAM_WEIGHT = 0.5
CHAR_NGRAM_WEIGHT = 1.0
CHAR_NGRAM_SIZES = (3, 4, 5)

# Function words of English: they carry no topic. Fixed, so vectors never change between runs.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t""".split()  # noqa: SIM905 - a word list reads better as text
)

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")

Contribution = tuple[tuple[int, float], ...]
"""(dimension, signed weight) pairs."""


def _hash(feature: str) -> int:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _slot(feature: str, dimensions: int, weight: float) -> tuple[int, float]:
    h = _hash(feature)
    return h % dimensions, -weight if h >> 63 else weight


@lru_cache(maxsize=200_000)
def _word_contribution(word: str, dimensions: int) -> Contribution:
    """What one occurrence of ``word`` adds: the word itself and its character n-grams."""
    slots = [_slot("w:" + word, dimensions, 1.0)]
    wrapped = f"<{word}>"
    grams = [
        wrapped[i : i + n]
        for n in CHAR_NGRAM_SIZES
        if len(wrapped) >= n
        for i in range(len(wrapped) - n + 1)
    ]
    if grams:
        share = CHAR_NGRAM_WEIGHT / math.sqrt(len(grams))
        slots.extend(_slot("c:" + gram, dimensions, share) for gram in grams)
    return tuple(slots)


def words(text: str) -> list[str]:
    """The words of ``text`` after normalisation (stop words included)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def _accumulate(vector: list[float], slots: Iterable[tuple[int, float]], factor: float) -> None:
    for index, weight in slots:
        vector[index] += factor * weight


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit vector of ``text`` in ``dimensions`` dimensions (see the module docstring)."""
    every = words(text)
    content = [w for w in every if w not in STOPWORDS] or every
    vector = [0.0] * dimensions
    if not content:
        _accumulate(vector, [_slot("t:" + text, dimensions, 1.0)], 1.0)
        return vector
    for word, count in Counter(content).items():
        _accumulate(vector, _word_contribution(word, dimensions), 1.0 + math.log(count))
    bigrams = Counter(f"{a} {b}" for a, b in itertools.pairwise(content))
    for bigram, count in bigrams.items():
        weight = BIGRAM_WEIGHT * (1.0 + math.log(count))
        _accumulate(vector, [_slot("b:" + bigram, dimensions, weight)], 1.0)
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:  # every feature cancelled out by sign: vanishingly rare, but never 0/0
        _accumulate(vector, [_slot("t:" + text, dimensions, 1.0)], 1.0)
        return vector
    return [x / norm for x in vector]
