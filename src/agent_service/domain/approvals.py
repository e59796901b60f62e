"""Human approval of tool calls: what a paused run asks for, what a person decides, the record.

The agent loop raises ``ApprovalPending`` when the model calls a tool its agent gates; the worker
(queued runs) or the API (a sync run handed over to a task) turns it into an ``Approval`` record
(``store.approvals``), and the decision comes back to the resumed run as an
``ApprovalDecision``. Pure data, no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agent_service.domain.tasks import WebhookState

Decision = Literal["approve", "reject", "timeout"]
"""What happened to a call: a person approved or rejected it, or nobody decided in time. Also
the ``decision`` label of ``agent_approvals_total``."""
DECISIONS: tuple[Decision, ...] = ("approve", "reject", "timeout")

ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "cancelled"]
"""``cancelled``: the task ended (cancelled, interrupted) before anyone decided."""
STATUS_OF_DECISION: dict[Decision, ApprovalStatus] = {
    "approve": "approved",
    "reject": "rejected",
    "timeout": "expired",
}

OnTimeout = Literal["reject", "fail"]
"""On expiry the call is rejected and the model told so (``reject``), or the task fails with
``approval_timeout`` (``fail``)."""


class ApprovalRequest(BaseModel):
    """A tool call waiting for a person: where in the run it is and what the model asked."""

    step: int
    """The journal step the call's result will be recorded at (its idempotency key's step)."""
    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    reasoning: str | None = None
    """The model's text next to the call (its stated reason), if it wrote any."""


class ApprovalDecision(BaseModel):
    """The outcome of an approval, as the resumed run reads it (per journal step)."""

    approval_id: str
    decision: Decision
    arguments: dict[str, Any] | None = None
    """Arguments the approver put in place of the model's (approve only)."""
    comment: str | None = None
    on_timeout: OnTimeout = "reject"
    timeout_seconds: float = 0.0


class Approval(BaseModel):
    """An approval record: ``GET /v1/approvals`` and the ``approval_required`` event show it."""

    approval_id: str
    task_id: str
    tenant: str
    agent: str
    tool: str
    arguments: dict[str, Any]
    reasoning: str | None = None
    step: int
    status: ApprovalStatus = "pending"
    created_at: float
    expires_at: float
    on_timeout: OnTimeout = "reject"
    decision: Decision | None = None
    decided_at: float | None = None
    decided_arguments: dict[str, Any] | None = Field(
        default=None, description="Arguments the approver put in place of the model's."
    )
    comment: str | None = None
    webhook: WebhookState | None = None
    """The ``approval.required`` webhook of the task, when it has a webhook URL."""


class ApprovalPending(Exception):  # noqa: N818 - a pause, not an error
    """Raised by the agent loop: the run stops at a tool call a person must approve.

    Whoever ran the loop keeps the run: the worker parks the task (``awaiting_approval``), the
    API hands a sync run over to a task. The steps done so far are in the run's journal.
    """

    def __init__(self, request: ApprovalRequest, timeout_seconds: float, on_timeout: OnTimeout):
        super().__init__(f"tool call {request.tool!r} at step {request.step} awaits approval")
        self.request = request
        self.timeout_seconds = timeout_seconds
        self.on_timeout = on_timeout
