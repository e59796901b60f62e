"""Knowledge bases in the agent config: name, description, embedding model, chunking, topK,
min score.

The ``knowledgeBases`` entries of ``AgentConfig`` (camelCase on the wire, bounds and
descriptions that become the CRD's schema); an agent lists the ones it may search in
``agents[].knowledge`` and gets a ``search_<name>`` tool for each (``references`` checks the
names). ``knowledge.base.KnowledgeBase`` runs one. The defaults hold on the retrieval question
set of ``tests/integration/data/docs_questions.yaml`` with the simulator's embeddings: recall@5
0.97 (docs/knowledge.md gives the figures).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from agent_service.agentconfig.spec import Spec

KB_NAME_PATTERN = r"^[a-z0-9]([a-z0-9_-]{0,55}[a-z0-9])?$"
"""Lower-case letters, digits, ``_`` and ``-``, at most 57 characters: ``search_<name>`` stays a
valid tool name (64 characters) and ``kb-<name>-chunks`` a valid Chroma collection name."""

SEARCH_TOOL_PREFIX = "search_"
"""An agent's tool for knowledge base ``docs`` is ``search_docs``."""


def search_tool_name(kb: str) -> str:
    """The name of the tool that searches knowledge base ``kb``."""
    return SEARCH_TOOL_PREFIX + kb


class ChunkingSpec(Spec):
    """How documents are cut: chunks of at most ``sizeTokens`` tokens (heading line included),
    consecutive chunks of one section sharing up to ``overlapTokens`` tokens. Tokens follow
    the project's approximation (within 1 % of OpenAI's cl100k_base on prose)."""

    size_tokens: int = Field(
        default=256, ge=32, le=8000, description="Largest chunk, in tokens (heading included)."
    )
    overlap_tokens: int = Field(
        default=32,
        ge=0,
        le=2000,
        description="Tokens a chunk repeats from the end of the previous one in its section.",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSpec:
        if self.overlap_tokens * 2 > self.size_tokens:
            raise ValueError("overlapTokens must be at most half of sizeTokens")
        return self


class KnowledgeBaseSpec(Spec):
    """A knowledge base: documents a team ingests, searched by the agents that list it."""

    name: str = Field(pattern=KB_NAME_PATTERN, description="Name; the tool is search_<name>.")
    description: str = Field(
        min_length=1,
        max_length=2000,
        description="What the base holds (the model reads it to decide when to search).",
    )
    embedding_model: str = Field(
        min_length=1,
        max_length=63,
        description="The configured model (kind: embedding) that embeds chunks and questions. "
        "Changing it needs a new knowledge base: vectors of two models do not compare.",
    )
    chunking: ChunkingSpec = Field(
        default_factory=ChunkingSpec, description="How documents are cut into chunks."
    )
    top_k: int = Field(default=5, ge=1, le=50, description="Chunks a search returns at most.")
    min_score: float = Field(
        default=0.1,
        ge=-1.0,
        le=1.0,
        description="Lowest cosine similarity of a returned chunk (1 = same direction).",
    )
