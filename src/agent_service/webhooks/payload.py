"""The body of a delivery: the task record as ``GET /v1/tasks/{task_id}`` shows it.

Built by ``worker.webhooks`` for each attempt (so ``task.webhook`` shows the attempts made
before this one). The record holds nothing secret (``key_id`` is a digest prefix of the API
key, never the key). These are the exact bytes signed: receivers verify them before parsing.
"""

from __future__ import annotations

import json

from agent_service.domain.approvals import Approval
from agent_service.domain.tasks import TaskRecord
from agent_service.webhooks.signing import APPROVAL_REQUIRED, TASK_FINISHED, delivery_id


def delivery_body(record: TaskRecord, attempt: int) -> bytes:
    """``{"event": "task.finished", "delivery": "<task_id>:<attempt>", "task": {...}}``."""
    document = {
        "event": TASK_FINISHED,
        "delivery": delivery_id(record.task_id, attempt),
        "task": record.model_dump(mode="json"),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def approval_body(record: TaskRecord, approval: Approval, attempt: int) -> bytes:
    """``{"event": "approval.required", "delivery": "<approval_id>:<attempt>", "approval":
    {...}, "task": {...}}``: a tool call of the task waits for a person's decision."""
    document = {
        "event": APPROVAL_REQUIRED,
        "delivery": delivery_id(approval.approval_id, attempt),
        "approval": approval.model_dump(mode="json"),
        "task": record.model_dump(mode="json"),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
