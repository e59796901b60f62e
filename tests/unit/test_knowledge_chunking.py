"""The chunker: headings first, then paragraphs, then sentences, sizes and overlap in tokens."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from agent_service.domain.tokens import count_tokens
from agent_service.knowledge.chunking import chunk_text, heading_line

ROOT = Path(__file__).resolve().parents[2]


def _sentences(prefix: str, n: int, words: int = 9) -> str:
    return " ".join(
        f"{prefix.capitalize()} sentence {i} "
        + " ".join(f"{prefix}{i}w{j}" for j in range(words))
        + "."
        for i in range(n)
    )


def test_each_heading_starts_a_chunk_with_its_path() -> None:
    text = (
        "# Guide\n\nIntro text here.\n\n## Scaling\n\nScale the workers with KEDA.\n\n"
        "### Workers\n\nWorkers scale on queue depth.\n\n## Backups\n\nBack up Redis.\n"
    )
    chunks = chunk_text(text, title="Guide", size=100, overlap=10)
    assert [c.heading for c in chunks] == [
        "Guide",
        "Guide > Scaling",
        "Guide > Scaling > Workers",
        "Guide > Backups",
    ]
    assert chunks[2].text == "Guide > Scaling > Workers\n\nWorkers scale on queue depth."
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_headings_inside_code_fences_are_text_and_empty_sections_vanish() -> None:
    text = "# Doc\n\n## Empty\n\n## Code\n\n```sh\n# not a heading\nrun it\n```\n"
    chunks = chunk_text(text, title="Doc", size=100, overlap=0)
    assert len(chunks) == 1
    assert chunks[0].heading == "Doc > Code"
    assert "# not a heading" in chunks[0].text


@pytest.mark.parametrize(("size", "overlap"), [(32, 0), (64, 8), (256, 32), (512, 128)])
def test_no_chunk_exceeds_the_size_on_the_real_docs(size: int, overlap: int) -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        chunks = chunk_text(page.read_text(), title=page.stem, size=size, overlap=overlap)
        assert chunks, page
        assert all(c.tokens == count_tokens(c.text) <= size for c in chunks), page


def test_paragraph_boundaries_are_preferred_to_sentences() -> None:
    first, second = _sentences("alpha", 4), _sentences("beta", 4)
    text = f"{first}\n\n{second}"
    size = count_tokens("T\n\n" + first) + 20  # room for the first paragraph and a bit more
    chunks = chunk_text(text, title="T", size=size, overlap=0)
    assert chunks[0].text.endswith(first[-30:])
    assert chunks[1].text == "T\n\n" + second


def test_consecutive_chunks_of_a_section_overlap() -> None:
    text = _sentences("gamma", 30)
    chunks = chunk_text(text, title="T", size=60, overlap=20)
    assert len(chunks) > 3
    for previous, current in itertools.pairwise(chunks):
        last_sentence = previous.text.rsplit(". ", 1)[-1]
        body = current.text.split("\n\n", 1)[1]
        assert body.startswith(last_sentence), (previous.text, current.text)
    every = " ".join(c.text for c in chunks)
    assert all(f"gamma{i}w0" in every for i in range(30))


def test_a_sentence_longer_than_a_chunk_is_cut_at_tokens_and_an_overlap_tail_is_used() -> None:
    text = " ".join(f"word{i}" for i in range(500))
    chunks = chunk_text(text, title="T", size=50, overlap=10)
    assert all(c.tokens <= 50 for c in chunks)
    words_seen = set(" ".join(c.text for c in chunks).split())
    assert {f"word{i}" for i in range(500)} <= words_seen
    # the next chunk repeats the last 10 tokens of the one before
    assert chunks[1].text.split("\n\n", 1)[1].startswith(" ".join(chunks[0].text.split()[-10:]))


def test_list_items_and_code_lines_are_units() -> None:
    items = "\n".join(f"- item {i} with some words in it" for i in range(40))
    chunks = chunk_text(f"# L\n\n{items}\n", title="L", size=60, overlap=0)
    for chunk in chunks:
        body = chunk.text.split("\n\n", 1)[1]
        assert all(line.startswith("- item ") for line in body.split("\n")), body


def test_the_heading_line_stays_within_half_a_chunk() -> None:
    path = [f"Section number {i} with a long name" for i in range(10)]
    line = heading_line("Title", path, size=40)
    assert count_tokens(line) <= 20
    assert line.startswith("Title > ")
    assert heading_line("Guide", ["Guide", "Part"], 100) == "Guide > Part"


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("x", title="t", size=10, overlap=6)
