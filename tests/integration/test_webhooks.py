"""Completion webhooks end to end: real API and worker processes, real Redis, and a real HTTP
receiver in the test process that checks signatures with the algorithm docs/api.md documents.

The SSRF guard refuses 127.0.0.1 by default, so the stacks here allow private networks and
plain http; one test shows that the default settings refuse such a URL at submission.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from agent_service.webhooks.signing import SignatureError, verify
from tests.conftest import RedisServer, Sim
from tests.integration.stack import StackEnv, metric_value, wait_record, wait_task
from tests.integration.test_api import assert_error_shape
from tests.integration.webhook_receiver import Hit, Receiver
from tests.procs import Proc, free_port

pytestmark = pytest.mark.integration

CALC = "what is 12*(3+4)?"
TENANT_SECRET = "whsec_tenant_default_0123456789"
SERVICE_SECRET = "whsec_service_wide_9876543210"
MAX_ATTEMPTS = 4
LEASE_SECONDS = 5.0
WEBHOOK_ENV = {
    "AGENT_WEBHOOKS_ALLOW_HTTP": "true",
    "AGENT_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
    "AGENT_WEBHOOKS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "AGENT_WEBHOOKS_BACKOFF_INITIAL_SECONDS": "0.1",
    "AGENT_WEBHOOKS_BACKOFF_MAX_SECONDS": "0.3",
    "AGENT_WEBHOOKS_TIMEOUT_SECONDS": "4",
    "AGENT_WEBHOOKS_LEASE_SECONDS": str(LEASE_SECONDS),
}


class Stack:
    def __init__(self, env: StackEnv, url: str, redis_url: str) -> None:
        self.env = env
        self.client = httpx.Client(base_url=url, timeout=30)
        self.redis = redis.Redis.from_url(redis_url)

    def dead_letters(self) -> list[str]:
        return [i.decode() for i in self.redis.lrange(f"{self.env.queue}:webhooks:dead", 0, -1)]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def warm(
    redis_server: RedisServer, sim: Sim, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Proc, int]]:
    """API + one worker; the default tenant signs with its own `webhookSecret`."""
    root = tmp_path_factory.mktemp("webhooks-warm")
    (root / "tenant-secret").write_text(TENANT_SECRET + "\n")
    (root / "agent.yaml").write_text(
        f"""
defaultModel: sim
models:
  - {{name: sim, model: openai/sim, apiBase: "{sim.url}"}}
tenants:
  - name: default
    webhookSecret: {{file: "{root / "tenant-secret"}"}}
"""
    )
    env = StackEnv(
        redis_server.url,
        sim.url,
        log_dir,
        extra={
            **WEBHOOK_ENV,
            "AGENT_CONFIG_FILE": str(root / "agent.yaml"),
            "AGENT_WEBHOOKS_ALLOWED_HOSTS": "127.0.0.1",
        },
    )
    metrics_port = free_port()
    # Both at once: each spends seconds importing LiteLLM.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        starting_api = pool.submit(env.start_api)
        starting_worker = pool.submit(env.start_worker, AGENT_METRICS_PORT=str(metrics_port))
        (api, url), worker = starting_api.result(), starting_worker.result()
    stack = Stack(env, url, redis_server.url)
    yield stack, worker, metrics_port
    stack.client.close()
    worker.stop()
    api.stop()


@pytest.fixture(scope="module")
def cold(
    redis_server: RedisServer, sim: Sim, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """An API whose queue no worker consumes until a test starts one (and stops it); the
    service-wide secret file signs."""
    root = tmp_path_factory.mktemp("webhooks-cold")
    (root / "secret").write_text(SERVICE_SECRET)
    env = StackEnv(
        redis_server.url,
        sim.url,
        log_dir,
        extra={**WEBHOOK_ENV, "AGENT_WEBHOOKS_SECRET_FILE": str(root / "secret")},
    )
    api, url = env.start_api()
    stack = Stack(env, url, redis_server.url)
    yield stack
    stack.client.close()
    api.stop()


def submit(client: httpx.Client, webhook_url: str, message: str = CALC) -> str:
    resp = client.post("/v1/tasks", json={"message": message, "webhook_url": webhook_url})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def wait_webhook(
    client: httpx.Client, task_id: str, statuses: set[str], timeout: float = 30
) -> dict[str, Any]:
    """The task's record once its webhook delivery is in one of ``statuses``."""
    return wait_record(
        client,
        task_id,
        lambda record: (record.get("webhook") or {}).get("status") in statuses,
        timeout,
    )


def check_signature(hit: Hit, secret: str) -> dict[str, Any]:
    """What a receiver does, written from docs/api.md without the service's code: HMAC-SHA256
    of "<t>.<raw body>" under the secret, compared in constant time, timestamp recent."""
    fields = dict(part.split("=", 1) for part in hit.headers["x-agent-signature"].split(","))
    signed = fields["t"].encode() + b"." + hit.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"]), "signature does not match"
    assert abs(time.time() - int(fields["t"])) < 60
    verify(secret, hit.headers["x-agent-signature"], hit.body)  # the shipped helper agrees
    return json.loads(hit.body)  # type: ignore[no-any-return]


def deliveries_counted(metrics_port: int) -> dict[str, float]:
    """The worker's ``agent_webhook_deliveries_total`` by outcome."""
    return {
        outcome: metric_value(metrics_port, "agent_webhook_deliveries_total", outcome=outcome)
        for outcome in ("delivered", "retry", "dead")
    }


def without_webhook(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "webhook"}


def test_receiver_verifies_the_signature_and_gets_the_final_record(
    warm: tuple[Stack, Proc, int], receiver: Receiver
) -> None:
    stack = warm[0]
    url = receiver.plan(200)
    task_id = submit(stack.client, url)
    [hit] = receiver.wait_hits(url, 1)
    payload = check_signature(hit, TENANT_SECRET)
    with pytest.raises(SignatureError):
        verify(SERVICE_SECRET, hit.headers["x-agent-signature"], hit.body)
    assert hit.headers["x-agent-event"] == "task.finished"
    assert hit.headers["x-agent-delivery"] == f"{task_id}:1"
    assert hit.headers["x-agent-task-id"] == task_id
    assert hit.headers["content-type"] == "application/json"
    assert payload["event"] == "task.finished" and payload["delivery"] == f"{task_id}:1"
    task = payload["task"]
    assert task["status"] == "succeeded" and "84" in task["result"]["answer"]
    assert task["webhook"]["status"] == "delivering" and task["webhook"]["attempts"] == []
    record = wait_webhook(stack.client, task_id, {"delivered", "dead"})
    # The payload is the final record as GET shows it (but for the delivery it announces).
    assert without_webhook(task) == without_webhook(record)
    webhook = record["webhook"]
    assert webhook["status"] == "delivered" and webhook["url"] == url
    [attempt] = webhook["attempts"]
    assert attempt["attempt"] == 1 and attempt["status_code"] == 200
    assert attempt["error"] is None and attempt["duration_ms"] >= 0
    assert record["finished_at"] <= attempt["at"] + 0.001 <= time.time()
    time.sleep(1.0)
    assert len(receiver.hits(url)) == 1  # delivered once: nothing more is sent


def test_a_500_is_retried_and_every_attempt_is_in_the_record(
    warm: tuple[Stack, Proc, int], receiver: Receiver
) -> None:
    stack = warm[0]
    url = receiver.plan(500, 500, 200)
    task_id = submit(stack.client, url)
    record = wait_webhook(stack.client, task_id, {"delivered", "dead"})
    webhook = record["webhook"]
    assert webhook["status"] == "delivered", webhook
    assert [a["attempt"] for a in webhook["attempts"]] == [1, 2, 3]
    assert [a["status_code"] for a in webhook["attempts"]] == [500, 500, 200]
    hits = receiver.hits(url)
    assert [h.headers["x-agent-delivery"] for h in hits] == [f"{task_id}:{n}" for n in (1, 2, 3)]
    for hit in hits:
        check_signature(hit, TENANT_SECRET)  # each attempt is signed anew
    assert stack.dead_letters().count(task_id) == 0


def test_a_receiver_that_always_fails_ends_dead_and_in_the_dead_letters(
    warm: tuple[Stack, Proc, int], receiver: Receiver
) -> None:
    stack, _, metrics_port = warm
    before = deliveries_counted(metrics_port)
    url = receiver.plan(503)
    task_id = submit(stack.client, url)
    record = wait_webhook(stack.client, task_id, {"delivered", "dead"})
    webhook = record["webhook"]
    assert webhook["status"] == "dead", webhook
    assert [a["status_code"] for a in webhook["attempts"]] == [503] * MAX_ATTEMPTS
    assert task_id in stack.dead_letters()
    after = deliveries_counted(metrics_port)
    assert after["retry"] - before["retry"] == MAX_ATTEMPTS - 1
    assert after["dead"] - before["dead"] == 1
    time.sleep(1.0)
    assert len(receiver.hits(url)) == MAX_ATTEMPTS  # nothing after the last attempt


def test_a_4xx_answer_is_not_retried(warm: tuple[Stack, Proc, int], receiver: Receiver) -> None:
    stack = warm[0]
    url = receiver.plan(410, 200)
    task_id = submit(stack.client, url)
    webhook = wait_webhook(stack.client, task_id, {"delivered", "dead"})["webhook"]
    assert webhook["status"] == "dead"
    assert [a["status_code"] for a in webhook["attempts"]] == [410]
    assert task_id in stack.dead_letters()


def test_a_host_outside_the_allowed_hosts_is_refused_at_submission(
    warm: tuple[Stack, Proc, int], receiver: Receiver
) -> None:
    resp = warm[0].client.post(
        "/v1/tasks",
        json={"message": CALC, "webhook_url": f"http://localhost:{receiver.port}/hook"},
    )
    error = assert_error_shape(resp, 422, "invalid_request")
    assert "not allowed" in error["message"]


def test_a_worker_killed_mid_delivery_loses_nothing(cold: Stack, receiver: Receiver) -> None:
    url = receiver.plan("hang", 200)
    first = cold.env.start_worker()
    try:
        task_id = submit(cold.client, url)
        [held] = receiver.wait_hits(url, 1)  # the worker's POST hangs in the receiver
        record = cold.client.get(f"/v1/tasks/{task_id}").json()
        assert record["status"] == "succeeded"
        assert record["webhook"]["status"] == "delivering"
        first.signal(signal.SIGKILL)
        first.popen.wait(timeout=10)
    finally:
        first.stop()
    second = cold.env.start_worker()
    try:
        record = wait_webhook(cold.client, task_id, {"delivered", "dead"}, timeout=40)
    finally:
        second.stop()
    assert record["webhook"]["status"] == "delivered"
    # The killed attempt was never recorded: the record holds the one that got an answer.
    assert [(a["attempt"], a["status_code"]) for a in record["webhook"]["attempts"]] == [(1, 200)]
    held_again, redelivered = receiver.hits(url)
    assert held_again == held
    # The same delivery id both times: receivers dedupe on it (at-least-once delivery).
    assert redelivered.headers["x-agent-delivery"] == held.headers["x-agent-delivery"]
    check_signature(redelivered, SERVICE_SECRET)
    # Taken over once the dead worker's lease ran out, not before.
    assert redelivered.at - held.at >= LEASE_SECONDS - 1.0


def test_a_cancelled_queued_task_notifies_too(cold: Stack, receiver: Receiver) -> None:
    url = receiver.plan(200)
    task_id = submit(cold.client, url)  # no worker runs: it stays queued
    resp = cold.client.post(f"/v1/tasks/{task_id}/cancel")
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled", resp.text
    worker = cold.env.start_worker()
    try:
        [hit] = receiver.wait_hits(url, 1)
        record = wait_webhook(cold.client, task_id, {"delivered", "dead"})
        assert wait_task(cold.client, task_id, {"cancelled"})["attempts"] == 0  # never ran
    finally:
        worker.stop()
    task = check_signature(hit, SERVICE_SECRET)["task"]
    assert task["status"] == "cancelled" and task["error"]["type"] == "cancelled"
    assert record["webhook"]["status"] == "delivered"


def test_default_settings_refuse_a_loopback_url_and_a_tenant_without_secret(
    redis_server: RedisServer, sim: Sim, log_dir: Path, receiver: Receiver
) -> None:
    env = StackEnv(redis_server.url, sim.url, log_dir)
    api, url = env.start_api()
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for refused in (
                f"http://127.0.0.1:{receiver.port}/hook",  # the receiver the other tests use
                f"https://127.0.0.1:{receiver.port}/hook",
                "https://10.0.0.7/hook",
                "https://169.254.169.254/latest/meta-data",
                "https://[::1]/hook",
            ):
                resp = client.post("/v1/tasks", json={"message": CALC, "webhook_url": refused})
                assert_error_shape(resp, 422, "invalid_request")
            resp = client.post("/v1/tasks", json={"message": CALC, "webhook_url": "http://x.io"})
            assert "https" in assert_error_shape(resp, 422, "invalid_request")["message"]
            # A public https URL passes the address checks, but nothing could sign for it.
            resp = client.post(
                "/v1/tasks", json={"message": CALC, "webhook_url": "https://example.com/hook"}
            )
            error = assert_error_shape(resp, 422, "invalid_request")
            assert "no webhook secret" in error["message"]
    finally:
        api.stop()


def test_a_background_response_announces_its_end_like_a_task(
    warm: tuple[Stack, Proc, int], receiver: Receiver
) -> None:
    """The Responses API's background mode runs as a task: same signed webhook."""
    stack = warm[0]
    url = receiver.plan(200)
    body = {"model": "sim", "input": CALC, "background": True, "webhook_url": url}
    resp = stack.client.post("/v1/responses", json=body)
    assert resp.status_code == 200, resp.text
    response_id = resp.json()["id"]
    [hit] = receiver.wait_hits(url, 1)
    payload = check_signature(hit, TENANT_SECRET)
    task = payload["task"]
    assert f"resp_{task['task_id']}" == response_id
    assert task["status"] == "succeeded" and "84" in task["result"]["answer"]
    polled = stack.client.get(f"/v1/responses/{response_id}").json()
    assert polled["status"] == "completed" and "84" in polled["output_text"]
