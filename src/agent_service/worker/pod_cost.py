"""The pod-deletion-cost annotation: a scale-down removes idle workers first.

When a ReplicaSet scales down it deletes the pods with the lowest
``controller.kubernetes.io/pod-deletion-cost`` first. With ``AGENT_WORKER_POD_DELETION_COST``
each worker keeps its own pod's annotation equal to its runs in progress, so idle workers go
first and busy ones keep their runs (Celery's warm shutdown still lets a removed worker finish
what it holds).

The patch is one HTTPS request (a JSON merge patch of the pod's metadata), made with aiohttp,
the service-account token (read for each patch: projected tokens rotate) and the cluster CA: the
``kubernetes`` client would cost every worker tens of MB for one call, and only
``controller/`` may import it. Patches are rate limited: a changed count is written at most
every ``AGENT_WORKER_POD_DELETION_COST_INTERVAL_SECONDS``, an unchanged one never. The pod's
service account needs ``patch`` on pods in its namespace (the chart's worker Role).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
TICK_SECONDS = 1.0
FAILURE_BACKOFF_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class PodRef:
    """The pod to annotate and how to reach the API server."""

    api_url: str
    namespace: str
    name: str
    service_account_dir: Path

    @property
    def url(self) -> str:
        ns, name = quote(self.namespace, safe=""), quote(self.name, safe="")
        return f"{self.api_url.rstrip('/')}/api/v1/namespaces/{ns}/pods/{name}"


def patch_body(cost: int) -> bytes:
    """The JSON merge patch setting the annotation to ``cost`` (annotations are strings)."""
    return json.dumps({"metadata": {"annotations": {ANNOTATION: str(cost)}}}).encode()


@dataclass
class CostPolicy:
    """When to patch (pure; ``now`` is monotonic seconds): only a changed count, at most once
    per ``interval``, and not before ``retry_at`` after a failure."""

    interval: float
    patched: int | None = None
    last_patch: float = float("-inf")
    retry_at: float = float("-inf")

    def due(self, count: int, now: float) -> bool:
        return (
            count != self.patched
            and now >= self.last_patch + self.interval
            and (now >= self.retry_at)
        )

    def done(self, count: int, now: float) -> None:
        self.patched, self.last_patch = count, now

    def failed(self, now: float) -> None:
        self.last_patch, self.retry_at = now, now + FAILURE_BACKOFF_SECONDS


class PatchError(Exception):
    """The API server refused the patch (``status``) or could not be reached (0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


async def patch_deletion_cost(session: aiohttp.ClientSession, pod: PodRef, cost: int) -> None:
    """Set the pod's deletion cost to ``cost`` (raises ``PatchError``)."""
    token = (pod.service_account_dir / "token").read_text().strip()
    context = ssl.create_default_context(cafile=str(pod.service_account_dir / "ca.crt"))
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/merge-patch+json",
        "Accept": "application/json",
    }
    try:
        async with session.patch(
            pod.url, data=patch_body(cost), headers=headers, ssl=context
        ) as response:
            if response.status >= 300:
                text = (await response.text())[:300]
                raise PatchError(response.status, text)
    except aiohttp.ClientError as exc:
        raise PatchError(0, f"{type(exc).__name__}: {exc}") from exc


class PodDeletionCost:
    """Keeps the annotation equal to ``in_progress()`` (see the module doc)."""

    def __init__(self, pod: PodRef, in_progress: Callable[[], int], interval: float) -> None:
        self._pod = pod
        self._in_progress = in_progress
        self._policy = CostPolicy(interval)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Tick every second on this event loop until ``stop``."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pod-deletion-cost")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            await self.tick(time.monotonic())
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self, now: float) -> None:
        """Patch the annotation if the policy says so."""
        count = self._in_progress()
        if not self._policy.due(count, now):
            return
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            await patch_deletion_cost(self._session, self._pod, count)
        except (PatchError, OSError) as exc:
            self._policy.failed(now)
            hint = (
                " (the pod's service account needs `patch` on pods: the chart's worker Role)"
                if isinstance(exc, PatchError) and exc.status in (401, 403)
                else ""
            )
            log.error("cannot set the pod deletion cost: %s%s", exc, hint)
            return
        self._policy.done(count, now)
