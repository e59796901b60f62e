"""Logs of real processes: JSON lines, one access line per request, never a secret."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.integration.stack import StackEnv, wait_task, write_config
from tests.procs import Proc

SECRETS = ("sk-live-0123456789abcdef", "tenant-key-9f8e7d6c5b4a", "provider-key-5566778899")


@pytest.fixture(scope="module")
def logged_api(
    stack_env: StackEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Proc, Proc, str]]:
    config = tmp_path_factory.mktemp("logcfg") / "agent.yaml"
    doc = yaml.safe_load(write_config(config, {"sim": stack_env.sim_url}).read_text())
    # The provider key is read from the environment by name and must never be printed.
    doc["models"][0]["apiKey"] = {"env": "SIM_PROVIDER_KEY"}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    env = {
        "AGENT_CONFIG_FILE": str(config),
        "SIM_PROVIDER_KEY": SECRETS[2],
        "AGENT_LOG_MASK_PII": "true",
    }
    api, url = stack_env.start_api(**env)
    worker = stack_env.start_worker(**env)
    yield api, worker, url
    worker.stop()
    api.stop()


def test_secrets_never_reach_a_log_line(logged_api: tuple[Proc, Proc, str]) -> None:
    api, worker, url = logged_api
    headers = {"Authorization": f"Bearer {SECRETS[0]}", "X-API-Key": SECRETS[1]}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        assert client.post("/v1/chat", json={"message": "what is 2+2?"}).status_code == 200
        task = client.post("/v1/tasks", json={"message": "hello"}).json()["task_id"]
        wait_task(client, task, {"succeeded"})
        client.post("/v1/chat", content=b"{bad json", headers={"content-type": "application/json"})
        client.get("/v1/tasks/not-a-task")
    for proc in (api, worker):
        log = proc.log()
        for secret in SECRETS:
            assert secret not in log, f"{proc.name} logged a secret"


def _log_once_written(proc: Proc, *needles: str, timeout: float = 10.0) -> str:
    """The process's log once every needle is in it (or at the timeout): a request's access
    line is written after its response is sent, so a client can read the log before it."""
    deadline = time.monotonic() + timeout
    log = proc.log()
    while not all(needle in log for needle in needles) and time.monotonic() < deadline:
        time.sleep(0.05)
        log = proc.log()
    return log


def test_json_lines_with_one_access_line_per_request(logged_api: tuple[Proc, Proc, str]) -> None:
    api, _, url = logged_api
    with httpx.Client(base_url=url, timeout=30) as client:
        ids = [
            client.get("/healthz", headers={"X-Request-ID": f"log-test-{i}"}).headers[
                "x-request-id"
            ]
            for i in range(3)
        ]
    log = _log_once_written(api, *(f'"request_id": "{request_id}"' for request_id in ids))
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("event") == "request"]
    for request_id in ids:
        matching = [line for line in access if line.get("request_id") == request_id]
        assert len(matching) == 1, request_id
        assert matching[0]["route"] == "/healthz" and matching[0]["status"] == 200
        assert matching[0]["component"] == "api" and "timestamp" in matching[0]


def test_pii_is_masked_when_the_setting_is_on(logged_api: tuple[Proc, Proc, str]) -> None:
    api, _, url = logged_api
    httpx.get(f"{url}/v1/tasks/jane.doe@example.com", timeout=10)
    httpx.get(f"{url}/v1/tasks/call-me-at-+1-415-555-0123", timeout=10)
    log = _log_once_written(api, "[email]", "[phone]")
    assert "jane.doe@example.com" not in log
    assert "415-555-0123" not in log
    assert "[email]" in log and "[phone]" in log


def test_log_lines_are_json(logged_api: tuple[Proc, Proc, str]) -> None:
    api, worker, _ = logged_api
    for proc in (api, worker):
        body = [line for line in proc.log().splitlines() if line.strip()]
        # Celery's start-up banner is plain text on purpose (it goes to the terminal once).
        json_lines = [line for line in body if line.startswith("{")]
        assert json_lines, proc.name
        for line in json_lines:
            json.loads(line)
