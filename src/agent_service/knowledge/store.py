"""The ``VectorStore`` port: what a knowledge base needs from a vector database.

Two kinds of records per knowledge base, both scoped by ``tenant`` metadata:

- **chunks** (``ChunkRecord``): a vector, its text, and the document and version it belongs to;
- **document versions** (``DocumentVersion``): the registry. One record per committed version
  of a document (and a tombstone per deletion), written only after all its chunks are stored.

The store stays dumb: adding, querying, listing and deleting by (tenant, document, version).
Which version is live, what replaces what, and what readers may see is decided above it, in
``versions`` and ``base`` (the module docstring of ``versions`` explains the protocol), so that
a Milvus or Qdrant adapter implements this Protocol and nothing else. ``chroma.ChromaStore`` is
the adapter; every method may raise ``KnowledgeStoreUnavailableError`` or
``KnowledgeConflictError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

MetadataValue = str | int | float | bool
VersionState = Literal["live", "deleted"]


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A chunk as stored: ``index`` is its position in the document."""

    id: str
    vector: list[float]
    text: str
    tenant: str
    doc_id: str
    version: int
    index: int


@dataclass(frozen=True, slots=True)
class StoredHit:
    """A chunk found by ``query``; ``score`` is the cosine similarity (1 = same direction)."""

    id: str
    text: str
    tenant: str
    doc_id: str
    version: int
    index: int
    score: float


@dataclass(frozen=True, slots=True)
class DocumentVersion:
    """A registry record: one committed version of a document, or its deletion (``deleted``).

    ``recipe`` identifies how the chunks were made (chunking and embedding model): the same
    content under another recipe is not the same version. ``metadata`` is the caller's, as
    given at ingestion (flat, small).
    """

    tenant: str
    doc_id: str
    version: int
    state: VersionState
    content_hash: str = ""
    recipe: str = ""
    title: str = ""
    uri: str = ""
    content_type: str = ""
    chunks: int = 0
    size_bytes: int = 0
    committed_at: float = 0.0
    metadata: dict[str, MetadataValue] = field(default_factory=dict)


class VectorStore(Protocol):
    """A vector database holding the chunks and the registry of every knowledge base.

    ``kb`` names the knowledge base (a valid ``KB_NAME_PATTERN`` name); a knowledge base's
    storage is created by its first ``add_chunks`` or ``put_version``. Queries and listings of a
    knowledge base that holds nothing yet return nothing.
    """

    async def add_chunks(self, kb: str, chunks: Sequence[ChunkRecord]) -> None:
        """Store ``chunks`` (all of one dimension, that of the knowledge base's vectors)."""
        ...

    async def query(
        self, kb: str, tenant: str, vector: Sequence[float], limit: int
    ) -> list[StoredHit]:
        """The ``limit`` chunks of ``tenant`` nearest to ``vector``, best first, whatever
        their version (the caller keeps the live ones)."""
        ...

    async def delete_chunks(
        self,
        kb: str,
        tenant: str,
        doc_id: str,
        *,
        below: int | None = None,
        version: int | None = None,
    ) -> None:
        """Delete the document's chunks of versions below ``below``, or of exactly
        ``version``, or all of them when neither is given."""
        ...

    async def put_version(self, kb: str, record: DocumentVersion) -> None:
        """Write one registry record (a single atomic write: the commit point of a version)."""
        ...

    async def versions(
        self, kb: str, tenant: str, doc_ids: Sequence[str] | None = None
    ) -> list[DocumentVersion]:
        """The registry records of ``tenant``, of ``doc_ids`` only when given."""
        ...

    async def delete_versions(
        self,
        kb: str,
        tenant: str,
        doc_id: str,
        *,
        below: int | None = None,
        version: int | None = None,
    ) -> None:
        """Delete the document's registry records of versions below ``below``, or of exactly
        ``version``, or all of them when neither is given."""
        ...

    async def count_chunks(self, kb: str) -> int:
        """Chunks stored in the knowledge base, all tenants and versions (for the gauge)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
