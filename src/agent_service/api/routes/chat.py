"""``POST /v1/chat``: run the agent now, as one JSON answer or as Server-Sent Events.

Each admitted run gets a run id (``X-Run-Id``, and ``run_id`` in the result) and, with history
on, is archived once it ends (``api.sync_runs``), off the request's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from agent_service.agent.journal import MemoryJournal
from agent_service.agent.loop import Agent, RunFailedError
from agent_service.agent.ports import RunGuard
from agent_service.api.deps import (
    CallerDep,
    DrainDep,
    DurableDep,
    GateDep,
    JsonBody,
    SettingsDep,
    SnapshotDep,
    SyncRunsDep,
    TasksDep,
)
from agent_service.api.drain import Drain, ShuttingDownError
from agent_service.api.errors import ApiError, run_error_status
from agent_service.api.handoff import SyncHandoff, continuation
from agent_service.api.schemas import ERROR_RESPONSES, RunBody
from agent_service.api.sessions import admit_sync
from agent_service.api.sse import KEEPALIVE, SSE_HEADERS, sse_event
from agent_service.api.sync_runs import SyncRun
from agent_service.domain.approvals import ApprovalPending
from agent_service.domain.errors import AgentError, ErrorType
from agent_service.domain.runs import RunEvent, RunRequest, RunResult, Step
from agent_service.observability.metrics import Metrics
from agent_service.store.approvals import approval_event

router = APIRouter(tags=["runs"])
log = logging.getLogger(__name__)


@router.post(
    "/v1/chat",
    response_model=RunResult,
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"text/event-stream": {}}, "description": "Answer (JSON or SSE)"},
        409: {
            "model": ERROR_RESPONSES[400]["model"],
            "description": "A tool call needs a person's approval (`approval_required`): the "
            "run continues as the task in Location; or the session has a run in progress",
        },
    },
    dependencies=[JsonBody],
)
async def chat(
    *,
    body: RunBody,
    response: Response,
    snapshot: SnapshotDep,
    gate: GateDep,
    settings: SettingsDep,
    caller: CallerDep,
    tasks: TasksDep,
    durable: DurableDep,
    drain: DrainDep,
    sync_runs: SyncRunsDep,
) -> RunResult | StreamingResponse:
    """Run the agent on ``message`` and answer when it is done (or stream with ``"stream": true``).

    SSE events: ``step`` (an LLM or tool call ended), ``delta`` (answer text), ``done`` (the
    result), ``error`` (the error shape's ``error`` object), or ``approval_required`` (a tool
    call needs a person's approval: the run continues as the task it names). The run's id is in
    the ``X-Run-Id`` header (and the result's ``run_id``): feedback takes it.
    """
    config = snapshot.config  # the config in force when the run starts: it keeps it to its end
    agent = gate.check(body, snapshot, caller)
    metrics = gate.metrics
    await admit_sync(
        agent,
        tenant=caller.tenant,
        session_id=body.session_id,
        tasks=tasks,
        durable=durable,
        metrics=metrics,
    )
    rate = await gate.admit(caller, config)
    run = sync_runs.begin(body.to_run_request(caller.tenant, agent.name), caller)
    guard = gate.guard(caller, config)
    handoff = SyncHandoff(
        durable.approvals, settings.worker.queue, caller, snapshot.version.generation
    )
    headers = {**rate, **run.headers}
    if body.stream:
        keepalive = settings.api.sse_keepalive_seconds
        return StreamingResponse(
            stream_run(agent, run, keepalive, metrics, guard, drain=drain, handoff=handoff),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    response.headers.update(headers)
    return await run_sync(agent, run, metrics, guard, headers, drain=drain, handoff=handoff)


async def run_sync(
    agent: Agent,
    run: SyncRun,
    metrics: Metrics,
    guard: RunGuard | None,
    headers: dict[str, str],
    *,
    drain: Drain | None = None,
    handoff: SyncHandoff | None = None,
) -> RunResult:
    """A sync run, counted and archived; a failed run raises the ``ApiError`` of its type, with
    ``headers``; one still going when ``drain``'s grace runs out, a 503 ``shutting_down``.

    A run reaching a tool call that needs approval is handed over to a task (``handoff``):
    409 ``approval_required`` naming it, with its ``Location`` (the task is archived when it
    ends, not this run)."""
    journal = SyncHandoff.journal_for(agent)
    running = agent.run(run.request, mode="sync", guard=guard, journal=journal)
    try:
        result = await (drain.within_grace(running) if drain is not None else running)
    except ApprovalPending as pending:
        run.handed_over()
        raise await _handed_over(
            agent, run.request, journal, pending, handoff=handoff, headers=headers
        ) from None
    except RunFailedError as exc:
        metrics.run_finished("sync", "failed", len(exc.steps), agent.name)
        run.failed(exc)
        raise ApiError(run_error_status(exc.type), exc.type, exc.message, headers=headers) from exc
    except ShuttingDownError as exc:
        metrics.run_finished("sync", "failed", 0, agent.name)
        run.shut_down(exc.message)
        raise ApiError(503, exc.type, exc.message, headers=headers) from exc
    except Exception:
        run.crashed()
        raise
    metrics.run_finished("sync", "succeeded", len(result.steps), agent.name)
    return run.succeeded(result)


async def run_events(
    agent: Agent,
    run: SyncRun,
    keepalive: float,
    metrics: Metrics,
    guard: RunGuard | None = None,
    *,
    drain: Drain | None = None,
    handoff: SyncHandoff | None = None,
) -> AsyncIterator[RunEvent | None]:
    """A streamed run's events (``step``, ``delta``, then ``done``, ``error``, or
    ``approval_required`` when the run was handed over to a task to wait for a person), with
    None for every ``keepalive`` seconds of silence. Closing the iterator cancels the run (it is
    archived ``cancelled`` with the steps it had made); so does the end of ``drain``'s grace,
    after an ``error`` event of type ``shutting_down``."""
    events: asyncio.Queue[RunEvent | None] = asyncio.Queue()
    produce = _produce(agent, run, events, metrics, guard=guard, handoff=handoff)
    runner = asyncio.create_task(produce)
    try:
        while True:
            try:
                event = await asyncio.wait_for(_next(events, drain), timeout=keepalive)
            except TimeoutError:
                yield None
                continue
            except ShuttingDownError as exc:
                metrics.run_finished("stream", "failed", 0, agent.name)
                run.shut_down(exc.message)
                yield RunEvent(type="error", data={"type": exc.type, "message": exc.message})
                break
            if event is None:  # produce() ended
                break
            yield event
    finally:
        # The client went away (or the run ended): never leave a run behind.
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def _produce(
    agent: Agent,
    run: SyncRun,
    events: asyncio.Queue[RunEvent | None],
    metrics: Metrics,
    *,
    guard: RunGuard | None,
    handoff: SyncHandoff | None,
) -> None:
    """Run ``run`` in stream mode, putting its events on ``events`` and None at its end."""
    steps: list[dict[str, object]] = []

    async def sink(event: RunEvent) -> None:
        if event.type == "step":
            steps.append(event.data)
        await events.put(event)

    journal = SyncHandoff.journal_for(agent)
    try:
        result = await agent.run(
            run.request, mode="stream", sink=sink, guard=guard, journal=journal
        )
        metrics.run_finished("stream", "succeeded", len(result.steps), agent.name)
        result = run.succeeded(result)
        await events.put(RunEvent(type="done", data=result.model_dump(mode="json")))
    except ApprovalPending as pending:
        run.handed_over()
        await events.put(await _approval_event(agent, run.request, journal, pending, handoff))
    except RunFailedError as exc:
        metrics.run_finished("stream", "failed", len(exc.steps), agent.name)
        run.failed(exc)
        await events.put(RunEvent(type="error", data={"type": exc.type, "message": exc.message}))
    except asyncio.CancelledError:  # the client went away, or the drain's grace ended
        run.interrupted([Step.model_validate(step) for step in steps])
        raise
    except Exception:  # already mid-stream: report in-band, the status line is sent
        log.exception("streamed run failed")
        run.crashed()
        await events.put(
            RunEvent(type="error", data={"type": "internal", "message": "internal error"})
        )
    finally:
        await events.put(None)


async def _next(events: asyncio.Queue[RunEvent | None], drain: Drain | None) -> RunEvent | None:
    """The next event, or ``ShuttingDownError`` once the drain's grace is over."""
    if drain is None:
        return await events.get()
    return await drain.within_grace(events.get())


async def stream_run(
    agent: Agent,
    run: SyncRun,
    keepalive: float,
    metrics: Metrics,
    guard: RunGuard | None = None,
    *,
    drain: Drain | None = None,
    handoff: SyncHandoff | None = None,
) -> AsyncIterator[bytes]:
    """``run_events`` as SSE bytes (keep-alive comments for the silences)."""
    events = run_events(agent, run, keepalive, metrics, guard, drain=drain, handoff=handoff)
    async for event in events:
        yield KEEPALIVE if event is None else sse_event(event.type, event.data)


async def _handed_over(
    agent: Agent,
    request: RunRequest,
    journal: MemoryJournal | None,
    pending: ApprovalPending,
    *,
    handoff: SyncHandoff | None,
    headers: dict[str, str],
) -> ApiError:
    """The 409 of a sync run that needs an approval (handed over to a task when it can be)."""
    if handoff is None:
        message = (
            f"tool {pending.request.tool!r} needs a person's approval: submit the run as a task"
        )
        return ApiError(409, ErrorType.APPROVAL_REQUIRED, message, headers=headers)
    approval = await handoff.park(agent, request, journal, pending)
    location = {"Location": f"/v1/tasks/{approval.task_id}"}
    return ApiError(
        409, ErrorType.APPROVAL_REQUIRED, continuation(approval), {**headers, **location}
    )


async def _approval_event(
    agent: Agent,
    request: RunRequest,
    journal: MemoryJournal | None,
    pending: ApprovalPending,
    handoff: SyncHandoff | None,
) -> RunEvent:
    """The last event of a stream whose run needs an approval: ``approval_required`` with the
    task that continues it (an ``error`` where the run cannot be handed over)."""
    if handoff is None:
        message = (
            f"tool {pending.request.tool!r} needs a person's approval: submit the run as a task"
        )
        return RunEvent(
            type="error", data={"type": ErrorType.APPROVAL_REQUIRED, "message": message}
        )
    try:
        approval = await handoff.park(agent, request, journal, pending)
    except AgentError as exc:  # Redis went away: the run cannot be kept
        return RunEvent(type="error", data={"type": exc.type, "message": exc.message})
    data = {**approval_event(approval), "message": continuation(approval)}
    return RunEvent(type="approval_required", data=data)
