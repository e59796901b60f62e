"""``search_<kb>``: the tool an agent gets for each knowledge base it lists.

Built by the runtime's snapshot for every configured knowledge base (one per base, shared by
the agents that list it) and offered in their toolbox. The agent loop calls ``retrieve`` (the
``agent.ports.RetrievalTool`` port) with the run's tenant, so a search never crosses tenants,
and with the number its first hit gets: hits are numbered ``[1]``, ``[2]``... across the run,
the model cites them by number, and the run's result carries the cited ones as ``sources``
(``agent.sources``). ``invoke`` alone (no tenant) refuses: every caller must say whose
documents it searches.

The search runs inside a ``retrieval {kb}`` span (the question's ``embeddings {model}`` span of
``llm.embeddings`` under it) with the hit count; a store or embedding failure becomes a tool
error the model reads, like any tool's.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from agent_service.agentconfig.knowledge import search_tool_name
from agent_service.domain.errors import AgentError, ToolError
from agent_service.domain.messages import ToolSpec
from agent_service.domain.sources import Retrieval, Source
from agent_service.knowledge.base import KnowledgeBase, SearchHit

QUERY_MAX_CHARS = 2000
KB_ATTRIBUTE = "agent.knowledge_base"
HITS_ATTRIBUTE = "agent.retrieval.hits"
_tracer = trace.get_tracer("agent_service.knowledge")


def tool_spec(kb: KnowledgeBase) -> ToolSpec:
    """What the model is told about ``search_<kb>``: the base's description, how to cite."""
    return ToolSpec(
        name=search_tool_name(kb.name),
        description=(
            f"Search the knowledge base '{kb.name}': {kb.spec.description.strip()} "
            "Returns numbered passages, best first; answer from them and cite the ones you "
            "use as [n]."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "The question or keywords to search for.",
                }
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )


def format_hits(kb: str, hits: list[SearchHit], first_number: int) -> str:
    """The tool message: each hit as ``[n] title — uri`` then its chunk (heading path first)."""
    if not hits:
        return f"No passages of the knowledge base '{kb}' match this question."
    blocks = [f"Passages from the knowledge base '{kb}', best first. Cite them as [n]."]
    for number, hit in enumerate(hits, start=first_number):
        where = " — ".join(part for part in (hit.title, hit.uri) if part) or hit.doc_id
        blocks.append(f"[{number}] {where}\n{hit.text}")
    return "\n\n".join(blocks)


def to_source(hit: SearchHit, citation: int) -> Source:
    return Source(
        citation=citation,
        kb=hit.kb,
        document_id=hit.doc_id,
        title=hit.title,
        uri=hit.uri,
        chunk=hit.chunk_index,
        excerpt=hit.excerpt,
        score=hit.score,
    )


class KnowledgeSearchTool:
    """The ``search_<kb>`` tool of one knowledge base (``agent.ports.RetrievalTool``)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb
        self._spec = tool_spec(kb)

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    @property
    def kb(self) -> str:
        return self._kb.name

    async def invoke(self, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> str:
        raise ToolError("a knowledge search runs inside a run, for the run's tenant")

    async def retrieve(
        self, arguments: dict[str, Any], *, tenant: str, first_number: int = 1
    ) -> Retrieval:
        """Search for ``arguments["query"]`` in ``tenant``'s documents; hits are numbered
        from ``first_number``. Raises ``ToolError`` with a message the model may read."""
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("argument 'query' must be a non-empty string")
        query = query.strip()[:QUERY_MAX_CHARS]
        with _tracer.start_as_current_span(
            f"retrieval {self.kb}",
            kind=trace.SpanKind.INTERNAL,
            attributes={"gen_ai.operation.name": "retrieval", KB_ATTRIBUTE: self.kb},
        ) as span:
            try:
                found = await self._kb.search(query, tenant=tenant)
            except AgentError as exc:  # store unavailable, embedding model down: the model hears
                raise ToolError(f"the knowledge base '{self.kb}' failed: {exc.message}") from exc
            span.set_attribute(HITS_ATTRIBUTE, len(found.hits))
        sources = [to_source(hit, n) for n, hit in enumerate(found.hits, start=first_number)]
        return Retrieval(format_hits(self.kb, found.hits, first_number), sources)
