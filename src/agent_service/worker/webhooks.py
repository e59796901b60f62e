"""Delivering completion webhooks from the Redis outbox, on the worker's event loop.

``worker.main`` starts one ``WebhookDispatcher`` per worker process on its ``LoopThread``, next
to the runs, and stops it at shutdown. Every ``POLL_SECONDS`` it leases the due deliveries
(``store.webhooks``), at most ``MAX_IN_FLIGHT`` at once per process, and POSTs each through an
aiohttp session made by ``egress.create_guarded_session``: the SSRF guard checks the address it
connects to, after DNS. Each attempt is signed (``webhooks.signing``), recorded in the task
record, counted in ``agent_webhook_deliveries_total{outcome}`` and logged with its task id; what
follows it (delivered, a retry after a backoff, dead letter) is ``webhooks.policy``'s decision.

A worker that dies mid-delivery holds nothing: its lease runs out and any worker delivers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from agent_service import __version__
from agent_service.domain.approvals import Approval
from agent_service.domain.errors import DependencyUnavailableError
from agent_service.domain.tasks import TaskRecord, WebhookDelivery, WebhookState
from agent_service.egress.guard import AddressNotAllowedError, check_url
from agent_service.egress.session import create_guarded_session
from agent_service.observability.metrics import Metrics
from agent_service.runtime import ConfigHolder
from agent_service.settings import Settings
from agent_service.store.approvals import ApprovalStore
from agent_service.store.tasks import TaskStore
from agent_service.store.webhooks import APPROVAL_MEMBER_PREFIX, Claim, WebhookOutbox
from agent_service.webhooks.payload import approval_body, delivery_body
from agent_service.webhooks.policy import (
    DEAD,
    FINAL_STATUSES,
    Failure,
    Outcome,
    after_attempt,
    begin,
    decide,
    next_delay,
    target_refusal,
)
from agent_service.webhooks.signing import APPROVAL_REQUIRED, delivery_headers
from agent_service.webhooks.tenant_secret import signing_secret

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
MAX_IN_FLIGHT = 32
"""Deliveries one worker process makes at once (a slow receiver holds one for its timeout)."""
USER_AGENT = f"agent-service/{__version__} webhooks"


@dataclass(frozen=True)
class PostResult:
    """What one attempt got: an HTTP status, or a failure with a message safe to record."""

    status_code: int | None = None
    failure: Failure | None = None
    error: str | None = None
    duration_ms: float = 0.0


async def post_webhook(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
) -> PostResult:
    """POST ``body`` once; redirects are not followed (the target would escape the checks)."""
    started = time.monotonic()

    def ended(
        status_code: int | None = None, failure: Failure | None = None, error: str | None = None
    ) -> PostResult:
        duration = round((time.monotonic() - started) * 1000, 1)
        return PostResult(status_code, failure, error, duration)

    try:
        async with session.post(
            url,
            data=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            allow_redirects=False,
        ) as response:
            return ended(status_code=response.status)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, AddressNotAllowedError):
            return ended(failure=Failure.REFUSED, error=f"{exc.host}: {exc.os_error}")
        # Host and port only: a receiver's URL may carry a token in its query string.
        return ended(failure=Failure.CONNECTION, error=f"cannot connect to {exc.host}:{exc.port}")
    except TimeoutError:
        return ended(failure=Failure.TIMEOUT, error=f"no answer within {timeout_seconds:g} s")
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        return ended(failure=Failure.CONNECTION, error=f"connection error: {type(exc).__name__}")
    except aiohttp.ClientError as exc:
        return ended(failure=Failure.INVALID, error=f"request failed: {type(exc).__name__}")


class WebhookDispatcher:
    """Polls the outbox and delivers what is due, until ``stop``. Lives on the worker's loop."""

    def __init__(
        self,
        tasks: TaskStore,
        outbox: WebhookOutbox,
        configs: ConfigHolder,
        settings: Settings,
        metrics: Metrics,
        *,
        approvals: ApprovalStore | None = None,
    ) -> None:
        """``configs`` gives the config in force (tenant secrets) at each delivery;
        ``approvals`` the approval records behind ``approval.required`` deliveries."""
        self._tasks = tasks
        self._approvals = approvals
        self._outbox = outbox
        self._configs = configs
        self._all_settings = settings
        self._settings = settings.webhooks
        self._metrics = metrics
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._redis_down = False

    async def start(self) -> None:
        """Start polling (call on the worker's event loop)."""
        # The guard refuses private addresses unless the operator allowed them for webhooks,
        # independently of what the agent config allows its HTTP tools.
        self._session = create_guarded_session(self._settings.allow_private_networks)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming; let deliveries in flight end for up to ``grace_seconds``, cancel the
        rest (their leases run out and another worker delivers them)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), POLL_SECONDS)

    async def _poll(self) -> None:
        try:
            claims = await self._outbox.claim(
                self._settings.lease_seconds, MAX_IN_FLIGHT - len(self._in_flight)
            )
        except DependencyUnavailableError as exc:
            if not self._redis_down:
                log.warning("webhook outbox unreachable, retrying: %s", exc)
            self._redis_down = True
            return
        self._redis_down = False
        for claim in claims:
            task = asyncio.get_running_loop().create_task(self._guarded_deliver(claim))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _guarded_deliver(self, claim: Claim) -> None:
        try:
            await self._deliver(claim)
        except Exception:
            # Redis lost mid-delivery, or a bug: the lease runs out and the delivery is retried.
            log.exception("webhook delivery failed", extra={"task_id": claim.task_id})

    async def _subject(
        self, claim: Claim
    ) -> tuple[TaskRecord | None, WebhookState | None, Approval | None]:
        """The task, the delivery's state and, for an ``approval.required`` delivery, the
        approval it announces."""
        member = claim.task_id
        if not member.startswith(APPROVAL_MEMBER_PREFIX) or self._approvals is None:
            record = await self._tasks.get(member)
            return record, record.webhook if record is not None else None, None
        approval = await self._approvals.get(member.removeprefix(APPROVAL_MEMBER_PREFIX))
        if approval is None:
            return None, None, None
        return await self._tasks.get(approval.task_id), approval.webhook, approval

    async def _deliver(self, claim: Claim) -> None:
        record, state, approval = await self._subject(claim)
        if record is None or state is None or state.status in FINAL_STATUSES:
            # Expired record, or a completion notified already: nothing left to deliver.
            await self._outbox.drop(claim)
            return
        attempt = len(state.attempts) + 1
        if attempt > self._settings.max_attempts:  # the limit was lowered since
            await self._outbox.dead(claim, state.model_copy(update={"status": DEAD}))
            self._count_and_log(
                claim, state, attempt, Outcome.DEAD, PostResult(error="no attempt left")
            )
            return
        at = time.time()
        result = await self._attempt(claim, record, state, attempt, approval)
        if result is None:
            return
        outcome = decide(result.status_code, result.failure, attempt, self._settings.max_attempts)
        delivery = WebhookDelivery(
            attempt=attempt,
            at=round(at, 3),
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        after = after_attempt(state, delivery, outcome)
        if outcome is Outcome.RETRY:
            delay = next_delay(
                attempt, self._settings.backoff_initial_seconds, self._settings.backoff_max_seconds
            )
            kept = await self._outbox.retry(claim, after, delay)
        elif outcome is Outcome.DELIVERED:
            kept = await self._outbox.delivered(claim, after)
        else:
            kept = await self._outbox.dead(claim, after)
        if not kept:
            log.warning(
                "webhook lease ran out before attempt %d was recorded; another worker "
                "delivers again",
                attempt,
                extra={"task_id": claim.task_id},
            )
        self._count_and_log(claim, state, attempt, outcome, result)

    async def _attempt(
        self,
        claim: Claim,
        record: TaskRecord,
        state: WebhookState,
        attempt: int,
        approval: Approval | None = None,
    ) -> PostResult | None:
        """Sign and POST attempt ``attempt``; None when the lease was lost before it began."""
        config = self._configs.current.config
        secret = signing_secret(config, record.tenant, self._all_settings)
        if secret is None:
            return PostResult(
                failure=Failure.NO_SECRET,
                error=f"no webhook secret for tenant {record.tenant!r} (its webhookSecret, "
                "or AGENT_WEBHOOKS_SECRET_FILE)",
            )
        refusal = target_refusal(
            state.url,
            allow_http=self._settings.allow_http,
            allowed_hosts=self._settings.allowed_hosts,
        )
        try:
            # Literal IP hosts never reach the guarded resolver: checked here.
            check_url(state.url, self._settings.allow_private_networks)
        except AddressNotAllowedError as exc:
            refusal = refusal or str(exc)
        if refusal is not None:
            return PostResult(failure=Failure.REFUSED, error=refusal)
        delivering = begin(state)
        if not await self._outbox.begin(claim, delivering):
            log.info("webhook lease lost before delivery", extra={"task_id": claim.task_id})
            return None
        if approval is None:
            body = delivery_body(record.model_copy(update={"webhook": delivering}), attempt)
            headers = delivery_headers(secret, record.task_id, attempt, body)
        else:
            body = approval_body(
                record, approval.model_copy(update={"webhook": delivering}), attempt
            )
            headers = delivery_headers(
                secret,
                record.task_id,
                attempt,
                body,
                event=APPROVAL_REQUIRED,
                subject=approval.approval_id,
            )
        assert self._session is not None  # set by start()
        return await post_webhook(
            self._session, state.url, body, headers, self._settings.timeout_seconds
        )

    def _count_and_log(
        self, claim: Claim, state: WebhookState, attempt: int, outcome: Outcome, result: PostResult
    ) -> None:
        self._metrics.webhook_deliveries.labels(outcome.value).inc()
        answer = f"HTTP {result.status_code}" if result.status_code is not None else result.error
        level = logging.INFO if outcome is not Outcome.DEAD else logging.WARNING
        log.log(
            level,
            "webhook attempt %d to %s: %s (%s)",
            attempt,
            webhook_host(state.url),
            outcome.value,
            answer,
            extra={
                "task_id": claim.task_id,
                "attempt": attempt,
                "duration_ms": result.duration_ms,
                "error_type": result.failure.value if result.failure else None,
            },
        )


def webhook_host(url: str) -> str:
    """The host of a webhook URL, for logs (never the path or query: they may hold tokens)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
