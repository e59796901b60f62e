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

from agent_service.agent.loop import Agent, RunFailedError
from agent_service.agent.ports import RunGuard
from agent_service.api.deps import (
    CallerDep,
    GateDep,
    JsonBody,
    SettingsDep,
    SnapshotDep,
    SyncRunsDep,
)
from agent_service.api.errors import ApiError, run_error_status
from agent_service.api.schemas import ERROR_RESPONSES, RunBody
from agent_service.api.sse import KEEPALIVE, SSE_HEADERS, sse_event
from agent_service.api.sync_runs import SyncRun
from agent_service.domain.runs import RunEvent, RunResult, Step
from agent_service.observability.metrics import Metrics

router = APIRouter(tags=["runs"])
log = logging.getLogger(__name__)


@router.post(
    "/v1/chat",
    response_model=RunResult,
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"text/event-stream": {}}, "description": "Answer (JSON or SSE)"},
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
    sync_runs: SyncRunsDep,
) -> RunResult | StreamingResponse:
    """Run the agent on ``message`` and answer when it is done (or stream with ``"stream": true``).

    SSE events: ``step`` (an LLM or tool call ended), ``delta`` (answer text), ``done`` (the
    result), ``error`` (the error shape's ``error`` object). The run's id is in the
    ``X-Run-Id`` header (and the result's ``run_id``): feedback takes it.
    """
    config = snapshot.config  # the config in force when the run starts: it keeps it to its end
    agent = gate.check(body, snapshot, caller)
    rate = await gate.admit(caller, config)
    run = sync_runs.begin(body.to_run_request(caller.tenant, agent.name), caller)
    guard = gate.guard(caller, config)
    metrics = gate.metrics
    headers = {**rate, **run.headers}
    if body.stream:
        keepalive = settings.api.sse_keepalive_seconds
        return StreamingResponse(
            stream_run(agent, run, keepalive, metrics, guard),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **headers},
        )
    response.headers.update(headers)
    return await run_sync(agent, run, metrics, guard, headers)


async def run_sync(
    agent: Agent,
    run: SyncRun,
    metrics: Metrics,
    guard: RunGuard | None,
    headers: dict[str, str],
) -> RunResult:
    """A sync run, counted and archived; a failed run raises the ``ApiError`` of its type,
    with ``headers``."""
    try:
        result = await agent.run(run.request, mode="sync", guard=guard)
    except RunFailedError as exc:
        metrics.run_finished("sync", "failed", len(exc.steps), agent.name)
        run.failed(exc)
        raise ApiError(run_error_status(exc.type), exc.type, exc.message, headers=headers) from exc
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
) -> AsyncIterator[RunEvent | None]:
    """A streamed run's events (``step``, ``delta``, then ``done`` or ``error``), with None
    for every ``keepalive`` seconds of silence. Closing the iterator cancels the run (it is
    archived ``cancelled`` with the steps it had made)."""
    events: asyncio.Queue[RunEvent | None] = asyncio.Queue()
    steps: list[dict[str, object]] = []

    async def sink(event: RunEvent) -> None:
        if event.type == "step":
            steps.append(event.data)
        await events.put(event)

    async def produce() -> None:
        try:
            result = await agent.run(run.request, mode="stream", sink=sink, guard=guard)
            metrics.run_finished("stream", "succeeded", len(result.steps), agent.name)
            result = run.succeeded(result)
            await events.put(RunEvent(type="done", data=result.model_dump(mode="json")))
        except RunFailedError as exc:
            metrics.run_finished("stream", "failed", len(exc.steps), agent.name)
            run.failed(exc)
            await events.put(
                RunEvent(type="error", data={"type": exc.type, "message": exc.message})
            )
        except asyncio.CancelledError:  # the client went away
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

    runner = asyncio.create_task(produce())
    try:
        while True:
            try:
                event = await asyncio.wait_for(events.get(), timeout=keepalive)
            except TimeoutError:
                yield None
                continue
            if event is None:  # produce() ended
                break
            yield event
    finally:
        # The client went away (or the run ended): never leave a run behind.
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def stream_run(
    agent: Agent,
    run: SyncRun,
    keepalive: float,
    metrics: Metrics,
    guard: RunGuard | None = None,
) -> AsyncIterator[bytes]:
    """``run_events`` as SSE bytes (keep-alive comments for the silences)."""
    async for event in run_events(agent, run, keepalive, metrics, guard):
        yield KEEPALIVE if event is None else sse_event(event.type, event.data)
