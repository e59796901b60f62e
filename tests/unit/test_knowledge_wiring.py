"""Knowledge bases in the config, the search tool, sources and the simulator's search rule:
pure tests, table-driven."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from agent_service.agent.sources import cited_numbers, used_sources
from agent_service.agentconfig.load import ConfigError, parse_agent_config
from agent_service.agentconfig.model import AgentConfig
from agent_service.domain.sources import Source
from agent_service.knowledge.base import SearchHit
from agent_service.knowledge.files import walk
from agent_service.knowledge.tool import format_hits
from agent_service.knowledge_cli import ProgressBar
from agent_service.sim.behaviour import answer_from_passages, decide

BASE: dict[str, Any] = {
    "defaultModel": "chat",
    "models": [
        {"name": "chat", "model": "openai/chat"},
        {"name": "embed", "model": "openai/embed", "kind": "embedding"},
    ],
    "knowledgeBases": [
        {"name": "docs", "description": "The docs.", "embeddingModel": "embed"},
        {"name": "faq", "description": "Questions.", "embeddingModel": "embed", "topK": 3},
    ],
    "agents": [
        {"name": "helper", "description": "h", "knowledge": ["docs"]},
        {"name": "plain", "description": "p"},
    ],
}


def errors(**fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_agent_config(json.dumps({**BASE, **fields}))
    return caught.value.errors


def test_agents_list_the_knowledge_bases_they_search() -> None:
    config = AgentConfig.model_validate(BASE)
    profiles = config.profiles()
    assert profiles["helper"].knowledge == ("docs",)
    assert profiles["plain"].knowledge == ()
    assert config.knowledge_base("faq").top_k == 3
    implicit = AgentConfig.model_validate({**BASE, "agents": []}).profiles()["default"]
    assert implicit.knowledge == ("docs", "faq")  # the implicit agent searches every base


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        (
            {"agents": [{"name": "a", "description": "a", "knowledge": ["docs", "wiki"]}]},
            "agents[0].knowledge[1]",
            "'wiki' is not a knowledgeBases entry",
        ),
        (
            {"agents": [{"name": "a", "description": "a", "knowledge": ["docs", "docs"]}]},
            "agents[0].knowledge[1]",
            "duplicate knowledge base name",
        ),
        (
            {"knowledgeBases": [{"name": "d", "description": "d", "embeddingModel": "chat"}]},
            "knowledgeBases[0].embeddingModel",
            "is a chat model",
        ),
        (
            {"knowledgeBases": [{"name": "d", "description": "d", "embeddingModel": "nope"}]},
            "knowledgeBases[0].embeddingModel",
            "embedding models: embed",
        ),
        (
            {
                "knowledgeBases": [
                    {"name": "d", "description": "d", "embeddingModel": "embed"},
                    {"name": "d", "description": "e", "embeddingModel": "embed"},
                ]
            },
            "knowledgeBases[1].name",
            "duplicate knowledge base name 'd'",
        ),
        ({"defaultModel": "embed"}, "defaultModel", "is an embedding model"),
        (
            {
                "models": [
                    {"name": "chat", "model": "openai/chat", "fallbacks": ["embed"]},
                    {"name": "embed", "model": "openai/e", "kind": "embedding"},
                ]
            },
            "models[0].fallbacks[0]",
            "is an embedding model",
        ),
        (
            {
                "models": [
                    {"name": "chat", "model": "openai/chat"},
                    {
                        "name": "embed",
                        "model": "openai/e",
                        "kind": "embedding",
                        "fallbacks": ["chat"],
                    },
                ]
            },
            "models[1].fallbacks",
            "an embedding model has no fallbacks",
        ),
        (
            {"agents": [{"name": "a", "description": "a", "model": "embed"}]},
            "agents[0].model",
            "is an embedding model",
        ),
        (
            {
                "tools": {
                    "http": [
                        {"name": "search_docs", "description": "x", "url": "https://x.example/"}
                    ]
                }
            },
            "knowledgeBases[0].name",
            "also an HTTP tool's name",
        ),
    ],
)
def test_knowledge_references_are_checked_at_their_paths(
    fields: dict[str, Any], path: str, words: str
) -> None:
    found = errors(**fields)
    assert any(where == path and words in what for where, what in found), found


def source(citation: int, doc: str = "d", chunk: int = 0) -> Source:
    return Source(
        citation=citation, kb="docs", document_id=doc, chunk=chunk, excerpt="e", score=0.5
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("See [2], then [1] and [2] again.", [2, 1]),
        ("Nothing cited.", [1, 2, 3]),
        ("A made-up [9] and a real [3].", [3]),
        ("Only a made-up [9].", [1, 2, 3]),
    ],
)
def test_sources_follow_the_order_the_answer_cites_them(answer: str, expected: list[int]) -> None:
    retrieved = [source(1, "a"), source(2, "b"), source(3, "c")]
    assert [s.citation for s in used_sources(answer, retrieved)] == expected


def test_uncited_sources_keep_one_entry_per_chunk() -> None:
    retrieved = [source(1, "a", 0), source(2, "a", 0), source(3, "a", 1)]
    assert [s.citation for s in used_sources("no citation", retrieved)] == [1, 3]
    assert cited_numbers("[1][1] [12]") == [1, 12]


def hit(doc: str, text: str, title: str = "", uri: str = "") -> SearchHit:
    return SearchHit(
        kb="docs", doc_id=doc, title=title, uri=uri, chunk_index=0, text=text, excerpt=text,
        score=0.5,
    )  # fmt: skip


def test_the_tool_numbers_passages_and_the_simulator_cites_the_first() -> None:
    hits = [
        hit(
            "ops",
            "Operations > Scaling\n\nWorkers scale on queue depth. Use KEDA.",
            "Ops",
            "ops.md",
        ),
        hit("faq", "FAQ\n\nOther text.", uri="faq.md"),
    ]
    text = format_hits("docs", hits, first_number=4)
    assert "[4] Ops — ops.md\nOperations > Scaling" in text and "[5] faq.md\nFAQ" in text
    assert (
        answer_from_passages(text)
        == "According to Ops [4]: Workers scale on queue depth. Use KEDA."
    )
    assert format_hits("docs", [], 1).startswith("No passages")
    assert (
        answer_from_passages(format_hits("docs", [], 1))
        == "The knowledge base has nothing on this."
    )


@pytest.mark.parametrize(
    ("message", "calls"),
    [
        ("how do I scale the workers?", ["search_docs", "search_faq"]),
        ("Explain the retry policy", ["search_docs", "search_faq"]),
        ("hello there", []),
    ],
)
def test_the_simulator_searches_on_questions(message: str, calls: list[str]) -> None:
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {}}}
        for name in ("search_faq", "search_docs", "calculator")
    ]
    reply = decide([{"role": "user", "content": message}], tools)
    assert [call.name for call in reply.tool_calls] == calls
    for call in reply.tool_calls:
        assert json.loads(call.arguments) == {"query": message}


def test_walking_files_gives_stable_ids(tmp_path: Path) -> None:
    (tmp_path / "guides").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ("a.md", "guides/b.html", "c.png", ".hidden/d.md", "e.pdf"):
        (tmp_path / name).write_bytes(b"x")
    found = [(f.doc_id, f.path.name) for f in walk([tmp_path], prefix="kb/")]
    assert found == [("kb/a.md", "a.md"), ("kb/e.pdf", "e.pdf"), ("kb/guides/b.html", "b.html")]
    assert [f.doc_id for f in walk([tmp_path / "c.png"])] == ["c.png"]
    with pytest.raises(FileNotFoundError):
        list(walk([tmp_path / "missing"]))


def test_the_progress_bar_writes_a_line_per_file_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(2, out)
    bar.file_started("a.md")
    bar.file_done("created, 3 chunks")
    bar.file_started("b.md")
    bar.file_done("unchanged, 1 chunks")
    bar.close()
    assert out.getvalue().splitlines() == [
        "1/2 a.md: created, 3 chunks",
        "2/2 b.md: unchanged, 1 chunks",
    ]
