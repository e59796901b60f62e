"""Waiting for a replica to hold a new task before the API answers 202 (Redis ``WAIT``).

Redis replicates asynchronously: a master that fails right after acknowledging a write may
lose it when a replica takes over (Sentinel failover). ``queue.producer`` calls
``ReplicaAck.wait`` after creating a task, so "accepted" means "on a replica too": the
failover keeps every accepted task.

``WAIT`` counts the replicas that acknowledged the calling connection's last replicated write,
and the task's ``MULTI`` ran on whatever pooled connection was free. So on one connection the
check publishes to a channel nobody subscribes to (``PUBLISH`` is replicated, and never refused
at ``maxmemory``) and waits there: the replication stream is ordered, so a replica that has the
``PUBLISH`` has the task written before it.

The task exists once its ``MULTI`` ran, so this check never fails a submission: a replica that
does not answer in time (or an error) is logged, and while too few replicas answer (a master
just promoted, whose replica is gone) the check is skipped for ``DEGRADED_SECONDS`` at a time
instead of adding its timeout to every submission.
"""

from __future__ import annotations

import logging
import time

from agent_service.settings import RedisSettings
from agent_service.store.client import Redis
from agent_service.store.keys import Keys

log = logging.getLogger(__name__)

DEGRADED_SECONDS = 5.0


class ReplicaAck:
    """Waits up to ``timeout_seconds`` for ``replicas`` replicas to have this process's
    writes so far."""

    def __init__(self, client: Redis, keys: Keys, replicas: int, timeout_seconds: float) -> None:
        self._redis = client
        self._channel = f"{keys.prefix}replication-probe"
        self.replicas = replicas
        self._timeout_ms = max(1, int(timeout_seconds * 1000))
        self._skip_until = float("-inf")

    @classmethod
    def of(cls, client: Redis, keys: Keys, settings: RedisSettings) -> ReplicaAck | None:
        """The check ``settings`` ask for (``AGENT_REDIS_ACK_REPLICAS``; by default one
        replica with Sentinels), or None. Its wait stays below the socket timeout."""
        replicas = settings.ack_replicas
        if replicas is None:
            replicas = 1 if settings.sentinels else 0
        if replicas <= 0:
            return None
        timeout = min(settings.ack_timeout_seconds, settings.socket_timeout_seconds / 2)
        return cls(client, keys, replicas, timeout)

    async def wait(self) -> int | None:
        """The replicas that acknowledged (None: not checked, or the check failed)."""
        now = time.monotonic()
        if now < self._skip_until:
            return None
        try:
            async with self._redis.client() as connection:
                await connection.publish(self._channel, "")
                answer = await connection.execute_command(  # type: ignore[no-untyped-call]
                    "WAIT", self.replicas, self._timeout_ms
                )
        except Exception as exc:  # the task exists: never fail its submission for this
            log.warning("could not check that a task reached a Redis replica: %s", exc)
            return None
        acked = int(answer)
        if acked < self.replicas:
            self._skip_until = now + DEGRADED_SECONDS
            log.warning(
                "a task was accepted before it reached %d Redis replica(s) (%d acknowledged "
                "within %d ms): a failover now could lose it; not waiting for replicas for "
                "the next %.0f s",
                self.replicas,
                acked,
                self._timeout_ms,
                DEGRADED_SECONDS,
            )
        return acked
