"""A knowledge base's documents: ``POST/GET /v1/knowledge/{kb}/documents``, ``DELETE .../{id}``.

Documents belong to the caller's tenant: a tenant lists, replaces and deletes only its own, and
the same document id is a different document in each tenant. ``POST`` checks the document here
(type, size, id, metadata, that it parses: every refusal is a 4xx before anything is queued or
written), answers ``200 unchanged`` without queueing anything when the tenant's live document
holds the same bytes already, and otherwise queues an ingestion task (``202``, then
``GET /v1/tasks/{task_id}``): embedding is slow, so a worker does it (``worker.ingestion``). The
document's bytes are written next to the task record in the transaction that queues it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from agent_service.agentconfig.knowledge import KB_NAME_PATTERN
from agent_service.api.deps import CallerDep, JsonBody, QueueDep, SettingsDep, SnapshotDep
from agent_service.api.errors import ApiError
from agent_service.api.schemas import ERROR_RESPONSES
from agent_service.domain.errors import ErrorType
from agent_service.domain.knowledge import INGESTION_AGENT, IngestionJob, MetadataValue
from agent_service.domain.runs import RunRequest
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.knowledge.base import DocumentInfo, DocumentUpload, KnowledgeBase, check_upload
from agent_service.knowledge.documents import parse_document
from agent_service.knowledge.errors import KnowledgeError
from agent_service.observability.tracing import current_trace_id
from agent_service.settings import KnowledgeSettings
from agent_service.store.uploads import UploadStore

router = APIRouter(tags=["knowledge"])

DOCUMENTS_ROUTE = "/v1/knowledge/{kb}/documents"


def document_body_bytes(settings: KnowledgeSettings) -> int:
    """The body limit of ``POST`` on ``DOCUMENTS_ROUTE``: the largest document as base64
    (4/3 of its size) plus room for its fields."""
    return settings.max_document_bytes * 4 // 3 + 64 * 1024


KbPath = Annotated[str, Path(pattern=KB_NAME_PATTERN, description="A knowledgeBases name.")]


class DocumentBody(BaseModel):
    """A document to ingest: text in ``content``, or any type (PDF) in ``content_base64``."""

    document_id: str = Field(
        min_length=1, max_length=256, description="Its id in the tenant's knowledge base; "
        "the same id again replaces the document (or is a no-op for the same content).",
    )  # fmt: skip
    # Not nullable in the schema: a client sends one of the two (the schema's oneOf).
    content: str | SkipJsonSchema[None] = Field(
        default=None, description="The document as text (UTF-8)."
    )
    content_base64: str | SkipJsonSchema[None] = Field(
        default=None, description="The document's bytes, base64 (PDF, or any type)."
    )
    content_type: str | None = Field(
        default=None,
        max_length=100,
        description="text/plain, text/markdown, text/html or application/pdf (unset: from "
        "filename's extension).",
    )
    filename: str | None = Field(default=None, max_length=256)
    title: str | None = Field(default=None, max_length=200, description="Unset: from the content.")
    uri: str | None = Field(default=None, max_length=2048, description="Shown in sources.")
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict, description="Up to 32 flat values, kept with the document."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["content"]}, {"required": ["content_base64"]}]},
    )

    @model_validator(mode="after")
    def _one_content(self) -> DocumentBody:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of content and content_base64")
        return self

    def data(self) -> bytes:
        if self.content is not None:
            return self.content.encode("utf-8")
        try:
            return base64.b64decode(self.content_base64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400, ErrorType.INVALID_REQUEST, "content_base64 is not valid base64"
            ) from None


class DocumentQueued(BaseModel):
    kb: str
    document_id: str
    status: str = Field(description="queued (a task ingests it), or unchanged (nothing to do).")
    task_id: str | None = Field(default=None, description="The ingestion task (when queued).")


class DocumentEntry(BaseModel):
    document_id: str
    title: str
    uri: str
    content_type: str
    chunks: int
    size_bytes: int
    version: int
    content_hash: str
    ingested_at: float
    metadata: dict[str, MetadataValue]

    @classmethod
    def of(cls, info: DocumentInfo) -> DocumentEntry:
        return cls(
            document_id=info.doc_id, title=info.title, uri=info.uri,
            content_type=info.content_type, chunks=info.chunks, size_bytes=info.size_bytes,
            version=info.version, content_hash=info.content_hash, ingested_at=info.committed_at,
            metadata=info.metadata,
        )  # fmt: skip


class DocumentList(BaseModel):
    kb: str
    documents: list[DocumentEntry]
    chunks: int = Field(description="Chunks of the listed documents.")


class DocumentDeleted(BaseModel):
    kb: str
    document_id: str
    deleted: bool = True


async def get_uploads(request: Request) -> UploadStore:
    runtime = request.state.runtime
    return UploadStore(runtime.redis, runtime.keys, runtime.settings.tasks.ttl_seconds)


UploadsDep = Annotated[UploadStore, Depends(get_uploads)]


def _knowledge_base(snapshot: SnapshotDep, kb: str) -> KnowledgeBase:
    found = snapshot.knowledge.get(kb)
    if found is None:
        raise ApiError(404, ErrorType.NOT_FOUND, f"knowledge base {kb!r} not found")
    return found


def _refused(exc: KnowledgeError) -> ApiError:
    return ApiError(exc.status, exc.type, exc.message)


@router.post(
    DOCUMENTS_ROUTE,
    status_code=202,
    response_model=DocumentQueued,
    responses={200: {"model": DocumentQueued}, **ERROR_RESPONSES},
    dependencies=[JsonBody],
)
async def add_document(
    *,
    kb: KbPath,
    body: DocumentBody,
    response: Response,
    snapshot: SnapshotDep,
    settings: SettingsDep,
    queue: QueueDep,
    uploads: UploadsDep,
    caller: CallerDep,
) -> DocumentQueued:
    """Ingest a document (text, Markdown, HTML or PDF) into the caller's tenant: ``202`` with
    the ingestion task, or ``200`` with ``status: unchanged`` when the same bytes are there."""
    base = _knowledge_base(snapshot, kb)
    data = body.data()
    upload = DocumentUpload(
        doc_id=body.document_id, data=data, content_type=body.content_type,
        filename=body.filename, title=body.title, uri=body.uri, metadata=body.metadata,
    )  # fmt: skip
    try:
        check_upload(upload)
        # Parsing a large PDF takes CPU: off the event loop. The worker parses it again.
        await asyncio.to_thread(
            parse_document, data, content_type=body.content_type, filename=body.filename,
            title=body.title, limits=base.limits,
        )  # fmt: skip
        if await base.unchanged(body.document_id, data, tenant=caller.tenant) is not None:
            response.status_code = 200
            return DocumentQueued(kb=kb, document_id=body.document_id, status="unchanged")
    except KnowledgeError as exc:
        raise _refused(exc) from None
    job = IngestionJob(
        kb=kb, document_id=body.document_id, content_type=body.content_type,
        filename=body.filename, title=body.title, uri=body.uri, metadata=body.metadata,
        size_bytes=len(data), version=time.time_ns(),
    )  # fmt: skip
    record = TaskRecord(
        task_id=uuid.uuid4().hex,
        status=TaskStatus.QUEUED,
        queue=settings.worker.queue,
        request=RunRequest(
            message=f"ingest document {body.document_id!r} into knowledge base {kb!r}",
            tenant=caller.tenant,
        ),
        ingestion=job,
        agent=INGESTION_AGENT,
        config_generation=snapshot.version.generation,
        created_at=time.time(),
        trace_id=current_trace_id(),
        tenant=caller.tenant,
        key_id=caller.key_id,
    )
    await queue.submit(record, also=lambda pipe: uploads.add(pipe, record.task_id, data))
    response.headers["Location"] = f"/v1/tasks/{record.task_id}"
    return DocumentQueued(
        kb=kb, document_id=body.document_id, status="queued", task_id=record.task_id
    )


@router.get(DOCUMENTS_ROUTE, response_model=DocumentList, responses=ERROR_RESPONSES)
async def list_documents(*, kb: KbPath, snapshot: SnapshotDep, caller: CallerDep) -> DocumentList:
    """The caller's tenant's documents in ``kb``, by id, with their chunk counts."""
    base = _knowledge_base(snapshot, kb)
    try:
        found = await base.documents(tenant=caller.tenant)
    except KnowledgeError as exc:
        raise _refused(exc) from None
    entries = [DocumentEntry.of(info) for info in sorted(found, key=lambda d: d.doc_id)]
    return DocumentList(kb=kb, documents=entries, chunks=sum(e.chunks for e in entries))


@router.delete(
    "/v1/knowledge/{kb}/documents/{document_id:path}",
    response_model=DocumentDeleted,
    responses=ERROR_RESPONSES,
)
async def delete_document(
    *,
    kb: KbPath,
    document_id: Annotated[str, Path(min_length=1, max_length=256)],
    snapshot: SnapshotDep,
    caller: CallerDep,
) -> DocumentDeleted:
    """Delete one of the caller's tenant's documents (404 if it has none by that id): searches
    stop finding it at once, its chunks go right after."""
    base = _knowledge_base(snapshot, kb)
    try:
        await base.delete(document_id, tenant=caller.tenant)
    except KnowledgeError as exc:
        raise _refused(exc) from None
    return DocumentDeleted(kb=kb, document_id=document_id)
