"""The worker's Celery consumer: Celery's own, made to survive losing Redis with runs in hand.

``worker.main`` calls ``install_consumer`` (Celery's ``worker_consumer`` setting and one
consumer bootstep). When the broker connection drops, Celery closes the dead connection and
reconnects; the runs this worker holds keep going on its event loop (the threads pool cannot
cancel them). With kombu's Redis transport, four things then go wrong, each found by
``tests/faults/test_redis_restart.py``:

* closing the dead channel pushes every held message back onto the queue. kombu's first close
  fails on the dead socket and leaves the channel half open; the second runs after the
  transport was detached and raises ``AttributeError`` (not a connection error), so the worker
  dies ("Unrecoverable error") instead of reconnecting;
* when that restore does work (Redis back already), it re-queues runs still running here, which
  would run twice;
* a held run that ends later acknowledges (or, if it could not record its end, rejects) its
  message through the old channel, whose transport is gone: ``AttributeError`` again, raised in
  the consumer's event loop, and the worker dies after reconnecting;
* kombu takes a message off the queue (``BRPOP``) and only then records it as unacknowledged
  (``HSET unacked``, a second round trip); when Redis goes away in between, the message is in
  neither place: lost, its task ``queued`` forever.

So on connection loss the held messages are left where kombu keeps them in Redis (the
``unacked`` hash, persisted like the queue), and the old channels' acknowledgements become
no-ops: kombu's visibility-timeout sweep delivers those messages again, and a delivery of a
task that already ended is a no-op (``worker.execution``), so nothing is lost or run twice.
A message whose recording failed (Redis gone, or refusing writes at ``maxmemory``) is kept in
memory and put back on its queue as soon as the consumer is connected again, or, while the
consumer waits, every few seconds (``KeepStrandedDeliveries``). A worker *killed* between the
two round trips takes its message with it (kombu's Redis transport has no atomic pop): the
lost-message sweeper (``queue.lost``) queues that task again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer

from agent_service.queue.reclaim import DeliveryNotRecorded
from agent_service.store.client import is_out_of_memory
from agent_service.worker.deliveries import DeliveryTracking, tolerate_full_redis

log = logging.getLogger(__name__)

Stranded = tuple[Any, str, str]  # (raw message, exchange, routing key)


def install_consumer(app: Celery, tracking: DeliveryTracking | None = None) -> None:
    """Use this module's consumer and bootstep in ``app``'s worker (before it starts);
    ``tracking`` adds ownership records, the memory pause and the fault point to each
    connection's QoS (``worker.deliveries``)."""
    app.conf.worker_consumer = f"{__name__}:Consumer"
    tolerate_full_redis()
    step = type("TrackDeliveries", (KeepStrandedDeliveries,), {"tracking": tracking})
    app.steps["consumer"].add(step)


class DetachedQoS:
    """Replaces the QoS of a channel whose connection was lost: acks and rejects do nothing,
    so the message stays in Redis' ``unacked`` hash until the visibility timeout returns it."""

    def ack(self, delivery_tag: str) -> None:
        log.info(
            "message %s ended after the broker connection it came from was lost: it is "
            "delivered again after the visibility timeout and then ignored (task ended)",
            delivery_tag,
        )

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        log.info(
            "message %s handed back after the broker connection it came from was lost: "
            "delivered again after the visibility timeout",
            delivery_tag,
        )

    def restore_unacked(self) -> None:
        return None

    def restore_unacked_once(self, stderr: object = None) -> None:
        return None

    def can_consume(self) -> bool:
        return False


class Consumer(CeleryConsumer):  # type: ignore[misc]
    def on_connection_error_after_connected(self, exc: Exception) -> None:
        channels = _channels(self.connection)
        held = 0
        for channel in channels:
            channel.do_restore = False  # leave held messages in Redis (see the module doc)
            qos = getattr(channel, "_qos", None)
            held += len(getattr(qos, "_delivered", None) or ())
        if held:
            log.warning(
                "broker connection lost with %d message(s) in hand: they stay unacknowledged "
                "in Redis and are delivered again after the visibility timeout",
                held,
            )
        try:
            super().on_connection_error_after_connected(exc)
        finally:
            for channel in channels:
                channel._qos = DetachedQoS()


def _channels(connection: Any) -> list[Any]:
    """The channels of a kombu connection (none if it never connected)."""
    if connection is None:
        return []
    found = []
    default = getattr(connection, "_default_channel", None)
    if default is not None:
        found.append(default)
    transport = getattr(connection, "_transport", None)
    for channel in getattr(transport, "channels", None) or ():
        if channel is not default:
            found.append(channel)
    return found


class KeepStrandedDeliveries(bootsteps.StartStopStep):  # type: ignore[misc]
    """Keeps the messages kombu took off the queue but could not record as unacknowledged
    (Redis went away between the two round trips), and puts them back on their queue when
    the consumer starts again on a new connection."""

    requires = ("celery.worker.consumer.tasks:Tasks",)
    tracking: DeliveryTracking | None = None
    retry_seconds = 2.0
    """While messages are stranded, how often putting them back is tried again (consuming
    waits meanwhile): a Redis that refused them for being full may have room again."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stranded: list[Stranded] = []  # lives as long as the consumer, across restarts

    def start(self, c: Any) -> None:
        channel = getattr(c.task_consumer, "channel", None)
        qos = getattr(channel, "qos", None)
        if channel is None or not hasattr(channel, "_do_restore_message") or qos is None:
            return  # not kombu's Redis transport
        self._put_back(channel)
        if self.tracking is not None:
            self.tracking.attach(qos)
        original, can_consume = qos.append, qos.can_consume
        errors = channel.connection_errors
        stranded = self.stranded
        retry_at = 0.0

        def append(message: Any, delivery_tag: str) -> None:
            try:
                original(message, delivery_tag)
            except (*errors, DeliveryNotRecorded):
                delivery = message.delivery_info
                stranded.append((message._raw, delivery["exchange"], delivery["routing_key"]))
                raise

        def consume() -> bool:
            # Called by kombu's poller on the consumer thread, like _put_back at start.
            nonlocal retry_at
            if stranded and time.monotonic() >= retry_at:
                retry_at = time.monotonic() + self.retry_seconds
                self._put_back(channel)
            return not stranded and bool(can_consume())

        qos.append = append
        qos.can_consume = consume

    def _put_back(self, channel: Any) -> None:
        if not self.stranded:
            return
        try:
            with channel.conn_or_acquire() as client:
                while self.stranded:
                    raw, exchange, routing_key = self.stranded[0]
                    # kombu's own restore: marks it redelivered, pushes it to be taken next.
                    channel._do_restore_message(raw, exchange, routing_key, client)
                    self.stranded.pop(0)
                    log.warning(
                        "put back a message taken off queue %s just before Redis went away",
                        routing_key,
                    )
        except Exception as exc:
            if not (isinstance(exc, channel.connection_errors) or is_out_of_memory(exc)):
                raise
            log.warning(
                "cannot put back %d message(s) yet: Redis unreachable or full", len(self.stranded)
            )
