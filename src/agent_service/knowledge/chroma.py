"""``ChromaStore``: the ``VectorStore`` port on Chroma, embedded or a real server, one package.

- **Embedded** (``ChromaOptions(path=...)``): ``chromadb.PersistentClient`` in a data directory,
  inside this process. For one process only: a second process opening the same directory sees
  the other's writes in counts but not in queries (its vector index is cached in memory;
  measured with chromadb 1.5.9), so a stack of several processes (API and worker) runs a server.
- **Server** (``ChromaOptions(url=...)``): ``chromadb.HttpClient`` to ``chroma run`` (the Rust
  server shipped in the same package) or any Chroma deployment. ``token`` is sent on every
  request, as ``Authorization: Bearer <token>`` or bare in another header (``X-Chroma-Token``),
  for a Chroma behind an authenticating proxy or a hosted one; ``chroma run`` checks none.

Each knowledge base is two collections, ``<prefix><kb>-chunks`` (cosine HNSW index of the chunk
vectors, text and metadata ``tenant``, ``doc_id``, ``version``, ``index``) and
``<prefix><kb>-documents`` (the version registry of ``versions``: one record per version, with a
constant one-dimensional vector since Chroma requires one). Vectors are always ours: Chroma's
default embedding function (an ONNX model it would download) is never used.

``chromadb`` is imported on first use, not with this module: it costs ~0.7 s and ~30 MB of
RSS, plus ~20 MB per open client, which processes without knowledge bases should not pay.
The client is synchronous; calls run on a small thread pool of this store, each bounded by
``timeout_seconds`` (Chroma's HTTP client has no timeout of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agent_service.knowledge.errors import (
    KnowledgeConflictError,
    KnowledgeStoreUnavailableError,
)
from agent_service.knowledge.store import (
    ChunkRecord,
    DocumentVersion,
    MetadataValue,
    StoredHit,
)
from agent_service.knowledge.versions import version_id

T = TypeVar("T")

REGISTRY_VECTOR = [1.0]
QUERY_ATTEMPTS = 3
"""Queries of one search when chunks vanish under it (see ``ChromaStore.query``)."""
_VERSION_FIELDS = (
    "content_hash", "recipe", "title", "uri", "content_type", "chunks", "size_bytes",
    "committed_at",
)  # fmt: skip


@dataclass(frozen=True)
class ChromaOptions:
    """Where the store is: exactly one of ``path`` (embedded) and ``url`` (server)."""

    path: Path | None = None
    url: str | None = None
    """``http://host:port`` or ``https://host[:port]`` of a Chroma server."""
    token: str | None = None
    token_header: str = "Authorization"  # noqa: S105 - a header name, not a secret
    """``Authorization`` sends ``Bearer <token>``; any other header carries the bare token."""
    collection_prefix: str = "kb-"
    timeout_seconds: float = 30.0
    """Longest wait for one store call before ``KnowledgeStoreUnavailableError``."""
    threads: int = 8
    """Store calls in flight at once in this process."""

    def __post_init__(self) -> None:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of path (embedded Chroma) and url (Chroma server)")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"the Chroma url must be http(s)://host[:port], got {self.url!r}")
        if self.timeout_seconds <= 0 or self.threads < 1:
            raise ValueError("timeout_seconds and threads must be positive")

    @property
    def mode(self) -> str:
        return "embedded" if self.path is not None else "server"


def _connect(options: ChromaOptions) -> Any:
    # Imported here, in a store thread: see the module docstring.
    import chromadb  # noqa: PLC0415
    from chromadb.config import Settings  # noqa: PLC0415

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if options.path is not None:
        options.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(options.path), settings=settings)
    assert options.url is not None
    parts = urlsplit(options.url)
    secure = parts.scheme == "https"
    headers: dict[str, str] = {}
    if options.token:
        bearer = options.token_header.lower() == "authorization"
        headers[options.token_header] = f"Bearer {options.token}" if bearer else options.token
    _check_access(options.url, headers, options.timeout_seconds)
    client = chromadb.HttpClient(
        host=parts.hostname or "",
        port=parts.port or (443 if secure else 80),
        ssl=secure,
        headers=headers,
        settings=settings,
    )
    _bound_http_timeout(client, options.timeout_seconds)
    return client


def _check_access(url: str, headers: dict[str, str], timeout: float) -> None:
    """One request with the token before Chroma's client is built: a refused token or a
    missing server fails here with a clear message, instead of inside chromadb's constructor,
    which would leave its HTTP sessions open."""
    import httpx  # noqa: PLC0415 - chromadb's own dependency, loaded with it

    with httpx.Client(timeout=timeout, headers=headers) as http:
        status = http.get(url.rstrip("/") + "/api/v2/auth/identity").status_code
    if status in (401, 403):
        raise KnowledgeStoreUnavailableError(
            f"the Chroma server refused the request ({status}): check its token and header"
        )


def _http_sessions(client: Any) -> list[Any]:
    """The httpx sessions of a Chroma HTTP client and of the admin client inside it (each has
    its own); none when embedded, or if chromadb moves them.

    Chroma gives them no timeout (a hung server would hold a store thread forever) and never
    closes them (their sockets would be left to the garbage collector): we do both. They are
    internal to chromadb; without them calls stay bounded by our own deadline and only the
    store's threads wait longer."""
    import httpx  # noqa: PLC0415 - chromadb's own dependency, loaded with it

    owners = [client, getattr(client, "_admin_client", None)]
    sessions = [getattr(getattr(o, "_server", None), "_session", None) for o in owners]
    unique = {id(s): s for s in sessions if isinstance(s, httpx.Client)}
    return list(unique.values())


def _bound_http_timeout(client: Any, seconds: float) -> None:
    import httpx  # noqa: PLC0415

    for session in _http_sessions(client):
        session.timeout = httpx.Timeout(seconds)


def _is_dimension_error(exc: BaseException) -> bool:
    return type(exc).__name__ in {"InvalidArgumentError", "InvalidDimensionException"} and (
        "dimension" in str(exc).lower()
    )


def _and(*conditions: dict[str, Any]) -> dict[str, Any]:
    return conditions[0] if len(conditions) == 1 else {"$and": list(conditions)}


def _document_filter(
    tenant: str, doc_id: str, below: int | None, version: int | None
) -> dict[str, Any]:
    if below is not None and version is not None:
        raise ValueError("give at most one of below and version")
    conditions: list[dict[str, Any]] = [{"tenant": tenant}, {"doc_id": doc_id}]
    if below is not None:
        conditions.append({"version": {"$lt": below}})
    if version is not None:
        conditions.append({"version": version})
    return _and(*conditions)


def _chunk_metadata(chunk: ChunkRecord) -> dict[str, MetadataValue]:
    return {
        "tenant": chunk.tenant,
        "doc_id": chunk.doc_id,
        "version": chunk.version,
        "index": chunk.index,
    }


def _nearest(
    collection: Any, vector: Sequence[float], limit: int, where: dict[str, Any] | None
) -> list[tuple[str, str | None, Any, float]]:
    """(id, text, metadata, distance) of the ``limit`` nearest chunks; metadata is None for a
    chunk deleted while the query ran."""
    for _ in range(QUERY_ATTEMPTS):
        found = collection.query(
            query_embeddings=[list(vector)],
            n_results=limit,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        rows = list(
            zip(
                found["ids"][0],
                found["documents"][0],
                found["metadatas"][0],
                found["distances"][0],
                strict=True,
            )
        )
        # Chroma's reads are not snapshots: a chunk deleted while the query ran (the old
        # version of a replaced document) comes back without its metadata. Its replacement
        # was stored before the deletion began, so asking again sees it.
        if all(metadata is not None for _, _, metadata, _ in rows):
            break
    return rows


def _hit(chunk_id: str, text: str | None, metadata: Any, distance: float) -> StoredHit:
    return StoredHit(
        id=chunk_id,
        text=text or "",
        tenant=str(metadata["tenant"]),
        doc_id=str(metadata["doc_id"]),
        version=int(metadata["version"]),
        index=int(metadata["index"]),
        score=1.0 - float(distance),  # cosine distance is 1 - cosine similarity
    )


def _version_metadata(record: DocumentVersion) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {
        "tenant": record.tenant,
        "doc_id": record.doc_id,
        "version": record.version,
        "state": record.state,
        "metadata_json": json.dumps(record.metadata, sort_keys=True),
    }
    metadata.update({name: getattr(record, name) for name in _VERSION_FIELDS})
    return metadata


def _version_record(metadata: dict[str, Any]) -> DocumentVersion:
    fields = {name: metadata[name] for name in _VERSION_FIELDS if name in metadata}
    return DocumentVersion(
        tenant=str(metadata["tenant"]),
        doc_id=str(metadata["doc_id"]),
        version=int(metadata["version"]),
        state="deleted" if metadata.get("state") == "deleted" else "live",
        metadata=json.loads(metadata.get("metadata_json") or "{}"),
        **fields,
    )


class ChromaStore:
    """``VectorStore`` on one Chroma (see the module docstring); one per process."""

    def __init__(self, options: ChromaOptions) -> None:
        self.options = options
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=options.threads, thread_name_prefix="chroma")

    # --- plumbing -----------------------------------------------------------------------

    async def _call(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the store's threads within the deadline, with Chroma's failures
        turned into our errors."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.options.timeout_seconds):
                return await loop.run_in_executor(self._pool, work)
        except TimeoutError:
            raise KnowledgeStoreUnavailableError(
                f"the vector store did not answer within {self.options.timeout_seconds:g} s"
            ) from None
        except (KnowledgeConflictError, KnowledgeStoreUnavailableError):
            raise
        except Exception as exc:
            if _is_dimension_error(exc):
                raise KnowledgeConflictError(
                    "the knowledge base holds vectors of another dimension than its embedding "
                    f"model gives ({exc}); a new model needs a new knowledge base"
                ) from exc
            # Connection refused or reset, HTTP errors, a server-side failure: all mean the
            # store cannot serve now. Programming errors surface in tests, not here.
            raise KnowledgeStoreUnavailableError(
                f"the vector store failed ({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc

    def _client_now(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = _connect(self.options)
            return self._client

    def _collection(self, kb: str, kind: str, *, create: bool) -> Any | None:
        """The ``chunks`` or ``documents`` collection of ``kb``; None if absent and not
        ``create``."""
        name = f"{self.options.collection_prefix}{kb}-{kind}"
        cached = self._collections.get(name)
        if cached is not None:
            return cached
        client = self._client_now()
        if create:
            found = client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        else:
            try:
                found = client.get_collection(name, embedding_function=None)
            except Exception as exc:
                if type(exc).__name__ in {"NotFoundError", "InvalidCollectionException"} or (
                    "does not exist" in str(exc)
                ):
                    return None
                raise
        self._collections[name] = found
        return found

    def _batches(self, items: Sequence[T]) -> list[Sequence[T]]:
        size = max(1, int(self._client_now().get_max_batch_size()))
        return [items[i : i + size] for i in range(0, len(items), size)]

    # --- VectorStore --------------------------------------------------------------------

    async def add_chunks(self, kb: str, chunks: Sequence[ChunkRecord]) -> None:
        if not chunks:
            return

        def work() -> None:
            collection = self._collection(kb, "chunks", create=True)
            assert collection is not None
            for batch in self._batches(chunks):
                collection.add(
                    ids=[c.id for c in batch],
                    embeddings=[c.vector for c in batch],
                    documents=[c.text for c in batch],
                    metadatas=[_chunk_metadata(c) for c in batch],
                )

        await self._call(work)

    async def query(
        self, kb: str, tenant: str, vector: Sequence[float], limit: int
    ) -> list[StoredHit]:
        """The tenant's nearest chunks. First without a filter, keeping the tenant's rows:
        exact whenever at least ``limit`` of them come back (any better chunk of the tenant
        would be among the nearest overall) or the collection holds fewer than ``limit``
        chunks. Else, with Chroma's metadata filter, which is exact but costs time in
        proportion to the tenant's chunks (10k chunks: 23 ms against 2 ms unfiltered)."""

        def work() -> list[StoredHit]:
            collection = self._collection(kb, "chunks", create=False)
            if collection is None:
                return []
            rows = _nearest(collection, vector, limit, None)
            mine = [_hit(*row) for row in rows if row[2] is not None]
            mine = [hit for hit in mine if hit.tenant == tenant]
            if len(mine) >= limit or len(rows) < limit:
                return mine[:limit]
            rows = _nearest(collection, vector, limit, {"tenant": tenant})
            return [_hit(*row) for row in rows if row[2] is not None]

        return await self._call(work)

    async def delete_chunks(
        self,
        kb: str,
        tenant: str,
        doc_id: str,
        *,
        below: int | None = None,
        version: int | None = None,
    ) -> None:
        await self._delete(kb, "chunks", _document_filter(tenant, doc_id, below, version))

    async def put_version(self, kb: str, record: DocumentVersion) -> None:
        def work() -> None:
            collection = self._collection(kb, "documents", create=True)
            assert collection is not None
            collection.upsert(
                ids=[version_id(record.tenant, record.doc_id, record.version)],
                embeddings=[REGISTRY_VECTOR],
                metadatas=[_version_metadata(record)],
            )

        await self._call(work)

    async def versions(
        self, kb: str, tenant: str, doc_ids: Sequence[str] | None = None
    ) -> list[DocumentVersion]:
        if doc_ids is not None and not doc_ids:
            return []

        def work() -> list[DocumentVersion]:
            collection = self._collection(kb, "documents", create=False)
            if collection is None:
                return []
            # By document ids alone, tenant checked here: a filter on a key every record
            # matches costs Chroma time per record (5 ms against 1 ms at 2,000 records).
            where: dict[str, Any] = (
                {"tenant": tenant} if doc_ids is None else {"doc_id": {"$in": list(doc_ids)}}
            )
            found = collection.get(where=where, include=["metadatas"])
            records = [_version_record(dict(m)) for m in found["metadatas"] or []]
            return [record for record in records if record.tenant == tenant]

        return await self._call(work)

    async def delete_versions(
        self,
        kb: str,
        tenant: str,
        doc_id: str,
        *,
        below: int | None = None,
        version: int | None = None,
    ) -> None:
        await self._delete(kb, "documents", _document_filter(tenant, doc_id, below, version))

    async def count_chunks(self, kb: str) -> int:
        def work() -> int:
            collection = self._collection(kb, "chunks", create=False)
            return 0 if collection is None else int(collection.count())

        return await self._call(work)

    async def aclose(self) -> None:
        self._collections.clear()
        client, self._client = self._client, None
        if client is not None:
            sessions = _http_sessions(client)
            # Releases, embedded, the SQLite files (Chroma shares one "system" per path or
            # server among a process's clients and stops it with the last one).
            with contextlib.suppress(KnowledgeStoreUnavailableError):
                await self._call(client.close)
            for session in sessions:
                session.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _delete(self, kb: str, kind: str, where: dict[str, Any]) -> None:
        def work() -> None:
            collection = self._collection(kb, kind, create=False)
            if collection is not None:
                collection.delete(where=where)

        await self._call(work)
