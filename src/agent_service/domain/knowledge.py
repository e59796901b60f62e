"""A queued ingestion: which document goes into which knowledge base, as its task carries it.

``POST /v1/knowledge/{kb}/documents`` checks the document (type, size, id, metadata, that it
parses), then queues a task whose record holds an ``IngestionJob`` (the document's bytes wait
next to the record in Redis, ``store.uploads``); a worker embeds and stores it
(``worker.ingestion``) and records an ``IngestionOutcome`` as the task's structured output.
Pure data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MetadataValue = str | int | float | bool

INGESTION_AGENT = "knowledge-ingestion"
"""The ``agent`` an ingestion task records (task metrics, the run history and its usage): it
runs no agent, and its embedding tokens and cost must be told apart from runs'."""


class IngestionJob(BaseModel):
    """The document of an ingestion task (its bytes are stored apart)."""

    kb: str
    document_id: str
    content_type: str | None = None
    filename: str | None = None
    title: str | None = None
    uri: str | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    size_bytes: int = 0
    version: int = Field(
        description="Submission time in nanoseconds: of two ingestions of one document, the "
        "later submission wins, whichever ends first."
    )


class IngestionOutcome(BaseModel):
    """What an ingestion did (a task's ``result.output``)."""

    kb: str
    document_id: str
    status: Literal["created", "replaced", "unchanged", "superseded"]
    """``unchanged``: the same content was there already, nothing was embedded (a no-op);
    ``superseded``: a later submission of the document won."""
    version: int
    chunks: int
