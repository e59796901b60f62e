"""The worker consumer's Redis-outage pieces, on stand-ins for kombu's channel and QoS.

The real thing is exercised end to end by tests/faults/test_redis_restart.py; the moment a
message is taken off the queue just before Redis goes away happens there only by chance, so
the bootstep's two halves (keep the message, put it back after reconnecting) are pinned here.
"""

from __future__ import annotations

import queue
from contextlib import contextmanager
from typing import Any

import pytest
from kombu.transport.redis import QoS as KombuRedisQoS
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError

from agent_service.queue.reclaim import DeliveryNotRecorded
from agent_service.worker.consumer import DetachedQoS, KeepStrandedDeliveries
from agent_service.worker.deliveries import tolerate_full_redis


class FakeQoS:
    def __init__(self) -> None:
        self.fail = False
        self.appended: list[str] = []

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.fail:
            raise RedisConnectionError("Redis went away")
        self.appended.append(delivery_tag)

    def can_consume(self) -> bool:
        return True


class FakeChannel:
    connection_errors = (RedisConnectionError,)

    def __init__(self) -> None:
        self.qos = FakeQoS()
        self.restored: list[tuple[Any, str, str]] = []
        self.down = False

    @contextmanager
    def conn_or_acquire(self) -> Any:
        if self.down:
            raise RedisConnectionError("still down")
        yield object()

    def _do_restore_message(self, raw: Any, exchange: str, routing_key: str, client: Any) -> None:
        self.restored.append((raw, exchange, routing_key))


class FakeMessage:
    def __init__(self, tag: str) -> None:
        self._raw = {"body": tag}
        self.delivery_info = {"exchange": "", "routing_key": "agent"}


class FakeConsumer:
    def __init__(self, channel: FakeChannel) -> None:
        self.task_consumer = type("TaskConsumer", (), {"channel": channel})()


def step() -> KeepStrandedDeliveries:
    return KeepStrandedDeliveries(None)


def test_a_message_that_could_not_be_recorded_is_put_back_after_reconnecting() -> None:
    keeper = step()
    first = FakeChannel()
    keeper.start(FakeConsumer(first))
    first.qos.append(FakeMessage("a"), "tag-a")  # recorded: nothing to keep
    first.qos.fail = True
    with pytest.raises(RedisConnectionError):  # kombu and Celery still see the outage
        first.qos.append(FakeMessage("b"), "tag-b")
    assert keeper.stranded == [({"body": "b"}, "", "agent")]

    second = FakeChannel()  # the consumer restarts on a new connection
    keeper.start(FakeConsumer(second))
    assert second.restored == [({"body": "b"}, "", "agent")]
    assert keeper.stranded == []


def test_stranded_messages_wait_while_redis_is_still_unreachable() -> None:
    keeper = step()
    keeper.stranded = [({"body": "b"}, "", "agent")]
    channel = FakeChannel()
    channel.down = True
    keeper.start(FakeConsumer(channel))
    assert keeper.stranded == [({"body": "b"}, "", "agent")]
    channel.down = False
    keeper.start(FakeConsumer(channel))
    assert keeper.stranded == []
    assert channel.restored == [({"body": "b"}, "", "agent")]


def test_the_old_channel_acknowledges_nothing() -> None:
    qos = DetachedQoS()
    qos.ack("tag")  # the message stays in Redis' unacked hash: no Redis call, no error
    qos.reject("tag", requeue=True)
    assert qos.restore_unacked_once() is None
    assert qos.can_consume() is False


def test_while_messages_are_stranded_the_consumer_waits_and_retries_putting_them_back() -> None:
    # Redis refused to record a message (full, or gone): nothing new is taken until it is back
    # on its queue, which the poller's own calls retry every few seconds.
    keeper = step()
    keeper.retry_seconds = 0.0
    channel = FakeChannel()
    keeper.start(FakeConsumer(channel))
    channel.qos.fail = True
    with pytest.raises(RedisConnectionError):
        channel.qos.append(FakeMessage("b"), "tag-b")
    channel.down = True
    assert channel.qos.can_consume() is False
    assert keeper.stranded == [({"body": "b"}, "", "agent")]
    channel.down = False
    assert channel.qos.can_consume() is True
    assert channel.restored == [({"body": "b"}, "", "agent")]


def test_a_message_redis_refused_to_record_is_kept_and_not_run() -> None:
    # Redis at maxmemory refused the unacked record: the message is kept to be put back, and
    # kombu's event loop, which ignores Empty, goes on without running it.
    keeper = step()
    channel = FakeChannel()
    keeper.start(FakeConsumer(channel))

    def full(message: Any, delivery_tag: str) -> None:
        raise DeliveryNotRecorded("OOM")

    # The bootstep wraps what it finds (the tracking's recording append, in the worker).
    keeper.stranded.clear()
    channel.qos = FakeQoS()
    channel.qos.append = full  # type: ignore[method-assign]
    keeper.start(FakeConsumer(channel))
    with pytest.raises(queue.Empty):
        channel.qos.append(FakeMessage("c"), "tag-c")
    assert keeper.stranded == [({"body": "c"}, "", "agent")]


class FullPipe:
    def zrem(self, *_: Any) -> FullPipe:
        return self

    def hdel(self, *_: Any) -> FullPipe:
        return self

    def execute(self) -> None:
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")


class FullChannel:
    do_restore = False
    unacked_key = "unacked"
    unacked_index_key = "unacked_index"
    unacked_mutex_key = "unacked_mutex"
    unacked_mutex_expire = 300
    visibility_timeout = 60

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Any:
        yield FullClient()


class FullClient:
    def pipeline(self) -> FullPipe:
        return FullPipe()

    def lock(self, *_: Any, **__: Any) -> FullClient:  # kombu's restore mutex
        return self

    def acquire(self, **_: Any) -> bool:
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")


def test_an_acknowledgement_redis_refuses_does_not_stop_the_worker() -> None:
    tolerate_full_redis()
    qos = KombuRedisQoS(FullChannel(), prefetch_count=1)
    qos._delivered["tag-1"] = object()
    qos.ack("tag-1")  # no "Unrecoverable error": the record stays until the visibility timeout
    assert "tag-1" in qos._dirty  # kombu's in-memory ack: the slot is free again
    assert qos.can_consume()
    assert qos.restore_visible() is None  # kombu's sweep skips what Redis refuses, too
