"""Approvals in Redis: a hash per approval, per-tenant indexes, the expiry set, the decisions.

A paused run becomes an approval here in one script with its task's move to
``awaiting_approval``, its events and its webhook (``pause``; ``park`` does the same for a sync
run handed over to a new task). A decision (``decide``: a person through the API, or the
workers' sweeper at expiry) is one script too: it records the outcome, writes it into the task's
decision map where the resumed run reads it, takes the approval off the pending sets, moves the
task back to ``queued`` and pushes its message onto the queue, so any worker resumes it from its
journal. Nothing holds a worker while an approval is pending.

Keys (``store.keys``): ``approval:<id>`` (hash, task TTL), ``approvals:tenant:<tenant>`` and
``...:pending`` (sorted by creation), ``approvals:expiring`` (every pending id by expiry time; the
sweepers lease due members, ``store.leases``), ``task:<id>:decisions`` (step -> decision).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from agent_service.domain.approvals import (
    STATUS_OF_DECISION,
    Approval,
    ApprovalDecision,
    ApprovalPending,
    ApprovalStatus,
    Decision,
)
from agent_service.domain.journal import JournalEntry
from agent_service.domain.runs import RunEvent
from agent_service.domain.tasks import TaskRecord, WebhookState
from agent_service.store.client import Redis, guarded
from agent_service.store.journal import JournalStore
from agent_service.store.keys import Keys
from agent_service.store.leases import claim_due, register_claim
from agent_service.store.session_slots import session_key
from agent_service.store.tasks import TaskStore
from agent_service.store.webhooks import APPROVAL_MEMBER_PREFIX

# Parks a running task on a new approval, if attempt ARGV[1] still owns it.
# KEYS: record, events, approval, tenant set, tenant pending set, expiring set, webhook outbox.
# ARGV: attempt, approval id, now, expires at, events maxlen, ttl, status event, approval
# event, webhook outbox member ('' for none), then the approval's fields (name, value, ...).
_PAUSE = """
if redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local ttl = tonumber(ARGV[6])
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[3], unpack(ARGV, 10))
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('ZADD', KEYS[4], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - ttl)
redis.call('EXPIRE', KEYS[4], ttl)
redis.call('ZADD', KEYS[5], now, ARGV[2])
redis.call('EXPIRE', KEYS[5], ttl)
redis.call('ZADD', KEYS[6], tonumber(ARGV[4]), ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'awaiting_approval', 'approval_id', ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'status', 'data', ARGV[7])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'approval_required',
           'data', ARGV[8])
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[9] ~= '' then redis.call('ZADD', KEYS[7], now, ARGV[9]) end
return 1
"""

# Decides a pending approval of task ARGV[2] for tenant ARGV[1] and queues the task again.
# KEYS: approval, record, events, tenant pending set, expiring set, decisions, queue, queued
# tasks index. ARGV: tenant, task id, decision, approval status, decided arguments JSON ('' none),
# comment, now, queue message, events maxlen, ttl, decision JSON, status event, delivery tag.
# Returns {'missing'}, {'decided', decision, decided arguments} (it was decided before),
# {'ended', task status} (the task no longer waits for it) or {'applied'}.
_DECIDE = """
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] or
   redis.call('HGET', KEYS[1], 'task_id') ~= ARGV[2] then
  return {'missing'}
end
local id = redis.call('HGET', KEYS[1], 'approval_id')
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then
  return {'decided', redis.call('HGET', KEYS[1], 'decision') or '',
          redis.call('HGET', KEYS[1], 'decided_arguments') or ''}
end
local task_status = redis.call('HGET', KEYS[2], 'status')
if task_status ~= 'awaiting_approval' or redis.call('HGET', KEYS[2], 'approval_id') ~= id then
  redis.call('HSET', KEYS[1], 'status', 'cancelled')
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  return {'ended', task_status or ''}
end
local ttl = tonumber(ARGV[10])
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'decision', ARGV[3], 'decided_at', ARGV[7])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'decided_arguments', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'comment', ARGV[6]) end
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
redis.call('HSET', KEYS[6], redis.call('HGET', KEYS[1], 'step'), ARGV[11])
redis.call('EXPIRE', KEYS[6], ttl)
redis.call('HSET', KEYS[2], 'status', 'queued', 'resume_trigger', 'approval')
redis.call('HDEL', KEYS[2], 'approval_id')
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'type', 'status', 'data', ARGV[12])
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('HSET', KEYS[2], 'delivery_tag', ARGV[13])
redis.call('ZADD', KEYS[8], ARGV[7], ARGV[2])
redis.call('LPUSH', KEYS[7], ARGV[8])
return {'applied'}
"""

# Withdraws a pending approval whose task ended otherwise (cancelled, interrupted).
# KEYS: approval, tenant pending set, expiring set. Returns 1 if it was pending.
_WITHDRAW = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'cancelled')
local id = redis.call('HGET', KEYS[1], 'approval_id')
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
return 1
"""

Outcome = Literal["applied", "same", "conflict", "missing", "ended"]


@dataclass(frozen=True)
class Decided:
    """What ``decide`` did: ``applied`` (the task is queued again), ``same`` (this decision
    was made before: nothing to do), ``conflict`` (another decision was made), ``missing``
    (no such approval for this tenant and task) or ``ended`` (the task no longer waits)."""

    outcome: Outcome
    detail: str = ""


def canonical(arguments: dict[str, Any] | None) -> str:
    """Arguments as compared and stored: sorted-key JSON ('' for none)."""
    if arguments is None:
        return ""
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _fields(approval: Approval, timeout_seconds: float) -> list[str]:
    fields: dict[str, str] = {
        "approval_id": approval.approval_id,
        "task_id": approval.task_id,
        "tenant": approval.tenant,
        "agent": approval.agent,
        "tool": approval.tool,
        "arguments": canonical(approval.arguments),
        "step": str(approval.step),
        "status": approval.status,
        "created_at": repr(approval.created_at),
        "expires_at": repr(approval.expires_at),
        "on_timeout": approval.on_timeout,
        "timeout_seconds": repr(timeout_seconds),
    }
    if approval.reasoning:
        fields["reasoning"] = approval.reasoning
    if approval.webhook is not None:
        fields["webhook"] = approval.webhook.model_dump_json()
    return [item for pair in fields.items() for item in pair]


def parse_approval(raw: dict[bytes, bytes]) -> Approval:
    data = {k.decode(): v.decode() for k, v in raw.items()}
    parsed: dict[str, Any] = {
        key: data[key]
        for key in ("approval_id", "task_id", "tenant", "agent", "tool", "status", "on_timeout")
    }
    parsed["arguments"] = json.loads(data["arguments"])
    parsed["step"] = int(data["step"])
    parsed["created_at"] = float(data["created_at"])
    parsed["expires_at"] = float(data["expires_at"])
    for name in ("reasoning", "comment", "decision"):
        if data.get(name):
            parsed[name] = data[name]
    if "decided_at" in data:
        parsed["decided_at"] = float(data["decided_at"])
    if data.get("decided_arguments"):
        parsed["decided_arguments"] = json.loads(data["decided_arguments"])
    if "webhook" in data:
        parsed["webhook"] = json.loads(data["webhook"])
    return Approval.model_validate(parsed)


def timeout_of(raw: dict[bytes, bytes]) -> float:
    return float(raw.get(b"timeout_seconds", b"0"))


class ApprovalStore:
    """Approvals under ``keys``; they live as long as task records (``tasks.ttl_seconds``)."""

    def __init__(self, client: Redis, keys: Keys, tasks: TaskStore, journals: JournalStore):
        self._redis = client
        self._keys = keys
        self._tasks = tasks
        self._journals = journals
        self._pause = client.register_script(_PAUSE)
        self._decide = client.register_script(_DECIDE)
        self._withdraw = client.register_script(_WITHDRAW)
        self._claim = register_claim(client)

    def new(
        self, record: TaskRecord, agent: str, pending: ApprovalPending, now: float | None = None
    ) -> Approval:
        """The approval a paused run of ``record`` asks for (not stored yet)."""
        created = time.time() if now is None else now
        request = pending.request
        return Approval(
            approval_id=uuid.uuid4().hex,
            task_id=record.task_id,
            tenant=record.tenant,
            agent=agent,
            tool=request.tool,
            arguments=request.arguments,
            reasoning=request.reasoning,
            step=request.step,
            created_at=round(created, 6),
            expires_at=round(created + pending.timeout_seconds, 6),
            on_timeout=pending.on_timeout,
            webhook=WebhookState(url=record.webhook.url) if record.webhook else None,
        )

    def _pause_args(
        self, record: TaskRecord, approval: Approval, attempt: int, timeout: float
    ) -> tuple[list[str], list[Any]]:
        keys = self._keys
        member = f"{APPROVAL_MEMBER_PREFIX}{approval.approval_id}" if approval.webhook else ""
        status = {"status": "awaiting_approval", "approval_id": approval.approval_id}
        event = approval_event(approval)
        return (
            [
                keys.task(record.task_id),
                keys.events(record.task_id),
                keys.approval(approval.approval_id),
                keys.tenant_approvals(record.tenant),
                keys.tenant_pending_approvals(record.tenant),
                keys.expiring_approvals,
                keys.webhook_outbox,
            ],
            [
                attempt,
                approval.approval_id,
                repr(approval.created_at),
                repr(approval.expires_at),
                self._tasks.events_max,
                self._tasks.ttl_seconds,
                json.dumps(status),
                json.dumps(event, ensure_ascii=False),
                member,
                *_fields(approval, timeout),
            ],
        )

    @guarded
    async def pause(
        self, record: TaskRecord, attempt: int, approval: Approval, timeout_seconds: float
    ) -> bool:
        """Park running task ``record`` on ``approval``; False when attempt ``attempt`` no
        longer owns the task (nothing written)."""
        keys, args = self._pause_args(record, approval, attempt, timeout_seconds)
        return bool(await self._pause(keys=keys, args=args))

    @guarded
    async def park(
        self,
        record: TaskRecord,
        entries: Sequence[JournalEntry],
        approval: Approval,
        timeout_seconds: float,
    ) -> None:
        """Create task ``record`` (``running``, attempt 1) for a sync run that reached a gated
        tool, with the steps it made as its journal, parked on ``approval``: one transaction."""
        handed = RunEvent(
            type="status", data={"status": "running", "attempt": 1, "handed_over": "sync"}
        )
        keys, args = self._pause_args(record, approval, record.attempts, timeout_seconds)
        async with self._redis.pipeline(transaction=True) as pipe:
            self._tasks.add_create(pipe, record, handed)
            self._journals.add_entries(pipe, record.task_id, entries)
            await self._pause(keys=keys, args=args, client=pipe)
            if record.request.session_id is not None:
                # The task now holds the session (if free: the sync run found it so): its end
                # hands it on like any task's (store.session_slots).
                session = session_key(record.tenant, record.request.session_id)
                pipe.set(
                    self._keys.session_slot(session),
                    record.task_id,
                    nx=True,
                    ex=self._tasks.ttl_seconds,
                )
            await pipe.execute()

    @guarded
    async def decide(
        self,
        approval: Approval,
        decision: Decision,
        *,
        queue: str,
        message: tuple[bytes, str],
        arguments: dict[str, Any] | None = None,
        comment: str | None = None,
        timeout_seconds: float = 0.0,
    ) -> Decided:
        """Apply ``decision`` to ``approval`` and queue its task (``message``, a body and its
        delivery tag, on ``queue``; the record names the tag, and the task joins the index of
        queued tasks, as a submission's do: ``queue.lost``)."""
        body, tag = message
        keys = self._keys
        task_id = approval.task_id
        resolved = ApprovalDecision(
            approval_id=approval.approval_id,
            decision=decision,
            arguments=arguments,
            comment=comment,
            on_timeout=approval.on_timeout,
            timeout_seconds=timeout_seconds,
        )
        status: ApprovalStatus = STATUS_OF_DECISION[decision]
        event = {"status": "queued", "approval_id": approval.approval_id, "decision": decision}
        answer = await self._decide(
            keys=[
                keys.approval(approval.approval_id),
                keys.task(task_id),
                keys.events(task_id),
                keys.tenant_pending_approvals(approval.tenant),
                keys.expiring_approvals,
                keys.decisions(task_id),
                queue,
                keys.queued_tasks,
            ],
            args=[
                approval.tenant,
                task_id,
                decision,
                status,
                canonical(arguments),
                comment or "",
                repr(time.time()),
                body,
                self._tasks.events_max,
                self._tasks.ttl_seconds,
                resolved.model_dump_json(),
                json.dumps(event),
                tag,
            ],
        )
        words = [part.decode() if isinstance(part, bytes) else str(part) for part in answer]
        if words[0] == "decided":
            same = words[1] == decision and words[2] == canonical(arguments)
            return Decided("same" if same else "conflict", words[1])
        if words[0] == "ended":
            return Decided("ended", words[1])
        return Decided(cast(Outcome, words[0]))

    @guarded
    async def withdraw(self, approval_id: str, tenant: str) -> bool:
        """Take a pending approval whose task ended otherwise off the pending sets."""
        keys = self._keys
        done = await self._withdraw(
            keys=[
                keys.approval(approval_id),
                keys.tenant_pending_approvals(tenant),
                keys.expiring_approvals,
            ]
        )
        return bool(done)

    @guarded
    async def get(self, approval_id: str) -> Approval | None:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.approval(approval_id)))
        return parse_approval(raw) if raw else None

    @guarded
    async def get_with_timeout(self, approval_id: str) -> tuple[Approval, float] | None:
        """The approval and how long it was given (seconds), for the expiry sweeper."""
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.approval(approval_id)))
        return (parse_approval(raw), timeout_of(raw)) if raw else None

    @guarded
    async def of_tenant(
        self, tenant: str, status: ApprovalStatus | None = None, limit: int = 50
    ) -> list[Approval]:
        """The tenant's newest approvals (only those with ``status``, when given)."""
        keys = self._keys
        pending = status == "pending"
        index = keys.tenant_pending_approvals(tenant) if pending else keys.tenant_approvals(tenant)
        found: list[Approval] = []
        start, page = 0, max(limit, 50)
        while len(found) < limit:
            ids = cast(list[bytes], await self._redis.zrevrange(index, start, start + page - 1))
            if not ids:
                break
            async with self._redis.pipeline(transaction=False) as pipe:
                for approval_id in ids:
                    pipe.hgetall(keys.approval(approval_id.decode()))
                rows = await pipe.execute()
            for raw in rows:
                if raw:
                    approval = parse_approval(raw)
                    if status is None or approval.status == status:
                        found.append(approval)
            start += page
        return found[:limit]

    @guarded
    async def claim_expired(self, lease_seconds: float, limit: int) -> list[str]:
        """Lease up to ``limit`` approvals past their expiry, for ``lease_seconds``."""
        pairs = await claim_due(self._claim, self._keys.expiring_approvals, lease_seconds, limit)
        return [approval_id for approval_id, _ in pairs]

    @guarded
    async def drop_expiring(self, approval_id: str) -> None:
        """Forget an expiry whose approval is gone (its record expired)."""
        await self._redis.zrem(self._keys.expiring_approvals, approval_id)

    @guarded
    async def pending_count(self) -> int:
        """Approvals waiting for a decision now, every tenant."""
        return int(await self._redis.zcard(self._keys.expiring_approvals))


def approval_event(approval: Approval) -> dict[str, Any]:
    """The ``approval_required`` event's data: what a reviewer needs to decide."""
    return approval.model_dump(
        mode="json", include={"approval_id", "task_id", "agent", "tool", "arguments",
                              "reasoning", "step", "created_at", "expires_at", "on_timeout"},
    )  # fmt: skip
