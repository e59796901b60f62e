"""Executing a queued ingestion: a document into a knowledge base, as a task.

Called by ``worker.execution`` for a task whose record holds an ``IngestionJob`` (queued by
``POST /v1/knowledge/{kb}/documents``), once the delivery is counted and the record is
``running``. Takes the document's bytes from ``store.uploads``, ingests them with the
knowledge base of the config in force (``KnowledgeBase.ingest``: a no-op for content already
there, an atomic replacement for changed content), and records the outcome as the task's
result: ``answer`` says what happened, ``output`` is the ``IngestionOutcome``, ``usage`` the
embedding tokens and cost. The task's event stream gets one ``status`` event per stage
(parsing, embedding with chunk counts, storing).

A redelivered ingestion simply runs again: the version was fixed at submission, so a second
run finds its own version committed (``unchanged``) or finishes the one a lost worker began.
"""

from __future__ import annotations

import asyncio
import logging
import time

from agent_service.domain.errors import AgentError, DependencyUnavailableError, ErrorType
from agent_service.domain.knowledge import INGESTION_AGENT, IngestionJob, IngestionOutcome
from agent_service.domain.runs import RunEvent, RunResult, Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus
from agent_service.knowledge.base import DocumentUpload, IngestProgress, KnowledgeBase
from agent_service.observability.metrics import Metrics
from agent_service.store.tasks import TaskStore
from agent_service.store.uploads import UploadStore
from agent_service.worker.storage_full import finish_when_stored, progress_sink

log = logging.getLogger(__name__)


async def execute_ingestion(
    *,
    tasks: TaskStore,
    uploads: UploadStore | None,
    metrics: Metrics,
    record: TaskRecord,
    job: IngestionJob,
    kb: KnowledgeBase | None,
) -> TaskStatus:
    """Ingest ``job`` for ``record``'s tenant and record how it ended."""
    task_id, started = record.task_id, time.monotonic()
    if kb is None:
        missing = f"knowledge base {job.kb!r} is not in the agent config in force"
        return await _fail(tasks, metrics, record, started, (ErrorType.NOT_FOUND, missing))
    data = await uploads.get(task_id) if uploads is not None else None
    if data is None or uploads is None:
        expired = "the document's bytes expired before a worker took the task"
        return await _fail(tasks, metrics, record, started, (ErrorType.NOT_FOUND, expired))
    upload = DocumentUpload(
        doc_id=job.document_id, data=data, content_type=job.content_type,
        filename=job.filename, title=job.title, uri=job.uri, metadata=job.metadata,
    )  # fmt: skip
    stages = _Stages(tasks, task_id)
    try:
        result = await kb.ingest(
            upload, tenant=record.tenant, version=job.version, on_progress=stages
        )
    except DependencyUnavailableError:
        raise  # Redis: hand the message back, like a run
    except AgentError as exc:
        await stages.flush()
        return await _fail(tasks, metrics, record, started, (exc.type, exc.message))
    await stages.flush()
    outcome = IngestionOutcome(
        kb=job.kb, document_id=job.document_id, status=result.status,
        version=result.version, chunks=result.chunks,
    )  # fmt: skip
    answer = {
        "created": f"Ingested {job.document_id!r}: {result.chunks} chunks.",
        "replaced": f"Replaced {job.document_id!r}: {result.chunks} chunks.",
        "unchanged": f"{job.document_id!r} is unchanged: nothing to do.",
        "superseded": f"A later submission of {job.document_id!r} won: nothing kept.",
    }[result.status]
    run = RunResult(
        answer=answer, steps=[], usage=Usage.from_tokens(result.usage),
        model=kb.spec.embedding_model, duration_ms=round(result.duration_ms, 3),
        output=outcome.model_dump(mode="json"), trace_id=record.trace_id, agent=INGESTION_AGENT,
    )  # fmt: skip
    await finish_when_stored(
        tasks, task_id, TaskStatus.SUCCEEDED, result=run, webhook=_hook(record)
    )
    await _forget(uploads, task_id)
    metrics.task_finished(record.queue, "succeeded", time.monotonic() - started, 0, INGESTION_AGENT)
    log.info(
        "document %s",
        result.status,
        extra={"task_id": task_id, "kb": job.kb, "chunks": result.chunks},
    )
    return TaskStatus.SUCCEEDED


class _Stages:
    """The ingestion's progress callback: one ``status`` event per stage (not per batch),
    written in order; ``flush`` waits for them before the task's end is recorded."""

    def __init__(self, tasks: TaskStore, task_id: str) -> None:
        self._sink = progress_sink(tasks, task_id)
        self._seen: set[str] = set()
        self._last: asyncio.Future[None] | None = None

    def __call__(self, progress: IngestProgress) -> None:
        if progress.stage in self._seen or progress.stage == "done":
            return
        self._seen.add(progress.stage)
        event = RunEvent(
            type="status",
            data={"status": "running", "stage": progress.stage, "total": progress.total},
        )
        self._last = asyncio.ensure_future(self._after(self._last, event))

    async def _after(self, previous: asyncio.Future[None] | None, event: RunEvent) -> None:
        if previous is not None:
            await previous
        await self._sink(event)

    async def flush(self) -> None:
        if self._last is not None:
            await self._last


async def _fail(
    tasks: TaskStore,
    metrics: Metrics,
    record: TaskRecord,
    started: float,
    error: tuple[str, str],
) -> TaskStatus:
    """Record the task ``failed`` with ``error`` (type, message)."""
    error_type, message = error
    log.warning("ingestion failed: %s", message, extra={"task_id": record.task_id})
    await finish_when_stored(
        tasks,
        record.task_id,
        TaskStatus.FAILED,
        error=TaskError(type=error_type, message=message),
        webhook=_hook(record),
    )
    metrics.task_finished(record.queue, "failed", time.monotonic() - started, 0, INGESTION_AGENT)
    return TaskStatus.FAILED


def _hook(record: TaskRecord) -> bool:
    return record.webhook is not None


async def _forget(uploads: UploadStore, task_id: str) -> None:
    """Drop the document's bytes once ingested (they expire anyway)."""
    try:
        await uploads.delete(task_id)
    except DependencyUnavailableError:
        log.warning("document bytes not deleted (Redis); they expire", extra={"task_id": task_id})
