"""Queued runs through a real Celery worker process: lifecycle, events, redelivery, poison."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import redis

from tests.integration.stack import StackEnv, parse_sse, wait_task
from tests.procs import Proc

CALC = {"message": "what is 12*(3+4)?"}


def submit(client: httpx.Client, body: dict[str, object]) -> str:
    resp = client.post("/v1/tasks", json=body)
    assert resp.status_code == 202, resp.text
    payload = resp.json()
    assert payload["status"] == "queued"
    assert resp.headers["location"] == f"/v1/tasks/{payload['task_id']}"
    return str(payload["task_id"])


def test_lifecycle_queued_running_succeeded(client: httpx.Client, worker: Proc) -> None:
    task_id = submit(client, CALC)
    record = wait_task(client, task_id, {"succeeded", "failed"})
    assert record["status"] == "succeeded", record
    assert record["attempts"] == 1
    assert record["created_at"] <= record["started_at"] <= record["finished_at"]
    result = record["result"]
    assert "84" in result["answer"]
    assert [s["name"] for s in result["steps"]] == ["sim", "calculator", "sim"]
    assert record["usage"]["total_tokens"] > 0
    assert record["error"] is None


def test_queued_task_is_seen_as_queued_before_a_worker_takes_it(
    client: httpx.Client, stack_env: StackEnv
) -> None:
    # A queue no worker consumes: the task must stay queued, its message waiting in the list.
    other = StackEnv(
        stack_env.redis_url, stack_env.sim_url, stack_env.log_dir, extra=stack_env.extra
    )
    proc, url = other.start_api()
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            task_id = submit(http, CALC)
            assert http.get(f"/v1/tasks/{task_id}").json()["status"] == "queued"
        assert redis.Redis.from_url(stack_env.redis_url).llen(other.queue) == 1
    finally:
        proc.stop()


def test_event_stream_order_and_resume(client: httpx.Client, worker: Proc) -> None:
    task_id = submit(client, CALC)
    resp = client.get(f"/v1/tasks/{task_id}/events", timeout=30)
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(resp.text)
    sequence = [
        (e["event"], e["data"]["name"] if e["event"] == "step" else e["data"]["status"])
        for e in events
    ]
    assert sequence == [
        ("status", "queued"),
        ("status", "running"),
        ("step", "sim"),
        ("step", "calculator"),
        ("step", "sim"),
        ("done", "succeeded"),
    ]
    assert "84" in events[-1]["data"]["result"]["answer"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    # Resume after the third event: exactly the rest, no gaps, no duplicates.
    resumed = parse_sse(
        client.get(f"/v1/tasks/{task_id}/events", headers={"Last-Event-ID": ids[2]}).text
    )
    assert [e["id"] for e in resumed] == ids[3:]


def test_failed_run_records_a_typed_error(client: httpx.Client, worker: Proc) -> None:
    task_id = submit(client, {"message": "hello", "model": "broken"})
    record = wait_task(client, task_id, {"succeeded", "failed"})
    assert record["status"] == "failed"
    assert record["error"]["type"] == "llm_unavailable"
    assert "broken" in record["error"]["message"]
    assert record["result"] is None
    events = parse_sse(client.get(f"/v1/tasks/{task_id}/events").text)
    assert events[-1]["event"] == "error"
    assert events[-1]["data"]["error"]["type"] == "llm_unavailable"


def test_worker_probe_files(stack_env: StackEnv, tmp_path: Path) -> None:
    heartbeat, ready = tmp_path / "heartbeat", tmp_path / "ready"
    proc = stack_env.start_worker(
        AGENT_WORKER_HEARTBEAT_FILE=str(heartbeat), AGENT_WORKER_READY_FILE=str(ready)
    )
    try:
        assert ready.exists()
        assert heartbeat.exists()
        first = heartbeat.stat().st_mtime
        deadline = time.monotonic() + 25
        while heartbeat.stat().st_mtime == first and time.monotonic() < deadline:
            time.sleep(0.5)
        assert heartbeat.stat().st_mtime > first, "the heartbeat file is not refreshed"
    finally:
        proc.stop()
    assert not ready.exists(), "the ready file outlived the worker"
