"""The process's knowledge bases: one vector store, and a ``KnowledgeBase`` per configured base.

``open_runtime`` opens one ``KnowledgeHub`` per process (the store is shared by every config
version, like the MCP toolset); ``build_snapshot`` asks it for the knowledge bases of a config
(each with the ``LiteLLMEmbedder`` of its embedding model) and their ``search_<kb>`` tools.
The CLI (``knowledge_cli``) opens one too. The store is Chroma, as ``AGENT_KNOWLEDGE_*``
settings say: a server (``chroma_url``) or embedded (``chroma_path``). With neither, every
knowledge base call fails with a 503 that names the settings, so a config that declares
knowledge bases still loads (and its other agents still serve).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from agent_service.agentconfig.knowledge import search_tool_name
from agent_service.agentconfig.model import AgentConfig
from agent_service.knowledge.base import KnowledgeBase
from agent_service.knowledge.chroma import ChromaOptions, ChromaStore
from agent_service.knowledge.documents import DocumentLimits
from agent_service.knowledge.errors import KnowledgeStoreUnavailableError
from agent_service.knowledge.store import ChunkRecord, DocumentVersion, StoredHit, VectorStore
from agent_service.knowledge.tool import KnowledgeSearchTool
from agent_service.llm.client import Transport
from agent_service.llm.embeddings import LiteLLMEmbedder
from agent_service.observability.knowledge import KnowledgeMetricsObserver
from agent_service.observability.metrics import Metrics
from agent_service.settings import KnowledgeSettings

NO_STORE = (
    "no vector store is configured for knowledge bases: set AGENT_KNOWLEDGE_CHROMA_URL (a "
    "Chroma server) or AGENT_KNOWLEDGE_CHROMA_PATH (embedded, one process)"
)


def chroma_options(settings: KnowledgeSettings) -> ChromaOptions | None:
    """Where the store is, from the settings; None when neither place is set."""
    if settings.chroma_url is None and settings.chroma_path is None:
        return None
    token = None
    if settings.chroma_token_file is not None:
        token = Path(settings.chroma_token_file).read_text(encoding="utf-8").strip() or None
    return ChromaOptions(
        path=settings.chroma_path if settings.chroma_url is None else None,
        url=settings.chroma_url,
        token=token,
        token_header=settings.chroma_token_header,
        collection_prefix=settings.collection_prefix,
        timeout_seconds=settings.timeout_seconds,
    )


class MissingStore:
    """The ``VectorStore`` of a process without one: every call is a 503 naming the settings."""

    async def add_chunks(self, kb: str, chunks: Sequence[ChunkRecord]) -> None:
        raise KnowledgeStoreUnavailableError(NO_STORE)

    async def query(
        self, kb: str, tenant: str, vector: Sequence[float], limit: int
    ) -> list[StoredHit]:
        raise KnowledgeStoreUnavailableError(NO_STORE)

    async def delete_chunks(
        self,
        kb: str,
        tenant: str,
        doc_id: str,
        *,
        below: int | None = None,
        version: int | None = None,
    ) -> None:
        raise KnowledgeStoreUnavailableError(NO_STORE)

    async def put_version(self, kb: str, record: DocumentVersion) -> None:
        raise KnowledgeStoreUnavailableError(NO_STORE)

    async def versions(
        self, kb: str, tenant: str, doc_ids: Sequence[str] | None = None
    ) -> list[DocumentVersion]:
        raise KnowledgeStoreUnavailableError(NO_STORE)

    async def delete_versions(
        self,
        kb: str,
        tenant: str,
        doc_id: str,
        *,
        below: int | None = None,
        version: int | None = None,
    ) -> None:
        raise KnowledgeStoreUnavailableError(NO_STORE)

    async def count_chunks(self, kb: str) -> int:
        raise KnowledgeStoreUnavailableError(NO_STORE)

    async def aclose(self) -> None:
        return None


class KnowledgeHub:
    """One vector store for the process, and the knowledge bases each config declares."""

    def __init__(
        self,
        settings: KnowledgeSettings,
        metrics: Metrics,
        *,
        secrets_dir: Path,
        store: VectorStore | None = None,
        transport: Transport = "auto",
    ) -> None:
        options = chroma_options(settings)
        self.mode = "none" if options is None else options.mode
        self.store: VectorStore = store or (
            ChromaStore(options) if options is not None else MissingStore()
        )
        self._transport: Transport = transport
        self._observer = KnowledgeMetricsObserver(metrics)
        self._limits = DocumentLimits(max_bytes=settings.max_document_bytes)
        self._secrets_dir = secrets_dir
        self._metrics = metrics

    @property
    def limits(self) -> DocumentLimits:
        return self._limits

    def bases(self, config: AgentConfig) -> dict[str, KnowledgeBase]:
        """The knowledge bases of ``config`` by name (cheap: the store is shared)."""
        bases: dict[str, KnowledgeBase] = {}
        embedders: dict[str, LiteLLMEmbedder] = {}
        for spec in config.knowledge_bases:
            model = spec.embedding_model
            if model not in embedders:
                embedders[model] = LiteLLMEmbedder(
                    config.model(model),
                    config.retry,
                    secrets_dir=self._secrets_dir,
                    transport=self._transport,
                )
            bases[spec.name] = KnowledgeBase(
                spec, embedders[model], self.store, observer=self._observer, limits=self._limits
            )
        self._metrics.prime_knowledge(bases)
        return bases

    async def aclose(self) -> None:
        await self.store.aclose()


def search_tools(bases: Mapping[str, KnowledgeBase]) -> dict[str, KnowledgeSearchTool]:
    """The ``search_<kb>`` tool of each knowledge base, by tool name."""
    return {search_tool_name(name): KnowledgeSearchTool(kb) for name, kb in bases.items()}
