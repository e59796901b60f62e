"""Retrieval quality: the project's own docs/, the simulator's embeddings, recall@5 >= 0.8.

The question set (``data/docs_questions.yaml``) names, for each question, the page of docs/ that
answers it. Every page is ingested into a knowledge base with the default chunking and topK, on
an embedded Chroma, with vectors from the simulator process through LiteLLM over HTTP. A
question counts as recalled when its page is among the documents of the 5 best chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from agent_service.agentconfig.knowledge import KnowledgeBaseSpec
from agent_service.agentconfig.model import ModelSpec
from agent_service.knowledge.base import DocumentUpload, KnowledgeBase
from agent_service.knowledge.chroma import ChromaOptions, ChromaStore
from agent_service.llm.embeddings import LiteLLMEmbedder
from tests.conftest import Sim

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Item .* is using the .ReadOnly. qualifier:UserWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = yaml.safe_load((Path(__file__).parent / "data" / "docs_questions.yaml").read_text())
RECALL_TARGET = 0.8


@pytest.fixture
async def docs_kb(sim: Sim, tmp_path: Path) -> AsyncIterator[KnowledgeBase]:
    store = ChromaStore(ChromaOptions(path=tmp_path / "chroma"))
    model = ModelSpec(name="emb", model="openai/sim-embedding", api_base=sim.url)
    spec = KnowledgeBaseSpec(name="docs", description="The docs.", embedding_model="emb")
    kb = KnowledgeBase(spec, LiteLLMEmbedder(model), store)
    for page in sorted((ROOT / "docs").glob("*.md")):
        upload = DocumentUpload(doc_id=page.name, data=page.read_bytes(), filename=page.name)
        await kb.ingest(upload, tenant="default")
    yield kb
    await store.aclose()


def test_the_question_set_is_big_enough_and_names_real_pages() -> None:
    assert len(QUESTIONS) >= 30
    assert all((ROOT / "docs" / q["doc"]).exists() for q in QUESTIONS)
    assert len({q["question"] for q in QUESTIONS}) == len(QUESTIONS)


async def test_recall_at_5_over_the_docs(docs_kb: KnowledgeBase) -> None:
    misses = []
    for item in QUESTIONS:
        found = await docs_kb.search(item["question"], tenant="default", top_k=5, min_score=-1)
        pages = [hit.doc_id for hit in found.hits]
        if item["doc"] not in pages:
            misses.append(f"{item['doc']}: {item['question']!r} -> {pages}")
    recall = 1 - len(misses) / len(QUESTIONS)
    print(f"recall@5 = {recall:.3f} ({len(QUESTIONS) - len(misses)}/{len(QUESTIONS)})")
    print("\n".join(misses))
    assert recall >= RECALL_TARGET, "\n".join(misses)
