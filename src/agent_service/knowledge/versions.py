"""Document versions: how changed content replaces old chunks atomically for every reader.

Pure decisions over registry records (``store.DocumentVersion``) and hits, used by ``base``;
the table-driven tests in ``tests/unit/test_knowledge_versions.py`` walk every interleaving.

**The registry lives in the vector store itself**, as a second collection per knowledge base
(Chroma has no transactions and no compare-and-set, but one record write is atomic). That keeps
everything about a knowledge base in one durable place, shared by every process in both of
Chroma's modes, backed up and restored together: a registry in Redis would be a second store
to keep consistent with the first (a Redis flush would hide every document, a Chroma restore
would resurrect deleted ones), and Redis in the chart holds tasks, not durable content.

**Versions.** Every ingestion or deletion has a version number, increasing with time (the
nanoseconds of its submission): the newest submission wins, whatever order the work finishes in.

**Writing a version V** (``KnowledgeBase.ingest``):

1. store every chunk, tagged with V (no registry record names V yet: readers ignore them);
2. commit: write the registry record (V, live) — one atomic write;
3. read the document's records back. If a newer version exists, V lost a race: delete V's
   chunks and stop. Else delete the chunks of versions below V, and the records below the
   version V replaced (that record is kept, see below).

**Deleting** writes a tombstone (D, deleted), then deletes the chunks and the records below D.
Tombstones stay, so an older ingestion that commits after a deletion finds it superseded.

**Reading** (``live_hits``): a query returns chunks of any version; the reader then reads the
records of the documents it hit, and keeps, per document, only the hits of the highest version
among those that are both in its hits and committed, unless a newer tombstone exists. New chunks
are all stored before their commit and old ones deleted only after it, so at every instant at
least one complete committed version of the document is in the store: a reader sees exactly one
version of each document, never a mix and never none. The record of the replaced version is kept
until the next change, so a reader that fetched old chunks just before the switch still finds
them committed; only a reader whose query and registry read straddle two complete replacements
of the same document can miss it (it then returns that document's hits to no one, never a mix).

Chunks left by a crash between steps 1 and 2 carry a version with no record: readers skip them
and the next ingestion of the document deletes them (step 3).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

from agent_service.agentconfig.knowledge import ChunkingSpec
from agent_service.knowledge.store import DocumentVersion, StoredHit


def document_key(tenant: str, doc_id: str) -> str:
    """A short, fixed-length id of (tenant, document) for record ids."""
    return hashlib.sha256(f"{tenant}\x00{doc_id}".encode()).hexdigest()[:24]


def chunk_id(tenant: str, doc_id: str, version: int, index: int) -> str:
    return f"{document_key(tenant, doc_id)}:{version}:{index}"


def version_id(tenant: str, doc_id: str, version: int) -> str:
    return f"{document_key(tenant, doc_id)}:{version}"


def content_hash(data: bytes) -> str:
    """SHA-256 of a document's bytes as uploaded."""
    return hashlib.sha256(data).hexdigest()


def recipe(chunking: ChunkingSpec, embedding_model: str) -> str:
    """What turned content into chunks and vectors; the same content under another recipe is
    ingested again rather than skipped."""
    text = f"{chunking.size_tokens}/{chunking.overlap_tokens}/{embedding_model}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def latest(records: Iterable[DocumentVersion]) -> DocumentVersion | None:
    """The newest record (live or tombstone) among one document's records."""
    return max(records, key=lambda record: record.version, default=None)


def by_document(records: Iterable[DocumentVersion]) -> dict[str, list[DocumentVersion]]:
    grouped: dict[str, list[DocumentVersion]] = defaultdict(list)
    for record in records:
        grouped[record.doc_id].append(record)
    return grouped


def live_documents(records: Iterable[DocumentVersion]) -> list[DocumentVersion]:
    """The live record of each document whose newest record is not a tombstone, by id."""
    found = []
    for doc_records in by_document(records).values():
        newest = latest(doc_records)
        if newest is not None and newest.state == "live":
            found.append(newest)
    return sorted(found, key=lambda record: record.doc_id)


def is_unchanged(newest: DocumentVersion | None, digest: str, recipe_id: str) -> bool:
    """Whether ingesting content ``digest`` under ``recipe_id`` would change nothing."""
    return (
        newest is not None
        and newest.state == "live"
        and newest.content_hash == digest
        and newest.recipe == recipe_id
    )


def superseded(records: Iterable[DocumentVersion], version: int) -> bool:
    """Whether a record newer than ``version`` exists (an ingestion or deletion won)."""
    return any(record.version > version for record in records)


def replaced_version(records: Iterable[DocumentVersion], version: int) -> int | None:
    """The newest committed version below ``version``: the one it replaces, kept a while."""
    older = [r.version for r in records if r.version < version and r.state == "live"]
    return max(older, default=None)


def live_hits(hits: Sequence[StoredHit], records: Iterable[DocumentVersion]) -> list[StoredHit]:
    """``hits`` (best first) reduced to one committed version per document (module docstring)."""
    committed: dict[str, set[int]] = defaultdict(set)
    deleted: dict[str, int] = {}
    for record in records:
        if record.state == "live":
            committed[record.doc_id].add(record.version)
        else:
            deleted[record.doc_id] = max(record.version, deleted.get(record.doc_id, -1))
    chosen: dict[str, int | None] = {}
    for hit in hits:
        if hit.doc_id in chosen:
            continue
        present = {h.version for h in hits if h.doc_id == hit.doc_id} & committed[hit.doc_id]
        version = max(present, default=None)
        if version is not None and deleted.get(hit.doc_id, -1) > version:
            version = None
        chosen[hit.doc_id] = version
    return [hit for hit in hits if chosen[hit.doc_id] == hit.version]
