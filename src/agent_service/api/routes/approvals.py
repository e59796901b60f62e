"""Approvals of tool calls: ``POST /v1/tasks/{task_id}/approvals/{approval_id}`` decides one,
``GET /v1/approvals`` lists the caller's tenant's.

A decision resumes the paused run on any worker (``store.approvals.decide`` queues its task
again). The same decision sent twice is a no-op (``200``, ``idempotent_replay``); a different
one is ``409``. Approvals belong to the tenant of their task: another tenant's answer 404,
exactly as unknown ones.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field

from agent_service.api.deps import (
    CallerDep,
    DurableDep,
    JsonBody,
    MetricsDep,
    QueueDep,
    SnapshotDep,
    TasksDep,
)
from agent_service.api.errors import ApiError
from agent_service.api.schemas import ERROR_RESPONSES
from agent_service.domain.approvals import Approval, ApprovalStatus
from agent_service.domain.callers import Caller
from agent_service.domain.errors import ErrorType
from agent_service.runtime import Snapshot
from agent_service.store.approvals import Decided

router = APIRouter(tags=["approvals"])

_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_LISTED = 500


class DecisionBody(BaseModel):
    """A person's decision on a paused tool call."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="With `approve`: arguments to call the tool with instead of the model's "
        "(checked against the tool's parameters).",
    )
    comment: str | None = Field(
        default=None, max_length=2000, description="Why; a rejection's comment reaches the model."
    )


class DecisionAnswer(BaseModel):
    approval: Approval
    idempotent_replay: bool = Field(
        default=False, description="True when this decision had been made already (no-op)."
    )


class ApprovalList(BaseModel):
    data: list[Approval]


def _not_found(approval_id: str) -> ApiError:
    return ApiError(404, ErrorType.NOT_FOUND, f"approval {approval_id!r} not found")


@router.post(
    "/v1/tasks/{task_id}/approvals/{approval_id}",
    response_model=DecisionAnswer,
    responses={
        **ERROR_RESPONSES,
        409: {
            "model": ERROR_RESPONSES[400]["model"],
            "description": "Another decision was made, or the task no longer waits for it",
        },
    },
    dependencies=[JsonBody],
)
async def decide(
    *,
    task_id: str,
    approval_id: str,
    body: DecisionBody,
    caller: CallerDep,
    durable: DurableDep,
    tasks: TasksDep,
    queue: QueueDep,
    snapshot: SnapshotDep,
    metrics: MetricsDep,
) -> DecisionAnswer:
    """Approve (optionally with other arguments) or reject a tool call its task waits for; the
    run then resumes from its journal on any worker."""
    if not (_ID.match(task_id) and _ID.match(approval_id)):
        raise _not_found(approval_id)
    found = await durable.approvals.get_with_timeout(approval_id)
    if found is None or found[0].tenant != caller.tenant or found[0].task_id != task_id:
        raise _not_found(approval_id)
    approval, timeout = found
    if body.arguments is not None:
        if body.decision == "reject":
            raise ApiError(422, ErrorType.INVALID_REQUEST, "arguments: only with approve")
        _check_arguments(snapshot, caller, approval, body.arguments)
    record = await tasks.get(task_id)
    if record is None:
        raise _not_found(approval_id)
    decided = await durable.approvals.decide(
        approval,
        body.decision,
        queue=record.queue,
        message=queue.message(record),
        arguments=body.arguments,
        comment=body.comment,
        timeout_seconds=timeout,
    )
    _refuse(decided, approval, body.decision)
    if decided.outcome == "applied":
        metrics.approval_decided(approval.agent, approval.tool, body.decision)
    now = await durable.approvals.get(approval_id)
    return DecisionAnswer(approval=now or approval, idempotent_replay=decided.outcome == "same")


def _refuse(decided: Decided, approval: Approval, decision: str) -> None:
    """The error of a decision that cannot be applied (none when applied or repeated)."""
    if decided.outcome == "missing":
        raise _not_found(approval.approval_id)
    if decided.outcome == "conflict":
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            f"approval {approval.approval_id!r} was already decided: {decided.detail or 'other'}"
            f" (not {decision}, or with other arguments)",
        )
    if decided.outcome == "ended":
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            f"task {approval.task_id!r} no longer waits for this approval "
            f"({decided.detail or 'expired'})",
        )


def _check_arguments(
    snapshot: Snapshot, caller: Caller, approval: Approval, arguments: dict[str, Any]
) -> None:
    """422 unless ``arguments`` fit the tool's parameters (when the tool is known now)."""
    agent = snapshot.agent_for(approval.agent, caller.tenant)
    tool = agent.tool(approval.tool) if agent is not None else None
    if tool is None:
        return
    schema = tool.spec.parameters
    try:
        validator = validator_for(schema, default=Draft202012Validator)(schema)
        error = next(iter(validator.iter_errors(arguments)), None)
    except SchemaError:  # a tool's own broken schema is not the approver's fault
        return
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            f"arguments: {where}: {error.message} (the parameters of {approval.tool})",
        )


@router.get("/v1/approvals", response_model=ApprovalList, responses=ERROR_RESPONSES)
async def list_approvals(
    caller: CallerDep,
    durable: DurableDep,
    status: Annotated[ApprovalStatus | None, Query(description="Only approvals in it.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
) -> ApprovalList:
    """The caller's tenant's approvals, newest first (``?status=pending``: those waiting)."""
    return ApprovalList(data=await durable.approvals.of_tenant(caller.tenant, status, limit))
