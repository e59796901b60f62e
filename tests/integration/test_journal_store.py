"""The step journal's write on a real redis-server: one round trip records the entry, publishes
the step's event and reads the cancel flag for the guard's next check (issue 17); a stale
attempt writes nothing at all.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import pytest

from agent_service.agent.journal import llm_entry
from agent_service.agentconfig.model import RateLimits
from agent_service.domain.callers import Caller
from agent_service.domain.errors import AgentError, ErrorType
from agent_service.domain.journal import JournalConflictError, JournalEntry
from agent_service.domain.messages import LLMCompletion, TokenUsage
from agent_service.domain.runs import RunRequest, Step
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.store.client import Redis
from agent_service.store.journal import JournalStore
from agent_service.store.keys import Keys
from agent_service.store.limits import Limiter, RunGuards
from agent_service.store.tasks import TaskStore

pytestmark = pytest.mark.integration


def _entry(index: int, answer: str) -> JournalEntry:
    completion = LLMCompletion(
        content=answer, tool_calls=[], usage=TokenUsage(input_tokens=3, output_tokens=2),
        model="sim", requested_model="sim", provider="openai", duration_ms=5.0,
    )  # fmt: skip
    step = Step(index=index, kind="llm", name="sim", started_at=time.time(), duration_ms=5.0)
    return llm_entry(step, completion, None)


@dataclass
class Stores:
    redis: Redis
    keys: Keys
    tasks: TaskStore
    journals: JournalStore
    guards: RunGuards

    async def started(self) -> tuple[str, int]:
        """A new task whose first attempt began: its id and attempt number."""
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            status=TaskStatus.QUEUED,
            queue="q",
            request=RunRequest(message="hi"),
            created_at=time.time(),
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            self.tasks.add_create(pipe, record)
            await pipe.execute()
        attempt = await self.tasks.start_attempt(record.task_id)
        assert attempt is not None
        return record.task_id, attempt.attempts


@pytest.fixture
def stores(redis_client: Redis, keys: Keys) -> Stores:
    return Stores(
        redis_client,
        keys,
        TaskStore(redis_client, keys, 600, 100),
        JournalStore(redis_client, keys, 600, 100),
        RunGuards(Limiter(redis_client, keys), redis_client, keys),
    )


async def _step_events(redis_client: Redis, keys: Keys, task_id: str) -> list[dict[str, object]]:
    raw = await redis_client.xrange(keys.events(task_id))
    return [json.loads(fields[b"data"]) for _, fields in raw if fields[b"type"] == b"step"]


async def test_an_append_publishes_the_step_and_reads_the_cancel_flag(stores: Stores) -> None:
    redis_client, keys, tasks, journals, guards = (
        stores.redis,
        stores.keys,
        stores.tasks,
        stores.journals,
        stores.guards,
    )
    task_id, attempt = await stores.started()
    cancel = guards.cancel_flag(task_id)
    guard = guards.for_run(Caller("default", "k"), RateLimits(), cancel)
    assert guard is not None
    journal = await journals.open(task_id, attempt, 0, cancel)

    entry = _entry(0, "first")
    await journal.append(entry)
    assert [e["index"] for e in await _step_events(redis_client, keys, task_id)] == [0]
    assert (await _step_events(redis_client, keys, task_id))[0] == json.loads(
        entry.step.model_dump_json()
    )
    assert await redis_client.ttl(keys.events(task_id)) > 0
    assert len(await journals.read(task_id)) == 1
    await guard.check()  # not cancelled: the value the append read

    assert await tasks.cancel(task_id) == "cancelling"
    await journal.append(_entry(1, "second"))
    await redis_client.delete(keys.cancel(task_id))  # the check must use what the append read
    with pytest.raises(AgentError) as raised:
        await guard.check()
    assert raised.value.type == ErrorType.CANCELLED
    await guard.check()  # used once: the next check asks Redis, where the flag is gone now


async def test_a_stale_attempt_writes_neither_entry_nor_event(stores: Stores) -> None:
    journals = stores.journals
    task_id, attempt = await stores.started()
    stale = await journals.open(task_id, attempt, 0, stores.guards.cancel_flag(task_id))
    assert await stores.tasks.start_attempt(task_id) is not None  # a redelivery took over
    with pytest.raises(JournalConflictError):
        await stale.append(_entry(0, "late"))
    assert await journals.read(task_id) == []
    assert await _step_events(stores.redis, stores.keys, task_id) == []
