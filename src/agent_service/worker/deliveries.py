"""What the worker adds to kombu's handling of each message it takes off the queue.

``worker.consumer``'s bootstep calls ``DeliveryTracking.attach`` on the QoS of the consumer's
channel (kombu's Redis ``QoS``, one per connection), which then:

* records a taken message as unacknowledged **and** as held by this worker in one ``MULTI``
  (``queue.reclaim.record_delivery``): the live workers can put a dead worker's messages back
  as soon as its lease ends, without waiting for the visibility timeout; acknowledgements and
  restores get ``mark_released`` on kombu's own pipeline. A record Redis refuses at
  ``maxmemory`` is not run: the message is kept in memory and put back like one taken just
  before an outage (``worker.consumer.KeepStrandedDeliveries``);
* stops taking messages while ``paused`` is set (Redis close to full: ``worker.liveness``),
  and skips kombu's own restores while Redis refuses writes (kombu would stop the worker);
* holds the test-only fault point ``AGENT_FAULT_KILL_AFTER_POP``: the process SIGKILLs itself
  between ``BRPOP`` and the record, the window ``queue.lost`` closes.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from kombu.transport import virtual
from kombu.transport.redis import QoS as KombuRedisQoS

from agent_service.queue.reclaim import mark_released, record_delivery
from agent_service.store.client import is_out_of_memory
from agent_service.store.keys import Keys

log = logging.getLogger(__name__)


class DeliveryTracking:
    """Per-process: who this worker is (``worker``), and the hooks ``attach`` installs."""

    def __init__(self, keys: Keys, worker: str, kill_after_pop: int = 0) -> None:
        self.keys = keys
        self.worker = worker
        self.paused = False
        """Set by the worker's liveness loop while Redis is nearly full: take nothing new."""
        self._kill_after_pop = kill_after_pop
        self._popped = 0
        self._lock = threading.Lock()

    def attach(self, qos: Any) -> None:
        """Install the hooks on a kombu Redis ``QoS`` (see the module doc)."""
        keys, worker = self.keys, self.worker
        remove = qos._remove_from_indices
        can_consume = qos.can_consume

        def append(message: Any, delivery_tag: str) -> None:
            self._fault_point()
            record_delivery(qos, message, delivery_tag, keys, worker)
            # kombu's in-memory bookkeeping of the message (what its own append ends with)
            virtual.QoS.append(qos, message, delivery_tag)  # type: ignore[no-untyped-call]

        def remove_from_indices(delivery_tag: str, pipe: Any = None) -> Any:
            pipe = remove(delivery_tag, pipe)
            mark_released(pipe, keys, worker, delivery_tag)
            return pipe

        def consume() -> bool:
            return not self.paused and bool(can_consume())

        qos.append = append
        qos._remove_from_indices = remove_from_indices
        qos.can_consume = consume

    def _fault_point(self) -> None:
        if not self._kill_after_pop:
            return
        with self._lock:
            self._popped += 1
            hit = self._popped == self._kill_after_pop
        if hit:
            log.error("AGENT_FAULT_KILL_AFTER_POP: killing this worker between BRPOP and HSET")
            os.kill(os.getpid(), signal.SIGKILL)


def tolerate_full_redis() -> None:
    """Make kombu's own writes (its visibility sweep, on every channel; a message handed back;
    an acknowledgement) skip what Redis refuses at ``maxmemory`` instead of stopping the worker
    ("Unrecoverable error"). Patched on kombu's Redis ``QoS`` class, in the worker process
    only, once."""
    qos: Any = KombuRedisQoS
    if getattr(qos, "_agent_tolerates_full_redis", False):
        return
    qos.restore_visible = _unless_full(qos.restore_visible, "looking for expired messages")
    qos.restore_by_tag = _unless_full(qos.restore_by_tag, "handing a message back")
    qos.ack = _ack_unless_full(qos.ack)
    qos._agent_tolerates_full_redis = True


def _ack_unless_full(ack: Callable[..., Any]) -> Callable[..., Any]:
    """kombu's acknowledgement; refused at ``maxmemory`` (a ``MULTI``: Redis refuses every
    queued command then), the message is forgotten in memory only. Its ``unacked`` record
    stays: it is delivered again after the visibility timeout and ignored (its task ended)."""

    def tolerant(qos: Any, delivery_tag: str) -> None:
        try:
            ack(qos, delivery_tag)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            log.warning(
                "Redis is full: message %s stays recorded as unacknowledged until the "
                "visibility timeout (its task ended; the redelivery is ignored)",
                delivery_tag,
            )
            virtual.QoS.ack(qos, delivery_tag)  # type: ignore[no-untyped-call]

    return tolerant


def _unless_full(method: Callable[..., Any], what: str) -> Callable[..., Any]:
    """``method``, except that a write Redis refuses at ``maxmemory`` is skipped (logged):
    kombu would otherwise stop the worker with "Unrecoverable error". What was not restored
    stays in the ``unacked`` records, and comes back once Redis has room."""

    def tolerant(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            log.warning("Redis is full: %s skipped; tried again later", what)
            return None

    return tolerant
