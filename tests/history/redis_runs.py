"""Finished tasks in Redis, written through ``TaskStore`` as the API and the worker write them,
then put on the history outbox."""

from __future__ import annotations

from agent_service.domain.tasks import TaskRecord, TaskStatus, WebhookState
from agent_service.store.history_outbox import HistoryOutbox
from agent_service.store.tasks import TaskStore


async def finish_in_redis(
    store: TaskStore, outbox: HistoryOutbox, record: TaskRecord, webhook: bool = False
) -> TaskRecord:
    """Create ``record`` queued, start it, finish it as ``record`` says, put it on the outbox
    (the worker will do the last in the finish transaction); the record as Redis holds it."""
    queued = record.model_copy(
        update={
            "status": TaskStatus.QUEUED,
            "result": None,
            "error": None,
            "usage": None,
            "started_at": None,
            "finished_at": None,
            "attempts": 0,
            "webhook": WebhookState(url="https://example.com/hook") if webhook else None,
        }
    )
    async with store._redis.pipeline(transaction=True) as pipe:  # as the producer does
        store.add_create(pipe, queued)
        await pipe.execute()
    await store.start_attempt(record.task_id)
    await store.finish(
        record.task_id,
        record.status,
        result=record.result,
        error=record.error,
        usage=record.usage,
        webhook=webhook,
    )
    await outbox.enqueue_task(record.task_id)
    finished = await store.get(record.task_id)
    assert finished is not None
    return finished
