"""Redelivery: a worker SIGKILLed mid-run, and the poison cap, with real worker processes.

This module never starts the shared ``worker`` fixture: its tests own every worker on the queue.
"""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.integration.stack import StackEnv, wait_task
from tests.integration.test_tasks import submit


def test_worker_killed_mid_run_task_is_redelivered_and_succeeds(
    stack_env: StackEnv, client: httpx.Client
) -> None:
    env = {"AGENT_WORKER_VISIBILITY_TIMEOUT_SECONDS": "4"}
    first = stack_env.start_worker(**env)
    try:
        task_id = submit(client, {"message": "a slow question", "model": "slow"})
        record = wait_task(client, task_id, {"running"}, timeout=20)
        assert record["attempts"] == 1
        time.sleep(0.3)
        first.signal(signal.SIGKILL)
        first.popen.wait(timeout=10)
    finally:
        first.stop()
    assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "running"
    second = stack_env.start_worker(**env)
    try:
        record = wait_task(client, task_id, {"succeeded", "failed"}, timeout=40)
    finally:
        second.stop()
    assert record["status"] == "succeeded", record
    assert record["attempts"] == 2


@pytest.mark.timeout(180)
def test_task_whose_worker_always_dies_ends_as_poison(
    stack_env: StackEnv, client: httpx.Client
) -> None:
    env = {"AGENT_WORKER_VISIBILITY_TIMEOUT_SECONDS": "3", "AGENT_WORKER_MAX_REDELIVERIES": "1"}
    task_id = submit(client, {"message": "a slow question", "model": "slow"})
    for attempt in (1, 2):
        doomed = stack_env.start_worker(**env)
        try:
            deadline = time.monotonic() + 40
            while client.get(f"/v1/tasks/{task_id}").json()["attempts"] < attempt:
                assert time.monotonic() < deadline, "task was not (re)delivered"
                time.sleep(0.1)
            doomed.signal(signal.SIGKILL)
            doomed.popen.wait(timeout=10)
        finally:
            doomed.stop()
    last = stack_env.start_worker(**env)
    try:
        record = wait_task(client, task_id, {"succeeded", "failed"}, timeout=40)
    finally:
        last.stop()
    assert record["status"] == "failed"
    assert record["error"]["type"] == "poison"
    assert record["attempts"] == 3
