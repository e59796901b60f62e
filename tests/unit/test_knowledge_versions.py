"""Version decisions, table-driven: what a reader keeps at every step of a replacement."""

from __future__ import annotations

import pytest

from agent_service.agentconfig.knowledge import ChunkingSpec
from agent_service.knowledge import versions
from agent_service.knowledge.store import DocumentVersion, StoredHit, VersionState


def rec(doc: str, version: int, state: VersionState = "live") -> DocumentVersion:
    return DocumentVersion(tenant="t", doc_id=doc, version=version, state=state)


def hit(doc: str, version: int, index: int = 0, score: float = 0.5) -> StoredHit:
    return StoredHit(f"{doc}:{version}:{index}", "text", "t", doc, version, index, score)


# The writer's steps when "d" goes from version 1 to 2, and what the reader's query and registry
# read can observe in between (hits as versions present; records as the registry then).
@pytest.mark.parametrize(
    ("hits", "records", "kept"),
    [
        # before anything: only v1
        ([1, 1], [rec("d", 1)], [1, 1]),
        # v2 chunks being written, not committed: ignored
        ([2, 1, 2], [rec("d", 1)], [1]),
        # query saw a mix, registry read after the commit: only v2
        ([2, 1, 2], [rec("d", 1), rec("d", 2)], [2, 2]),
        # query before v1's chunks went, registry after the cleanup (v1's record is kept)
        ([1], [rec("d", 1), rec("d", 2)], [1]),
        # query after v1's chunks went: v2 only
        ([2], [rec("d", 1), rec("d", 2)], [2]),
        # a crash left uncommitted v3 chunks: never shown
        ([3, 2], [rec("d", 2)], [2]),
        # a deletion's tombstone hides every older version at once
        ([2, 2], [rec("d", 2), rec("d", 5, "deleted")], []),
        # ... but not a newer version committed after it
        ([6, 2], [rec("d", 2), rec("d", 5, "deleted"), rec("d", 6)], [6]),
        # no record at all: nothing
        ([1], [], []),
    ],
)
def test_a_reader_keeps_one_committed_version_per_document(
    hits: list[int], records: list[DocumentVersion], kept: list[int]
) -> None:
    found = [hit("d", v, i) for i, v in enumerate(hits)]
    assert [h.version for h in versions.live_hits(found, records)] == kept


def test_documents_are_decided_independently_and_order_is_kept() -> None:
    found = [hit("a", 2, 0, 0.9), hit("b", 1, 0, 0.8), hit("a", 1, 1, 0.7), hit("b", 1, 1, 0.6)]
    records = [rec("a", 1), rec("a", 2), rec("b", 1)]
    kept = versions.live_hits(found, records)
    assert [(h.doc_id, h.version, h.score) for h in kept] == [
        ("a", 2, 0.9),
        ("b", 1, 0.8),
        ("b", 1, 0.6),
    ]


def test_live_documents_latest_and_replacement() -> None:
    records = [rec("a", 1), rec("a", 3), rec("b", 2), rec("b", 4, "deleted"), rec("c", 1)]
    assert [(r.doc_id, r.version) for r in versions.live_documents(records)] == [
        ("a", 3),
        ("c", 1),
    ]
    assert versions.latest([]) is None
    assert versions.replaced_version([rec("a", 1), rec("a", 2), rec("a", 3)], 3) == 2
    assert versions.replaced_version([rec("a", 1, "deleted"), rec("a", 3)], 3) is None
    assert versions.superseded([rec("a", 1), rec("a", 3)], 2)
    assert not versions.superseded([rec("a", 1), rec("a", 2)], 2)


def test_unchanged_needs_same_content_same_recipe_and_a_live_newest() -> None:
    live = DocumentVersion("t", "d", 1, "live", content_hash="h", recipe="r")
    assert versions.is_unchanged(live, "h", "r")
    assert not versions.is_unchanged(live, "h2", "r")
    assert not versions.is_unchanged(live, "h", "r2")
    assert not versions.is_unchanged(None, "h", "r")
    gone = DocumentVersion("t", "d", 2, "deleted", content_hash="h", recipe="r")
    assert not versions.is_unchanged(gone, "h", "r")


def test_ids_and_recipes() -> None:
    key = versions.document_key("tenant-a", "doc")
    assert len(key) == 24
    assert key != versions.document_key("tenant-b", "doc")
    assert versions.chunk_id("tenant-a", "doc", 7, 3) == f"{key}:7:3"
    assert versions.version_id("tenant-a", "doc", 7) == f"{key}:7"
    small = versions.recipe(ChunkingSpec(size_tokens=128, overlap_tokens=16), "emb")
    assert small != versions.recipe(ChunkingSpec(), "emb")
    assert small != versions.recipe(ChunkingSpec(size_tokens=128, overlap_tokens=16), "emb2")
