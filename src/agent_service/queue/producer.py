"""Enqueueing runs: the task record and the Celery message land in Redis in one transaction.

Celery's own ``send_task`` is synchronous and would block the API's event loop (measured: p99
1.28 s under load). The producer builds the same protocol-2 message Celery would (with Celery's
own ``as_task_v2``) and LPUSHes it with redis.asyncio, in the MULTI/EXEC that creates the
record, so an accepted task is never without its message and vice versa. Celery's publish
signals do not fire for it, so the producer span and the W3C trace context headers (which the
worker's Celery instrumentation reads back) are added here.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from celery import Celery
from opentelemetry import trace
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from agent_service.agentconfig.approvals import Multitask
from agent_service.domain.tasks import TaskRecord
from agent_service.observability.tracing import inject_context
from agent_service.queue import sessions
from agent_service.queue.celery_app import RUN_TASK_NAME
from agent_service.store.client import Redis, guarded
from agent_service.store.memory import AdmissionByMemory
from agent_service.store.replication import ReplicaAck
from agent_service.store.session_slots import SessionSlots, session_key
from agent_service.store.tasks import TaskStore

_tracer = trace.get_tracer(__name__)


def build_message(
    app: Celery,
    task_id: str,
    queue: str,
    extra_headers: Mapping[str, str] | None = None,
    delivery_tag: str | None = None,
) -> bytes:
    """The Redis-transport envelope of a ``RUN_TASK_NAME(task_id)`` message for ``queue``
    (``delivery_tag``: a new one by default)."""
    # argsrepr/kwargsrepr given: Celery's saferepr of them is ~5 % of an enqueue's CPU.
    message = app.amqp.as_task_v2(
        task_id,
        RUN_TASK_NAME,
        args=(task_id,),
        kwargs={},
        argsrepr=f"('{task_id}',)",
        kwargsrepr="{}",
    )
    headers = dict(message.headers)
    # Read back by queue.stats for the oldest-task age (kombu keeps headers on redelivery).
    headers["agent_enqueued_at"] = time.time()
    if extra_headers:
        headers.update(extra_headers)
    body = json.dumps(message.body, separators=(",", ":")).encode()
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            **message.properties,
            "delivery_mode": 2,
            # The anonymous exchange routes by queue name, so a restored (redelivered) message
            # goes back to the same list without needing kombu's binding table.
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": delivery_tag or str(uuid.uuid4()),
        },
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Submitted:
    """What ``TaskQueue.submit`` did: created ``task_id``, or found the task an
    ``Idempotency-Key`` already names (``created`` False; ``same_body`` says if it matches).

    With a session: ``waiting`` when the run waits for the session's current run, and the
    tasks an interrupt cancelled (``interrupted``) with the approval one of them waited for."""

    task_id: str
    created: bool
    same_body: bool = True
    waiting: bool = False
    interrupted: tuple[str, ...] = ()
    withdrawn: tuple[str, str] | None = None


class TaskQueue:
    """Submits runs to the Celery queue (a Redis list named after it) and measures it."""

    def __init__(
        self,
        client: Redis,
        app: Celery,
        store: TaskStore,
        *,
        admission: AdmissionByMemory | None = None,
        replicas: ReplicaAck | None = None,
        slots: SessionSlots | None = None,
    ) -> None:
        self._redis = client
        self._app = app
        self._store = store
        self._admission = admission
        self._replicas = replicas
        self._slots = slots

    def message(
        self, record: TaskRecord, headers: Mapping[str, str] | None = None
    ) -> tuple[bytes, str]:
        """The Celery message of ``record``'s run (a resumed run's too), with the current trace
        context in its headers, and its new delivery tag, which the record must name (a worker
        takes a message whose tag the record does not name for a stale copy: ``queue.lost``)."""
        carrier = dict(headers or {})
        inject_context(carrier)
        tag = str(uuid.uuid4())
        return build_message(self._app, record.task_id, record.queue, carrier, tag), tag

    @guarded
    async def submit(
        self,
        record: TaskRecord,
        headers: Mapping[str, str] | None = None,
        body_hash: str | None = None,
        multitask: Multitask | None = None,
        also: Callable[[Pipeline], None] | None = None,
    ) -> Submitted:
        """Create the record and publish its message atomically (raises 503-type errors:
        ``StorageFullError`` when Redis is near its ``maxmemory``, see ``store.memory``).

        ``also`` queues more commands in the same transaction (a Responses API response is
        stored with its task).

        The message carries the current trace context (``traceparent``) in its headers. With
        ``record.idempotency_key``, the key is claimed in the same transaction (optimistic,
        WATCH): concurrent duplicates create exactly one task, the others get its id. The key
        lives as long as the record. With a ``session_id`` and ``multitask`` (the agent's
        setting), the session's slot decides (``queue.sessions``; ``SessionBusyError``).
        """
        attributes = {
            "messaging.system": "celery",
            "messaging.operation.type": "send",
            "messaging.destination.name": record.queue,
            "messaging.message.id": record.task_id,
            "celery.task_name": RUN_TASK_NAME,
        }
        if self._admission is not None:
            await self._admission.check()
        with _tracer.start_as_current_span(
            f"send {RUN_TASK_NAME}", kind=trace.SpanKind.PRODUCER, attributes=attributes
        ):
            message, tag = self.message(record, headers)
            in_session = (
                multitask is not None
                and self._slots is not None
                and record.request.session_id is not None
            )
            if record.idempotency_key is None and not in_session:
                async with self._redis.pipeline(transaction=True) as pipe:
                    self._store.add_create(pipe, record, delivery_tag=tag)
                    if also is not None:
                        also(pipe)
                    self._add_message(pipe, record, message)
                    await pipe.execute()
                submitted = Submitted(record.task_id, created=True)
            else:
                submitted = await self._submit_watched(
                    record,
                    message,
                    tag,
                    body_hash or "",
                    multitask if in_session else None,
                    also,
                )
            if self._replicas is not None:
                await self._replicas.wait()  # "accepted" survives a failover (store.replication)
            return submitted

    def _add_message(self, pipe: Pipeline, record: TaskRecord, message: bytes) -> None:
        """Queue the message, and index the task for the lost-message sweeper."""
        self._index_queued(pipe, record)
        pipe.lpush(record.queue, message)

    def _index_queued(self, pipe: Pipeline, record: TaskRecord) -> None:
        """What the lost-message sweeper (``queue.lost``) needs besides the delivery tag the
        record names (created with it: a replacement message changes it, so a stale copy is
        recognised): a task whose message is on the queue joins the index of maybe-queued
        tasks (one waiting for its session's slot does not: its message is kept aside, not
        lost)."""
        pipe.zadd(self._store.keys.queued_tasks, {record.task_id: record.created_at})

    async def _submit_watched(  # noqa: PLR0917
        self,
        record: TaskRecord,
        message: bytes,
        tag: str,
        body_hash: str,
        multitask: Multitask | None,
        also: Callable[[Pipeline], None] | None,
    ) -> Submitted:
        """The transaction of a submission with an idempotency key or a session (WATCH)."""
        claim = None
        if record.idempotency_key is not None:
            claim = self._store.keys.idempotency(record.tenant, record.idempotency_key)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if claim is not None:
                        await pipe.watch(claim)
                        existing = await pipe.get(claim)
                        if existing is not None:
                            await pipe.reset()  # type: ignore[no-untyped-call]
                            text = existing.decode() if isinstance(existing, bytes) else existing
                            task_id, _, known_hash = str(text).partition(" ")
                            same = known_hash == body_hash
                            return Submitted(task_id, created=False, same_body=same)
                    decided = None
                    if multitask is not None:
                        decided = await self._plan_session(pipe, record, multitask)
                        if decided is None:
                            continue  # a stale slot was released: read the session again
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if claim is not None:
                        pipe.set(claim, f"{record.task_id} {body_hash}", ex=self._store.ttl_seconds)
                    self._store.add_create(pipe, record, delivery_tag=tag)
                    if also is not None:
                        also(pipe)
                    if decided is None:
                        self._add_message(pipe, record, message)
                    else:
                        assert self._slots is not None
                        await sessions.apply(
                            pipe,
                            decided,
                            slots=self._slots,
                            tasks=self._store,
                            record=record,
                            message=message,
                        )
                        if decided.start:
                            self._index_queued(pipe, record)
                    await pipe.execute()
                    return _submitted(record, decided)
                except WatchError:
                    continue  # another request changed a watched key meanwhile: read again

    async def _plan_session(
        self, pipe: Pipeline, record: TaskRecord, multitask: Multitask
    ) -> sessions.Plan | None:
        """The session's plan, or None after releasing a stale slot (plan again)."""
        assert self._slots is not None and record.request.session_id is not None
        session = session_key(record.tenant, record.request.session_id)
        keys = self._store.keys
        await pipe.watch(keys.session_slot(session), keys.session_waiting(session))
        decided = await sessions.plan(pipe, self._slots, record, multitask)
        if decided.stale is None:
            return decided
        await pipe.reset()  # type: ignore[no-untyped-call]
        await self._slots.release(record.tenant, record.request.session_id, decided.stale)
        return None

    @guarded
    async def push(self, queue: str, message: bytes) -> None:
        """Put a built message on ``queue`` (a run the session let through)."""
        await self._redis.lpush(queue, message)

    @guarded
    async def depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` (not yet reserved by a worker)."""
        return int(await self._redis.llen(queue))


def _submitted(record: TaskRecord, decided: sessions.Plan | None) -> Submitted:
    if decided is None:
        return Submitted(record.task_id, created=True)
    return Submitted(
        record.task_id,
        created=True,
        waiting=not decided.start,
        interrupted=tuple(decided.cancel),
        withdrawn=decided.withdraw,
    )
