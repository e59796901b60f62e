"""The task record of a queued run: what ``GET /v1/tasks/{task_id}`` returns.

``store`` persists it in Redis; ``worker`` moves it through its states.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel

from agent_service.domain.knowledge import IngestionJob
from agent_service.domain.runs import DEFAULT_TENANT, RunRequest, RunResult, Usage


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    """Paused at a tool call a person must approve; no worker holds it while it waits."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class TaskAttempt(BaseModel):
    """One delivery of a task to a worker, and where in the run's step journal it began."""

    attempt: int
    started_at: float
    resumed_at_step: int = 0
    """Steps of the journal replayed, not run again (0: the run started from its beginning)."""
    trigger: Literal["submitted", "redelivered", "approval"] = "submitted"
    """Why this attempt began: the first delivery, a redelivery after a worker was lost, or the
    decision on an approval the run was waiting for."""


class TaskError(BaseModel):
    type: str
    message: str


class WebhookDelivery(BaseModel):
    """One attempt to deliver a task's completion webhook."""

    attempt: int
    at: float
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None


class WebhookState(BaseModel):
    """The completion webhook of a task and its delivery history."""

    url: str
    status: str = "pending"
    """``pending`` (not yet due), ``delivering``, ``delivered`` or ``dead`` (retries exhausted)."""
    attempts: list[WebhookDelivery] = []


class TaskRecord(BaseModel):
    """A queued run. Timestamps are Unix seconds (float). ``tenant`` owns it: other tenants
    see it as not found."""

    task_id: str
    status: TaskStatus
    queue: str
    request: RunRequest
    created_at: float
    tenant: str = DEFAULT_TENANT
    agent: str | None = None
    """The agent the task runs (resolved at submission: the request's, else the default)."""
    config_generation: int | None = None
    """Generation of the agent config in force at submission."""
    key_id: str | None = None
    """Id of the API key that submitted it (its per-minute token rate is charged)."""
    idempotency_key: str | None = None
    cancel_requested_at: float | None = None
    webhook: WebhookState | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    attempt_log: list[TaskAttempt] = []
    """Each attempt, oldest first, with the journal step it resumed at."""
    approval_id: str | None = None
    """The approval the task waits for (status ``awaiting_approval``)."""
    result: RunResult | None = None
    error: TaskError | None = None
    usage: Usage | None = None
    trace_id: str | None = None
    metadata: dict[str, Any] | None = None
    ingestion: IngestionJob | None = None
    """Set for a knowledge base ingestion (``POST /v1/knowledge/{kb}/documents``): the worker
    ingests this document instead of running an agent; ``request`` only describes it."""


class QueueStats(BaseModel):
    """What the broker holds for one queue (read at scrape time for metrics)."""

    queue: str
    depth: int
    oldest_age_seconds: float
