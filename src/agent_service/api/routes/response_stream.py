"""The Responses API's event streams: a live foreground run, a background response's task
events (resumable), and the replay of a response that ended. ``api.routes.responses`` answers
with them; ``api.openai.response_events`` makes the events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from agent_service.agent.loop import Agent
from agent_service.agent.ports import RunGuard
from agent_service.api.openai.response_events import ResponseEvents
from agent_service.api.openai.responses import (
    Outcome,
    StoredResponse,
    now_outcome,
    response_error,
)
from agent_service.api.routes.chat import run_events
from agent_service.api.sse import KEEPALIVE
from agent_service.api.sync_runs import SyncRun
from agent_service.domain.runs import RunEvent, RunResult, Step
from agent_service.observability.metrics import Metrics
from agent_service.store.responses import ResponseStore
from agent_service.store.tasks import TERMINAL_EVENTS, TaskStore


async def live_events(
    stored: StoredResponse,
    agent: Agent,
    run: SyncRun,
    store: ResponseStore,
    keep: bool,
    *,
    keepalive: float,
    metrics: Metrics,
    guard: RunGuard | None,
) -> AsyncIterator[bytes]:
    """A foreground run as the Responses API's events; stored at its end (unless not kept)."""
    events = ResponseEvents(stored)
    for chunk in events.begin("in_progress"):
        yield chunk
    async for event in run_events(agent, run, keepalive, metrics, guard):
        if event is None:
            yield KEEPALIVE
            continue
        outcome = _event_outcome(event)
        if outcome is not None:
            stored.outcome = outcome
            if keep:
                await store.put(run.request.tenant, stored.id, stored.model_dump_json())
        for chunk in _translate(events, event, outcome):
            yield chunk


def _event_outcome(event: RunEvent) -> Outcome | None:
    """The outcome a terminal run event announces (None for progress events)."""
    if event.type == "done":
        data = event.data.get("result", event.data)
        return now_outcome(RunResult.model_validate(data), None)
    if event.type == "error":
        error = event.data.get("error") or event.data
        text = str(error.get("message", ""))
        return now_outcome(None, response_error(str(error.get("type", "internal")), text))
    if event.type == "cancelled":
        outcome = now_outcome(None, response_error("cancelled", "the response was cancelled"))
        return outcome.model_copy(update={"status": "cancelled"})
    return None


def _translate(events: ResponseEvents, event: RunEvent, outcome: Outcome | None) -> list[bytes]:
    if outcome is not None:
        return events.finish(outcome)
    if event.type == "step":
        return events.step(Step.model_validate(event.data))
    if event.type == "delta":
        return events.delta(event.data["text"])
    if event.type == "status" and event.data.get("status") == "running":
        return events.running()
    return []


async def task_events(
    tasks: TaskStore, stored: StoredResponse, starting_after: int, keepalive: float
) -> AsyncIterator[bytes]:
    """A background response's events, from its task's event stream (from the start, so the
    sequence numbers are the same on every read; those up to ``starting_after`` skipped)."""
    assert stored.task_id is not None
    events = ResponseEvents(stored, starting_after)
    for chunk in events.begin("queued"):
        yield chunk
    after = "0"
    block_ms = int(keepalive * 1000)
    while True:
        batch = await tasks.read_events(stored.task_id, after, block_ms)
        if not batch:
            if await tasks.get(stored.task_id) is None:
                return
            yield KEEPALIVE
            continue
        for event_id, event in batch:
            after = event_id
            outcome = _event_outcome(event)
            for chunk in _translate(events, event, outcome):
                yield chunk
            if event.type in TERMINAL_EVENTS:
                return


async def replay(stored: StoredResponse, outcome: Outcome, after: int) -> AsyncIterator[bytes]:
    """The events of a foreground response that already ended."""
    events = ResponseEvents(stored, after)
    for chunk in [*events.begin("in_progress"), *events.finish(outcome)]:
        yield chunk
