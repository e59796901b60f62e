"""Task records (a Redis hash per task) and their progress events (a Redis stream per task).

The API creates records (inside the enqueue transaction of ``queue.producer``), reads them and
cancels them; the worker moves them through ``running`` to a terminal state; the SSE endpoint
tails events. A record with a webhook is put on the webhook outbox in the same transaction that
makes it terminal, so a completion is never without its notification; with history on, the
same transaction puts it on the history outbox (``store.history_outbox``), so no task is final
without its archive entry.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio.client import Pipeline

from agent_service.domain.runs import DEFAULT_TENANT, RunEvent, RunResult, Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys

if TYPE_CHECKING:
    from agent_service.store.history_outbox import HistoryOutbox

TERMINAL_EVENTS = frozenset({"done", "error", "cancelled"})

DELIVERY_TAG_FIELD = "delivery_tag"
"""Record field naming the delivery tag of the task's message (set by ``queue.producer``, changed
by ``queue.lost`` when it replaces a lost message): a delivery with another tag is a stale copy."""

SUPERSEDED = "superseded"
"""What ``start_attempt`` answers for a stale copy of a replaced message (nothing is changed)."""

# Counts a delivery, marks the task running and emits its `running` event in one round trip,
# unless the task already ended, waits for an approval, or this delivery is a stale copy of a
# replaced message; logs the attempt with the journal step it resumes at (the journal's length)
# and why it began (`resume_trigger`, set by an approval decision, else first delivery or
# redelivery); returns the whole hash so the worker decides (poison cap, duplicate delivery) on
# fresh data.
# KEYS: record, events, journal. ARGV: now, events maxlen, ttl, delivery tag ('' when unknown).
_START_ATTEMPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return nil end
local expected = redis.call('HGET', KEYS[1], 'delivery_tag')
if ARGV[4] ~= '' and expected and expected ~= ARGV[4] then return 'superseded' end
if status == 'queued' or status == 'running' then
  local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('HSET', KEYS[1], 'status', 'running')
  if not redis.call('HGET', KEYS[1], 'started_at') then
    redis.call('HSET', KEYS[1], 'started_at', ARGV[1])
  end
  local step = redis.call('LLEN', KEYS[3])
  local trigger = redis.call('HGET', KEYS[1], 'resume_trigger')
  if trigger then
    redis.call('HDEL', KEYS[1], 'resume_trigger')
  elseif attempt == 1 then
    trigger = 'submitted'
  else
    trigger = 'redelivered'
  end
  local entry = '{"attempt":' .. attempt .. ',"started_at":' .. ARGV[1] ..
                ',"resumed_at_step":' .. step .. ',"trigger":"' .. trigger .. '"}'
  local log = redis.call('HGET', KEYS[1], 'attempt_log')
  if log then log = string.sub(log, 1, -2) .. ',' .. entry .. ']' else log = '[' .. entry .. ']' end
  redis.call('HSET', KEYS[1], 'attempt_log', log)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'status',
             'data', '{"status":"running","attempt":' .. attempt ..
                     ',"resumed_at_step":' .. step .. '}')
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
"""


# Cancels a queued task, or one waiting for an approval, at once (nothing runs it) or flags a
# running one (its worker stops at the next step boundary); returns the outcome, or the
# terminal status it already had.
# KEYS: record, events, cancel flag, webhook outbox, history outbox, history enqueued.
# ARGV: now, events maxlen, ttl, task id, history outbox member ('' when history is off).
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return nil end
if status == 'queued' or status == 'awaiting_approval' then
  local why = 'cancelled before it started'
  if status == 'awaiting_approval' then why = 'cancelled while it waited for an approval' end
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1],
             'cancel_requested_at', ARGV[1],
             'error', '{"type":"cancelled","message":"' .. why .. '"}')
  redis.call('HDEL', KEYS[1], 'approval_id', 'resume_trigger')
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', 'cancelled',
             'data', '{"status":"cancelled"}')
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  if redis.call('HEXISTS', KEYS[1], 'webhook') == 1 then
    redis.call('ZADD', KEYS[4], ARGV[1], ARGV[4])
  end
  if ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[5], 'NX', ARGV[1], ARGV[5])
    redis.call('ZADD', KEYS[6], 'NX', ARGV[1], ARGV[5])
  end
  return 'cancelled'
end
if status == 'running' then
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[3])
  if not redis.call('HGET', KEYS[1], 'cancel_requested_at') then
    redis.call('HSET', KEYS[1], 'cancel_requested_at', ARGV[1])
  end
  return 'cancelling'
end
return status
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _record_fields(record: TaskRecord) -> dict[str, str]:
    fields = {
        "task_id": record.task_id,
        "status": record.status.value,
        "queue": record.queue,
        "request": record.request.model_dump_json(),
        "created_at": repr(record.created_at),
        "attempts": str(record.attempts),
        "tenant": record.tenant,
    }
    if record.trace_id:
        fields["trace_id"] = record.trace_id
    if record.idempotency_key:
        fields["idempotency_key"] = record.idempotency_key
    if record.key_id:
        fields["key_id"] = record.key_id
    if record.agent:
        fields["agent"] = record.agent
    if record.config_generation is not None:
        fields["config_generation"] = str(record.config_generation)
    if record.webhook is not None:
        fields["webhook"] = record.webhook.model_dump_json()
    if record.started_at is not None:  # a sync run handed over to a task
        fields["started_at"] = repr(record.started_at)
    if record.attempt_log:
        log = [attempt.model_dump(mode="json") for attempt in record.attempt_log]
        fields["attempt_log"] = _dumps(log)
    if record.ingestion is not None:
        fields["ingestion"] = record.ingestion.model_dump_json()
    return fields


def parse_task_record(raw: dict[bytes, bytes]) -> TaskRecord:
    """A record hash as HGETALL returns it (also read by ``store.history_outbox``)."""
    data = {k.decode(): v.decode() for k, v in raw.items()}
    data.pop("payload", None)
    parsed: dict[str, Any] = {
        "task_id": data["task_id"],
        "status": data["status"],
        "queue": data.get("queue", ""),
        "request": json.loads(data["request"]),
        "created_at": float(data["created_at"]),
        "attempts": int(data.get("attempts", "0")),
        "trace_id": data.get("trace_id"),
        "tenant": data.get("tenant", DEFAULT_TENANT),
        "idempotency_key": data.get("idempotency_key"),
        "key_id": data.get("key_id"),
        "agent": data.get("agent"),
        "approval_id": data.get("approval_id"),
    }
    if "config_generation" in data:
        parsed["config_generation"] = int(data["config_generation"])
    for name in ("started_at", "finished_at", "cancel_requested_at"):
        if name in data:
            parsed[name] = float(data[name])
    for name in ("result", "error", "usage", "webhook", "attempt_log", "ingestion"):
        if name in data:
            parsed[name] = json.loads(data[name])
    return TaskRecord.model_validate(parsed)


class TaskStore:
    """Reads and writes task records and events under ``keys``; records expire after ``ttl``.
    With ``history`` (history on), a task that ends is put on the history outbox."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        ttl_seconds: int,
        events_max: int,
        history: HistoryOutbox | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds
        self._events_max = events_max
        self._history = history
        self._start_attempt = client.register_script(_START_ATTEMPT)
        self._cancel = client.register_script(_CANCEL)

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    @property
    def events_max(self) -> int:
        return self._events_max

    def add_create(
        self,
        pipe: Pipeline,
        record: TaskRecord,
        event: RunEvent | None = None,
        delivery_tag: str | None = None,
    ) -> None:
        """Queue the commands creating ``record`` and its first event (``queued`` unless
        ``event`` says otherwise) on ``pipe``; ``delivery_tag`` names its message
        (``DELIVERY_TAG_FIELD``), in the same ``HSET``."""
        key = self._keys.task(record.task_id)
        fields = _record_fields(record)
        if delivery_tag is not None:
            fields[DELIVERY_TAG_FIELD] = delivery_tag
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expire(key, self._ttl)
        first = event or RunEvent(type="status", data={"status": "queued"})
        self._add_event(pipe, record.task_id, first)

    def _add_event(self, pipe: Pipeline, task_id: str, event: RunEvent) -> None:
        key = self._keys.events(task_id)
        pipe.xadd(
            key,
            {"type": event.type, "data": _dumps(event.data)},
            maxlen=self._events_max,
            approximate=True,
        )
        pipe.expire(key, self._ttl)

    @guarded
    async def get(self, task_id: str) -> TaskRecord | None:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.task(task_id)))
        return parse_task_record(raw) if raw else None

    @guarded
    async def start_attempt(
        self, task_id: str, delivery_tag: str | None = None
    ) -> TaskRecord | str | None:
        """Count a delivery, mark the task running and emit ``running`` (unless it ended).

        None if the record is unknown or expired; ``SUPERSEDED`` (and nothing changed) when
        ``delivery_tag`` is not the tag of the task's message: a copy whose message the
        lost-message sweeper replaced.
        """
        raw = await self._start_attempt(
            keys=[
                self._keys.task(task_id),
                self._keys.events(task_id),
                self._keys.journal(task_id),
            ],
            args=[repr(time.time()), self._events_max, self._ttl, delivery_tag or ""],
        )
        if not raw:
            return None
        if raw in (SUPERSEDED, SUPERSEDED.encode()):
            return SUPERSEDED
        pairs = dict(zip(raw[::2], raw[1::2], strict=True))
        return parse_task_record(pairs)

    @guarded
    async def append_event(self, task_id: str, event: RunEvent) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            self._add_event(pipe, task_id, event)
            await pipe.execute()

    @guarded
    async def finish(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        result: RunResult | None = None,
        error: TaskError | None = None,
        usage: Usage | None = None,
        webhook: bool = False,
    ) -> None:
        """Record the terminal state and emit the terminal event, atomically; with ``webhook``
        (the record has one), put the task on the webhook outbox in the same transaction."""
        key = self._keys.task(task_id)
        fields: dict[str, str] = {"status": status.value, "finished_at": repr(time.time())}
        if result is not None:
            fields["result"] = result.model_dump_json()
            usage = result.usage
        if usage is not None:
            fields["usage"] = usage.model_dump_json()
        if error is not None:
            fields["error"] = error.model_dump_json()
        if status is TaskStatus.SUCCEEDED and result is not None:
            event = RunEvent(
                type="done", data={"status": status.value, "result": result.model_dump(mode="json")}
            )
        elif status is TaskStatus.CANCELLED:
            event = RunEvent(type="cancelled", data={"status": status.value})
        else:
            event = RunEvent(
                type="error",
                data={"status": status.value, "error": error.model_dump() if error else None},
            )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl)
            self._add_event(pipe, task_id, event)
            pipe.delete(self._keys.cancel(task_id))
            if webhook:
                pipe.zadd(self._keys.webhook_outbox, {task_id: time.time()})
            if self._history is not None:
                self._history.add_task(pipe, task_id)
            await pipe.execute()

    async def add_cancel(self, pipe: Pipeline, task_id: str) -> None:
        """Queue the cancellation of ``task_id`` on ``pipe`` (a run interrupted by a new
        message for its session)."""
        await self._cancel(
            keys=self._cancel_keys(task_id),
            args=self._cancel_args(task_id),
            client=pipe,
        )

    def _cancel_keys(self, task_id: str) -> list[str]:
        return [
            self._keys.task(task_id),
            self._keys.events(task_id),
            self._keys.cancel(task_id),
            self._keys.webhook_outbox,
            self._keys.history_outbox,
            self._keys.history_enqueued,
        ]

    def _cancel_args(self, task_id: str) -> list[str | int | float]:
        member = "" if self._history is None else self._history.task_member(task_id)
        return [repr(time.time()), self._events_max, self._ttl, task_id, member]

    @guarded
    async def cancel(self, task_id: str) -> str | None:
        """Cancel ``task_id``: ``cancelled`` (it was queued), ``cancelling`` (it runs and will
        stop at its next step), the terminal status it already had, or None if unknown."""
        outcome = await self._cancel(
            keys=self._cancel_keys(task_id),
            args=self._cancel_args(task_id),
        )
        if outcome is None:
            return None
        return outcome.decode() if isinstance(outcome, bytes) else str(outcome)

    @guarded
    async def read_events(
        self, task_id: str, after: str, block_ms: int
    ) -> list[tuple[str, RunEvent]]:
        """Events after stream id ``after`` ("0" for all); waits up to ``block_ms`` for new ones."""
        answer: Any = await self._redis.xread(
            {self._keys.events(task_id): after}, count=100, block=block_ms or None
        )
        events: list[tuple[str, RunEvent]] = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                event = RunEvent(type=fields[b"type"].decode(), data=json.loads(fields[b"data"]))
                events.append((entry_id.decode(), event))
        return events
