"""Keys and tenants, rate limits and budgets, idempotency and cancellation, over real HTTP
against a real API process with authentication on, two real workers and Redis."""

from __future__ import annotations

import concurrent.futures
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent_service.api.auth import generate_key
from tests.conftest import RedisServer, Sim
from tests.integration.stack import StackEnv, parse_sse, secured_env, wait_task
from tests.integration.test_api import assert_error_shape
from tests.procs import Proc

pytestmark = pytest.mark.integration

TENANTS = ("team-a", "team-b", "limited", "thrifty")
KEYS = {tenant: generate_key() for tenant in TENANTS}


def _config(sim: Sim, slow: Sim) -> str:
    return f"""
defaultModel: sim
models:
  - {{name: sim, model: openai/sim, apiBase: "{sim.url}", inputCostPer1K: 0.001}}
  - {{name: slow, model: openai/slow, apiBase: "{slow.url}", inputCostPer1K: 0.001}}
tenants:
  - name: limited
    rateLimits: {{requestsPerMinute: 3}}
  - name: thrifty
    rateLimits: {{dailyTokens: 1}}
"""


@pytest.fixture(scope="module")
def secured(
    redis_server: RedisServer,
    sim: Sim,
    slow_sim: Sim,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, StackEnv, list[Proc]]]:
    root = tmp_path_factory.mktemp("tenancy")
    (root / "agent.yaml").write_text(_config(sim, slow_sim))
    env = secured_env(
        redis_server.url,
        sim.url,
        log_dir,
        root,
        KEYS,
        AGENT_CONFIG_FILE=str(root / "agent.yaml"),
    )
    api, url = env.start_api()
    workers = [env.start_worker(), env.start_worker()]
    yield url, env, workers
    api.stop()
    for worker in workers:
        worker.stop()


def client_for(url: str, tenant: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {KEYS[tenant]}"}
    )


def test_a_missing_or_wrong_key_is_401_and_probes_stay_open(
    secured: tuple[str, StackEnv, list[Proc]],
) -> None:
    url = secured[0]
    with httpx.Client(base_url=url, timeout=10) as anonymous:
        for resp in (
            anonymous.post("/v1/chat", json={"message": "hi"}),
            anonymous.get("/v1/models"),
            anonymous.post(
                "/v1/tasks", json={"message": "hi"}, headers={"Authorization": "Bearer ak_nope"}
            ),
        ):
            assert_error_shape(resp, 401, "unauthorized")
            assert resp.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/readyz").status_code == 200
        by_header = anonymous.post(
            "/v1/chat", json={"message": "hello"}, headers={"X-API-Key": KEYS["team-a"]}
        )
        assert by_header.status_code == 200, by_header.text


def test_tasks_belong_to_their_tenant(secured: tuple[str, StackEnv, list[Proc]]) -> None:
    url = secured[0]
    with client_for(url, "team-a") as a, client_for(url, "team-b") as b:
        task_id = a.post("/v1/tasks", json={"message": "what is 2+2?"}).json()["task_id"]
        record = wait_task(a, task_id, {"succeeded"})
        assert record["tenant"] == "team-a"
        for resp in (
            b.get(f"/v1/tasks/{task_id}"),
            b.get(f"/v1/tasks/{task_id}/events"),
            b.post(f"/v1/tasks/{task_id}/cancel"),
        ):
            assert_error_shape(resp, 404, "not_found")
        # Sessions too: the same session id is another conversation for another tenant.
        a.post("/v1/chat", json={"message": "my name is Ada", "session_id": "s-1"})
        seen_by_b = b.post("/v1/chat", json={"message": "hello", "session_id": "s-1"}).json()
        assert "Ada" not in seen_by_b["answer"]


def _away_from_a_minute_boundary() -> None:
    # Limits count in fixed one-minute windows: do not let a test straddle two of them.
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def test_requests_per_minute_answer_429_with_retry_after(
    secured: tuple[str, StackEnv, list[Proc]],
) -> None:
    url = secured[0]
    _away_from_a_minute_boundary()
    with client_for(url, "limited") as limited, client_for(url, "team-a") as other:
        remaining = []
        for _ in range(3):
            resp = limited.post("/v1/chat", json={"message": "hi"})
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-ratelimit-limit"] == "3"
            remaining.append(resp.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        refused = limited.post("/v1/tasks", json={"message": "hi"})
        assert_error_shape(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert other.post("/v1/chat", json={"message": "hi"}).status_code == 200, "per key"
        metrics = httpx.get(f"{url}/metrics").text
        assert re.search(r'agent_rate_limited_total\{reason="requests_per_minute"\} [1-9]', metrics)


def test_a_run_crossing_the_daily_budget_stops_with_budget_exceeded(
    secured: tuple[str, StackEnv, list[Proc]],
) -> None:
    url = secured[0]
    with client_for(url, "thrifty") as thrifty:
        # Admitted (nothing spent yet); the first LLM call spends the day's budget, and the
        # run stops before its tool call.
        first = thrifty.post("/v1/chat", json={"message": "what is 12*(3+4)?"})
        error = assert_error_shape(first, 429, "budget_exceeded")
        assert "daily token budget" in error["message"]
        # From now on, refused at the door until the UTC day ends.
        again = thrifty.post("/v1/tasks", json={"message": "hi"})
        assert_error_shape(again, 429, "budget_exceeded")
        assert int(again.headers["retry-after"]) <= 86_401


def test_an_idempotency_key_makes_one_task_even_under_concurrent_retries(
    secured: tuple[str, StackEnv, list[Proc]],
) -> None:
    url = secured[0]
    body = {"message": "what is 3*3?", "metadata": {"order": 17}}
    key = f"order-17-{time.time_ns()}"

    def submit(_: int) -> httpx.Response:
        with client_for(url, "team-a") as http:
            return http.post("/v1/tasks", json=body, headers={"Idempotency-Key": key})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(submit, range(32)))
    assert {r.status_code for r in answers} <= {200, 202}
    assert [r.status_code for r in answers].count(202) == 1, "exactly one task is created"
    ids = {r.json()["task_id"] for r in answers}
    assert len(ids) == 1
    task_id = ids.pop()
    assert all(r.json()["idempotent_replay"] for r in answers if r.status_code == 200)
    with client_for(url, "team-a") as a, client_for(url, "team-b") as b:
        record = wait_task(a, task_id, {"succeeded"})
        assert record["attempts"] == 1 and record["idempotency_key"] == key
        replay = a.post("/v1/tasks", json=body, headers={"Idempotency-Key": key})
        assert (replay.status_code, replay.json()["task_id"]) == (200, task_id)
        assert replay.json()["status"] == "succeeded"
        other_body = a.post(
            "/v1/tasks", json={"message": "something else"}, headers={"Idempotency-Key": key}
        )
        assert_error_shape(other_body, 409, "conflict")
        # Keys are per tenant: the same key is free for another tenant.
        theirs = b.post("/v1/tasks", json=body, headers={"Idempotency-Key": key})
        assert theirs.status_code == 202 and theirs.json()["task_id"] != task_id
        bad = a.post("/v1/tasks", json=body, headers={"Idempotency-Key": "spaces are bad"})
        assert_error_shape(bad, 422, "invalid_request")


def test_a_running_task_is_cancelled_on_whichever_worker_runs_it(
    secured: tuple[str, StackEnv, list[Proc]],
) -> None:
    url, _, workers = secured
    with client_for(url, "team-a") as a:
        # Two LLM calls of 2 s each (calculator in between): cancel during the first.
        task_id = a.post(
            "/v1/tasks", json={"message": "what is 12*(3+4)?", "model": "slow"}
        ).json()["task_id"]
        wait_task(a, task_id, {"running"})
        cancel = a.post(f"/v1/tasks/{task_id}/cancel")
        assert (cancel.status_code, cancel.json()["status"]) == (202, "cancelling")
        record = wait_task(a, task_id, {"cancelled", "succeeded", "failed"}, timeout=30)
        assert record["status"] == "cancelled", record
        assert record["error"]["type"] == "cancelled" and record["cancel_requested_at"]
        assert len(record["usage"] and [1]) == 1
        events = parse_sse(a.get(f"/v1/tasks/{task_id}/events").text)
        assert events[-1]["event"] == "cancelled"
        assert [e for e in events if e["event"] == "step"][-1]["data"]["kind"] == "llm"
        assert_error_shape(a.post(f"/v1/tasks/{task_id}/cancel"), 409, "conflict")
    assert all(w.alive() for w in workers)


def test_a_queued_task_that_is_cancelled_never_starts(
    secured: tuple[str, StackEnv, list[Proc]], redis_server: RedisServer, sim: Sim, log_dir: Path
) -> None:
    _, env, _ = secured
    # An API on a queue no worker consumes yet.
    idle = StackEnv(redis_server.url, sim.url, log_dir, extra=dict(env.extra))
    api, url = idle.start_api()
    try:
        with client_for(url, "team-a") as a:
            task_id = a.post("/v1/tasks", json={"message": "hi"}).json()["task_id"]
            cancel = a.post(f"/v1/tasks/{task_id}/cancel")
            assert (cancel.status_code, cancel.json()["status"]) == (200, "cancelled")
            worker = idle.start_worker()
            try:
                time.sleep(1.5)  # the worker takes the message, sees the cancellation, drops it
                record = a.get(f"/v1/tasks/{task_id}").json()
                worker_log = worker.log()
            finally:
                worker.stop()
            assert record["status"] == "cancelled"
            assert record["attempts"] == 0 and record["started_at"] is None
            events = parse_sse(a.get(f"/v1/tasks/{task_id}/events").text)
            assert [e["event"] for e in events] == ["status", "cancelled"]
            assert "task already cancelled; duplicate delivery ignored" in worker_log
    finally:
        api.stop()
