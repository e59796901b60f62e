"""Session slots against a real Redis, without workers: what a submission does to a busy session
under each ``multitask``, what a release hands on, and a slot left by a lost release."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from agent_service.agentconfig.approvals import Multitask
from agent_service.domain.runs import RunRequest
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.queue.celery_app import create_celery_app
from agent_service.queue.producer import Submitted, TaskQueue
from agent_service.queue.sessions import SessionBusyError
from agent_service.settings import Settings
from agent_service.store.client import Redis, create_redis
from agent_service.store.keys import Keys
from agent_service.store.session_slots import SessionSlots
from agent_service.store.tasks import TaskStore
from tests.conftest import RedisServer

pytestmark = pytest.mark.integration


class Session:
    def __init__(self, client: Redis, prefix: str) -> None:
        settings = Settings.model_validate(
            {"redis": {"url": "redis://unused"}, "worker": {"queue": f"{prefix}q"}}
        )
        self.keys = Keys(prefix)
        self.redis = client
        self.queue_name = f"{prefix}q"
        self.tasks = TaskStore(client, self.keys, 3600, 100)
        self.slots = SessionSlots(client, self.keys, 3600)
        self.queue = TaskQueue(
            client, create_celery_app(settings, 60), self.tasks, slots=self.slots
        )
        self.session_id = f"s-{uuid.uuid4().hex[:6]}"

    async def submit(self, multitask: Multitask) -> Submitted:
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            status=TaskStatus.QUEUED,
            queue=self.queue_name,
            request=RunRequest(message="hi", session_id=self.session_id),
            created_at=time.time(),
        )
        return await self.queue.submit(record, multitask=multitask)

    async def queued(self) -> list[str]:
        """Task ids of the messages on the queue, oldest first."""
        import base64
        import json

        raw = await self.redis.lrange(self.queue_name, 0, -1)
        ids = []
        for message in reversed(raw):
            body = json.loads(base64.b64decode(json.loads(message)["body"]))
            ids.append(body[0][0])
        return ids

    async def holder(self) -> str | None:
        found = await self.slots.holder("default", self.session_id)
        return found[0] if found else None

    async def status(self, task_id: str) -> str:
        record = await self.tasks.get(task_id)
        assert record is not None
        return record.status.value

    async def end(self, task_id: str) -> int:
        """What a worker does when the task ends."""
        await self.tasks.finish(task_id, TaskStatus.SUCCEEDED)
        return await self.slots.release("default", self.session_id, task_id)


@pytest.fixture
async def session(redis_server: RedisServer) -> AsyncIterator[Session]:
    settings = Settings.model_validate({"redis": {"url": redis_server.url}})
    client = create_redis(settings.redis)
    yield Session(client, f"slots-{uuid.uuid4().hex[:6]}:")
    await client.aclose()


async def test_reject_refuses_while_the_session_is_busy(session: Session) -> None:
    first = await session.submit("reject")
    assert await session.queued() == [first.task_id]
    with pytest.raises(SessionBusyError) as busy:
        await session.submit("reject")
    assert busy.value.task_id == first.task_id and busy.value.status == "queued"
    assert await session.queued() == [first.task_id]  # nothing written
    assert await session.end(first.task_id) == 1  # freed
    again = await session.submit("reject")
    assert await session.holder() == again.task_id


async def test_enqueue_waits_and_a_release_hands_the_slot_on_in_order(session: Session) -> None:
    first = await session.submit("enqueue")
    second = await session.submit("enqueue")
    third = await session.submit("enqueue")
    assert (second.waiting, third.waiting) == (True, True)
    assert await session.queued() == [first.task_id]
    assert await session.end(first.task_id) == 2
    assert await session.holder() == second.task_id
    assert await session.queued() == [first.task_id, second.task_id]
    assert await session.slots.release("default", session.session_id, first.task_id) == 0
    assert await session.end(second.task_id) == 2
    assert await session.end(third.task_id) == 1
    assert await session.holder() is None


async def test_interrupt_cancels_a_queued_run_and_starts_at_once(session: Session) -> None:
    first = await session.submit("enqueue")
    waiting = await session.submit("enqueue")
    new = await session.submit("interrupt")
    assert new.interrupted == (first.task_id, waiting.task_id) and not new.waiting
    assert [await session.status(t) for t in (first.task_id, waiting.task_id)] == [
        "cancelled", "cancelled",
    ]  # fmt: skip
    assert await session.holder() == new.task_id
    assert await session.queued() == [first.task_id, new.task_id]


async def test_interrupt_of_a_running_run_flags_it_and_waits_for_it(session: Session) -> None:
    first = await session.submit("reject")
    started = await session.tasks.start_attempt(first.task_id)
    assert started is not None and started.status is TaskStatus.RUNNING
    new = await session.submit("interrupt")
    assert new.interrupted == (first.task_id,) and new.waiting
    assert await session.redis.exists(session.keys.cancel(first.task_id))
    assert await session.holder() == first.task_id
    await session.tasks.finish(first.task_id, TaskStatus.CANCELLED)
    assert await session.slots.release("default", session.session_id, first.task_id) == 2
    assert await session.holder() == new.task_id


async def test_a_slot_left_by_a_lost_release_is_taken_over(session: Session) -> None:
    first = await session.submit("enqueue")
    waiting = await session.submit("enqueue")
    # The first run ended but its worker died before releasing the slot.
    await session.tasks.finish(first.task_id, TaskStatus.SUCCEEDED)
    # The next submission releases the stale slot first: the waiting run takes it and is
    # queued, so a `reject` submission now finds that run going.
    with pytest.raises(SessionBusyError) as busy:
        await session.submit("reject")
    assert busy.value.task_id == waiting.task_id
    assert await session.holder() == waiting.task_id
    assert await session.queued() == [first.task_id, waiting.task_id]


@pytest.mark.parametrize("multitask", ["reject", "enqueue", "interrupt"])
async def test_a_slot_of_an_ended_run_with_nobody_waiting_is_free(
    session: Session, multitask: Multitask
) -> None:
    first = await session.submit("reject")
    await session.tasks.finish(first.task_id, TaskStatus.FAILED)  # its release was lost
    again = await session.submit(multitask)
    assert not again.waiting and again.interrupted == ()
    assert await session.holder() == again.task_id
