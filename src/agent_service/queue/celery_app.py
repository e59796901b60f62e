"""The Celery app factory, shared by the API (message format only) and the worker.

Settings follow the Celery-on-Kubernetes notes: late acks so a run survives its worker's death,
one message reserved per free slot, a visibility timeout above the longest run so a live run is
never delivered twice, and time limits derived from the run timeout.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import quote

from celery import Celery

from agent_service.settings import Settings
from agent_service.store.connection import RedisConnection, netloc

RUN_TASK_NAME = "agent_service.run"
VISIBILITY_MARGIN_SECONDS = 60.0


def visibility_timeout(settings: Settings, run_timeout_seconds: float) -> float:
    """Seconds before an unacknowledged message is redelivered (above the longest run)."""
    if settings.worker.visibility_timeout_seconds is not None:
        return settings.worker.visibility_timeout_seconds
    return run_timeout_seconds + VISIBILITY_MARGIN_SECONDS


def broker_settings(connection: RedisConnection) -> dict[str, Any]:
    """Celery's broker settings for ``connection``: kombu's ``redis`` transport, or its
    ``sentinel`` transport (one ``sentinel://`` URL per node, ``master_name``). The user and
    password go into each URL percent-encoded (kombu decodes them, so any character works):
    given apart, kombu would drop them when it fails over to the next Sentinel. TLS verifies
    the server's certificate (kombu's default for rediss:// is not to)."""
    userinfo = ""
    if connection.username or connection.password:
        user = quote(connection.username or "", safe="")
        userinfo = f"{user}:{quote(connection.password or '', safe='')}@"
    db = connection.db
    if connection.uses_sentinel:
        url = ";".join(
            f"sentinel://{userinfo}{netloc(host, port)}/{db}" for host, port in connection.sentinels
        )
        transport: dict[str, Any] = {
            "master_name": connection.master,
            "sentinel_kwargs": connection.sentinel_kwargs(),
        }
    else:
        scheme = "rediss" if connection.tls else "redis"
        url = f"{scheme}://{userinfo}{netloc(connection.host, connection.port)}/{db}"
        transport = {}
    use_ssl: dict[str, Any] | bool = False
    if connection.tls:
        use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        if connection.ca_file is not None:
            use_ssl["ssl_ca_certs"] = str(connection.ca_file)
    return {"broker_url": url, "broker_use_ssl": use_ssl, "transport_options": transport}


def create_celery_app(settings: Settings, run_timeout_seconds: float) -> Celery:
    """A Celery app on the Redis broker. No result backend: task records live in ``store``."""
    visibility = visibility_timeout(settings, run_timeout_seconds)
    broker = broker_settings(RedisConnection.of(settings.redis))
    app = Celery("agent_service", set_as_current=False)
    app.conf.update(
        broker_url=broker["broker_url"],
        broker_use_ssl=broker["broker_use_ssl"],
        task_default_queue=settings.worker.queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message reserved per free slot: a prefetch would hide backlog from LLEN (KEDA)
        # and starve other workers while this one is busy.
        worker_prefetch_multiplier=1,
        # Celery >= 5.6: a worker takes a message only when a slot is free, so everything not
        # running stays on the queue, where KEDA counts it (the multiplier alone still lets
        # a busy worker hold one message per slot).
        worker_disable_prefetch=True,
        broker_transport_options={
            **broker["transport_options"],
            "visibility_timeout": visibility,
            # Sweep for messages of dead workers every few seconds instead of kombu's default
            # ~100 s (interval 10 s x throttle 10): redelivery follows the visibility timeout.
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Effective in prefork pools; the threads pool relies on the asyncio run timeout, which
        # fires first (soft limit = run timeout + 10 s, hard = + 30 s).
        task_soft_time_limit=run_timeout_seconds + 10,
        task_time_limit=run_timeout_seconds + 30,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
    )
    return app
