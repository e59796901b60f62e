"""``KnowledgeBase``: one configured knowledge base at work — ingest, search, list, delete.

Built once per process for each configured knowledge base from its spec, the embedder of its
embedding model (``Embedder``: ``llm.embeddings.LiteLLMEmbedder``) and the process's vector
store (``store.VectorStore``: ``chroma.ChromaStore``). The queued ingestion task calls
``ingest``, the agent's ``search_<name>`` tool calls ``search``, the API calls ``documents`` and
``delete``. How a changed document replaces its chunks without a reader ever seeing two
versions or none is explained in ``versions``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from agent_service.agentconfig.knowledge import KnowledgeBaseSpec
from agent_service.domain.embeddings import Embeddings
from agent_service.domain.errors import AgentError
from agent_service.domain.messages import LLMAttempt, TokenUsage
from agent_service.knowledge import versions
from agent_service.knowledge.chunking import chunk_text
from agent_service.knowledge.documents import DocumentLimits, parse_document
from agent_service.knowledge.errors import (
    DocumentNotFoundError,
    InvalidDocumentError,
    InvalidSearchError,
    KnowledgeError,
)
from agent_service.knowledge.store import (
    ChunkRecord,
    DocumentVersion,
    MetadataValue,
    StoredHit,
    VectorStore,
)

DOC_ID_MAX_CHARS = 256
URI_MAX_CHARS = 2048
METADATA_MAX_KEYS = 32
METADATA_VALUE_MAX_CHARS = 1024
EXCERPT_MAX_CHARS = 500
TOP_K_MAX = 50
QUERY_OVERSAMPLE = 2
"""A search asks the store for this many times ``topK`` (+ 10) chunks: stale chunks of a
version being replaced are dropped after the query, and must not push live ones out."""

Stage = Literal["parsing", "embedding", "storing", "done"]


class Embedder(Protocol):
    """Vectors of texts from one embedding model (``llm.embeddings.LiteLLMEmbedder``)."""

    @property
    def model(self) -> str: ...

    async def embed(
        self, texts: Sequence[str], *, on_progress: Callable[[int], None] | None = None
    ) -> Embeddings: ...


class KnowledgeObserver(Protocol):
    """Where retrieval, size and embedding figures go
    (``observability.knowledge.KnowledgeMetricsObserver``)."""

    def retrieval_finished(self, kb: str, seconds: float, hits: int) -> None: ...

    def knowledge_chunks_counted(self, kb: str, chunks: int) -> None: ...

    def embedded(self, embeddings: Embeddings) -> None:
        """An embedding call answered (chunks of an ingestion, or a question)."""
        ...

    def embedding_failed(self, attempts: Sequence[LLMAttempt]) -> None:
        """An embedding call failed after ``attempts``."""
        ...


class _NoObserver:
    def retrieval_finished(self, kb: str, seconds: float, hits: int) -> None:
        return None

    def knowledge_chunks_counted(self, kb: str, chunks: int) -> None:
        return None

    def embedded(self, embeddings: Embeddings) -> None:
        return None

    def embedding_failed(self, attempts: Sequence[LLMAttempt]) -> None:
        return None


@dataclass(frozen=True)
class IngestProgress:
    """Where an ingestion is: ``done`` of ``total`` chunks of the current ``stage``."""

    stage: Stage
    done: int
    total: int


ProgressCallback = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class DocumentUpload:
    """A document to ingest, as the API or the CLI received it."""

    doc_id: str
    data: bytes
    content_type: str | None = None
    filename: str | None = None
    title: str | None = None
    uri: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    """What an ingestion did: ``created``, ``replaced`` an older version, found the content
    ``unchanged``, or was ``superseded`` by a newer version of the document."""

    doc_id: str
    version: int
    status: Literal["created", "replaced", "unchanged", "superseded"]
    chunks: int
    usage: TokenUsage = field(default_factory=TokenUsage)
    attempts: list[LLMAttempt] = field(default_factory=list)
    duration_ms: float = 0.0


@dataclass(frozen=True)
class SearchHit:
    """A source: which document, where from, the chunk's text and an excerpt, and the score."""

    kb: str
    doc_id: str
    title: str
    uri: str
    chunk_index: int
    text: str
    excerpt: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    usage: TokenUsage
    attempts: list[LLMAttempt]
    duration_ms: float


@dataclass(frozen=True)
class DocumentInfo:
    """A live document of a knowledge base, as listed."""

    doc_id: str
    title: str
    uri: str
    content_type: str
    chunks: int
    size_bytes: int
    version: int
    content_hash: str
    committed_at: float
    metadata: dict[str, MetadataValue]


def _excerpt(text: str, heading_end: int) -> str:
    body = text[heading_end:].strip() or text
    if len(body) <= EXCERPT_MAX_CHARS:
        return body
    cut = body.rfind(" ", 0, EXCERPT_MAX_CHARS)
    return body[: cut if cut > EXCERPT_MAX_CHARS // 2 else EXCERPT_MAX_CHARS].rstrip() + " …"


def check_upload(upload: DocumentUpload) -> None:
    """``InvalidDocumentError`` when the id, URI or metadata is out of bounds (also called by
    the API before it queues the document)."""
    doc_id = upload.doc_id
    if not doc_id or len(doc_id) > DOC_ID_MAX_CHARS or not doc_id.isprintable():
        raise InvalidDocumentError(f"a document id is 1 to {DOC_ID_MAX_CHARS} printable characters")
    if upload.uri is not None and len(upload.uri) > URI_MAX_CHARS:
        raise InvalidDocumentError(f"a document URI is at most {URI_MAX_CHARS} characters")
    if len(upload.metadata) > METADATA_MAX_KEYS:
        raise InvalidDocumentError(f"a document has at most {METADATA_MAX_KEYS} metadata keys")
    for key, value in upload.metadata.items():
        if not isinstance(value, str | int | float | bool):
            raise InvalidDocumentError(f"metadata {key!r} must be a string, number or boolean")
        if len(key) > 64 or len(str(value)) > METADATA_VALUE_MAX_CHARS:
            raise InvalidDocumentError(f"metadata {key[:64]!r} is too long")


class KnowledgeBase:
    """One knowledge base: its spec, the embedder of its model and the shared vector store."""

    def __init__(
        self,
        spec: KnowledgeBaseSpec,
        embedder: Embedder,
        store: VectorStore,
        *,
        observer: KnowledgeObserver | None = None,
        limits: DocumentLimits | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.spec = spec
        self._embedder = embedder
        self._store = store
        self._observer = observer or _NoObserver()
        self._limits = limits or DocumentLimits()
        self._clock = clock
        self._recipe = versions.recipe(spec.chunking, embedder.model)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def limits(self) -> DocumentLimits:
        return self._limits

    async def ingest(
        self,
        upload: DocumentUpload,
        *,
        tenant: str,
        version: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Parse, chunk, embed and store one document for ``tenant``, replacing its older
        version; nothing is written when it is rejected (``KnowledgeError``) or unchanged.

        ``version`` orders concurrent changes of one document (the newest wins): pass the
        submission time in nanoseconds when the work is queued; default now.
        """
        started = time.perf_counter()
        progress = on_progress or (lambda _: None)
        check_upload(upload)
        version = version if version is not None else self._clock()
        progress(IngestProgress("parsing", 0, 1))
        parsed = parse_document(
            upload.data,
            content_type=upload.content_type,
            filename=upload.filename,
            title=upload.title,
            limits=self._limits,
        )
        digest = versions.content_hash(upload.data)
        records = await self._store.versions(self.name, tenant, [upload.doc_id])
        newest = versions.latest(records)
        if versions.is_unchanged(newest, digest, self._recipe) or (
            newest is not None and newest.version >= version
        ):
            assert newest is not None
            status: Literal["unchanged", "superseded"] = (
                "unchanged" if newest.version < version else "superseded"
            )
            progress(IngestProgress("done", newest.chunks, newest.chunks))
            return IngestResult(
                upload.doc_id, newest.version, status, newest.chunks,
                duration_ms=(time.perf_counter() - started) * 1000.0,
            )  # fmt: skip
        chunks = chunk_text(
            parsed.text,
            title=parsed.title,
            size=self.spec.chunking.size_tokens,
            overlap=self.spec.chunking.overlap_tokens,
        )
        total = len(chunks)
        progress(IngestProgress("embedding", 0, total))
        embedded = await self._embed(
            [chunk.text for chunk in chunks],
            on_progress=lambda done: progress(IngestProgress("embedding", done, total)),
        )
        records_out = [
            ChunkRecord(
                id=versions.chunk_id(tenant, upload.doc_id, version, chunk.index),
                vector=vector,
                text=chunk.text,
                tenant=tenant,
                doc_id=upload.doc_id,
                version=version,
                index=chunk.index,
            )
            for chunk, vector in zip(chunks, embedded.vectors, strict=True)
        ]
        progress(IngestProgress("storing", 0, total))
        record = DocumentVersion(
            tenant=tenant,
            doc_id=upload.doc_id,
            version=version,
            state="live",
            content_hash=digest,
            recipe=self._recipe,
            title=parsed.title,
            uri=upload.uri or upload.filename or "",
            content_type=parsed.type.value,
            chunks=total,
            size_bytes=len(upload.data),
            committed_at=time.time(),
            metadata=dict(upload.metadata),
        )
        status_done = await self._write_version(records_out, record)
        if status_done == "created" and newest is not None and newest.state == "live":
            status_done = "replaced"
        progress(IngestProgress("done", total, total))
        await self.count_chunks()
        return IngestResult(
            doc_id=upload.doc_id,
            version=version,
            status=status_done,
            chunks=total,
            usage=embedded.usage,
            attempts=embedded.attempts,
            duration_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def unchanged(self, doc_id: str, data: bytes, *, tenant: str) -> DocumentInfo | None:
        """``tenant``'s live document ``doc_id`` when it holds exactly ``data`` under this
        base's chunking and model (ingesting it again would be a no-op), else None."""
        records = await self._store.versions(self.name, tenant, [doc_id])
        newest = versions.latest(records)
        if not versions.is_unchanged(newest, versions.content_hash(data), self._recipe):
            return None
        live = [d for d in self._infos(records) if d.doc_id == doc_id]
        return live[0] if live else None

    async def _embed(
        self, texts: Sequence[str], *, on_progress: Callable[[int], None] | None = None
    ) -> Embeddings:
        """The embedder's vectors, its usage and attempts reported to the observer."""
        try:
            embedded = await self._embedder.embed(texts, on_progress=on_progress)
        except AgentError as exc:  # the LLM adapter's errors carry the attempts they made
            self._observer.embedding_failed(getattr(exc, "attempts", None) or [])
            raise
        self._observer.embedded(embedded)
        return embedded

    async def _write_version(
        self, chunks: list[ChunkRecord], record: DocumentVersion
    ) -> Literal["created", "replaced", "superseded"]:
        """Steps 1-3 of ``versions``: chunks, commit, then clean up (or withdraw if a newer
        version won). A failure before the commit deletes what was written."""
        kb, tenant, doc_id, version = self.name, record.tenant, record.doc_id, record.version
        try:
            await self._store.add_chunks(kb, chunks)
            await self._store.put_version(kb, record)
        except BaseException:
            await self._withdraw(tenant, doc_id, version)
            raise
        records = await self._store.versions(kb, tenant, [doc_id])
        if versions.superseded(records, version):
            # Its record stays: a reader that just validated V's chunks keeps a consistent
            # view; the newer version's next replacement removes it.
            await self._store.delete_chunks(kb, tenant, doc_id, version=version)
            return "superseded"
        await self._store.delete_chunks(kb, tenant, doc_id, below=version)
        replaced = versions.replaced_version(records, version)
        if replaced is not None:
            await self._store.delete_versions(kb, tenant, doc_id, below=replaced)
        return "created"

    async def _withdraw(self, tenant: str, doc_id: str, version: int) -> None:
        """Best effort: remove a failed version, record first (the commit may have landed
        before the failure was seen), then its chunks; readers fall back to the version before,
        untouched so far. What a crash leaves, the next ingestion cleans (``versions``)."""
        try:
            await self._store.delete_versions(self.name, tenant, doc_id, version=version)
            await self._store.delete_chunks(self.name, tenant, doc_id, version=version)
        except KnowledgeError:
            return

    async def search(
        self,
        query: str,
        *,
        tenant: str,
        top_k: int | None = None,
        min_score: float | None = None,
    ) -> SearchResult:
        """The best chunks of ``tenant``'s live documents for ``query``, at most ``top_k``
        (the spec's by default, 50 at most) scoring at least ``min_score``, best first."""
        if not query.strip():
            raise InvalidSearchError("a search needs a question")
        started = time.perf_counter()
        top_k = min(max(top_k or self.spec.top_k, 1), TOP_K_MAX)
        floor = self.spec.min_score if min_score is None else min_score
        embedded = await self._embed([query])
        limit = top_k * QUERY_OVERSAMPLE + 10
        found = await self._store.query(self.name, tenant, embedded.vectors[0], limit)
        records = await self._store.versions(self.name, tenant, sorted({h.doc_id for h in found}))
        live = versions.live_hits(found, records)
        latest = {r.doc_id: r for r in versions.live_documents(records)}
        hits = [self._hit(h, latest) for h in live if h.score >= floor and h.doc_id in latest]
        hits = hits[:top_k]
        seconds = time.perf_counter() - started
        self._observer.retrieval_finished(self.name, seconds, len(hits))
        return SearchResult(hits, embedded.usage, embedded.attempts, seconds * 1000.0)

    def _hit(self, hit: StoredHit, documents: Mapping[str, DocumentVersion]) -> SearchHit:
        document = documents[hit.doc_id]
        heading_end = hit.text.find("\n\n")
        return SearchHit(
            kb=self.name,
            doc_id=hit.doc_id,
            title=document.title,
            uri=document.uri,
            chunk_index=hit.index,
            text=hit.text,
            excerpt=_excerpt(hit.text, max(heading_end, 0)),
            score=round(hit.score, 4),
        )

    async def documents(self, *, tenant: str) -> list[DocumentInfo]:
        """``tenant``'s live documents, by id, with their chunk counts."""
        return self._infos(await self._store.versions(self.name, tenant))

    @staticmethod
    def _infos(records: Sequence[DocumentVersion]) -> list[DocumentInfo]:
        return [
            DocumentInfo(
                doc_id=r.doc_id, title=r.title, uri=r.uri, content_type=r.content_type,
                chunks=r.chunks, size_bytes=r.size_bytes, version=r.version,
                content_hash=r.content_hash, committed_at=r.committed_at, metadata=r.metadata,
            )
            for r in versions.live_documents(records)
        ]  # fmt: skip

    async def delete(self, doc_id: str, *, tenant: str, version: int | None = None) -> None:
        """Delete one of ``tenant``'s documents; ``DocumentNotFoundError`` if it has none
        live. Readers stop seeing it at the tombstone's write, before any chunk goes."""
        records = await self._store.versions(self.name, tenant, [doc_id])
        newest = versions.latest(records)
        if newest is None or newest.state != "live":
            raise DocumentNotFoundError(f"no document {doc_id!r} in knowledge base {self.name!r}")
        version = version if version is not None else max(self._clock(), newest.version + 1)
        tombstone = DocumentVersion(tenant=tenant, doc_id=doc_id, version=version, state="deleted")
        await self._store.put_version(self.name, tombstone)
        await self._store.delete_chunks(self.name, tenant, doc_id, below=version)
        await self._store.delete_versions(self.name, tenant, doc_id, below=version)
        await self.count_chunks()

    async def count_chunks(self) -> int:
        """The chunks stored in this knowledge base (every tenant), reported to the observer
        (``agent_knowledge_chunks``) and returned."""
        chunks = await self._store.count_chunks(self.name)
        self._observer.knowledge_chunks_counted(self.name, chunks)
        return chunks
