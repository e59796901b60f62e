"""History faults through the real service: Postgres stopped while tasks run (nothing lost,
the outbox waits and says so in its metrics, everything archived on recovery), and a history
URL that cannot be used (the API and the worker refuse to start, exit 2)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer, SimFactory
from tests.history.service import archived_ids, history_stack_env, submit
from tests.integration.stack import metric_value, wait_task
from tests.postgres import PostgresServer
from tests.procs import base_env, cli, free_port

pytestmark = pytest.mark.integration


def eventually(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not (callable(check) and check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


@pytest.mark.timeout(240)
def test_postgres_down_while_tasks_run_loses_nothing(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path: Path,
) -> None:
    # A Postgres of this test's own, to stop and start again.
    server = PostgresServer(postgres_server.bin_dir, log_dir)
    server.start()
    env, keys = history_stack_env(
        redis_server.url,
        {"sim": sim_factory("--ttft", "0.005").url},
        server.url(),
        log_dir,
        tmp_path,
    )
    api_metrics, worker_metrics = free_port(), free_port()
    api, url = env.start_api(AGENT_METRICS_PORT=str(api_metrics))
    worker = env.start_worker(AGENT_METRICS_PORT=str(worker_metrics))
    headers = {"Authorization": f"Bearer {keys['acme']}"}
    try:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            before = submit(client)
            wait_task(client, before, {"succeeded"})
            eventually(lambda: archived_ids(server.url(), [before]) == {before}, 30, "archived")

            server.stop()
            during = [submit(client) for _ in range(8)]
            for task_id in during:  # runs and reads never wait for Postgres
                assert wait_task(client, task_id, {"succeeded"})["status"] == "succeeded"
            chat = client.post("/v1/chat", json={"message": "what is 2+3?"})
            assert chat.status_code == 200
            down = client.get("/v1/tasks")
            assert down.status_code == 503 and down.headers["retry-after"]
            assert down.json()["error"]["type"] == "dependency_unavailable"
            assert client.get("/v1/usage").status_code == 503

            def waiting() -> bool:
                depth = metric_value(worker_metrics, "agent_history_outbox_depth")
                lag = metric_value(worker_metrics, "agent_history_archive_lag_seconds")
                return depth == len(during) + 1 and lag > 1

            eventually(waiting, 30, "the outbox depth and lag report the waiting runs")
            failures = metric_value(
                worker_metrics, "agent_history_archive_errors_total", reason="database"
            )
            assert failures >= 1

            server.start()  # same data, same port
            made = {before, *during, chat.headers["x-run-id"]}
            eventually(lambda: archived_ids(server.url(), made) == made, 90, "all archived")
            eventually(
                lambda: metric_value(worker_metrics, "agent_history_outbox_depth") == 0,
                30,
                "the outbox drained",
            )
            listed = client.get("/v1/tasks", params={"limit": 100}).json()["items"]
            assert {item["run_id"] for item in listed} == made
            assert all(item["status"] == "succeeded" for item in listed)
    finally:
        worker.stop()
        api.stop()
        server.remove()


@pytest.mark.parametrize(
    ("command", "url", "reason"),
    [
        ("api", "mysql://agent:secret@db/agent", "must be a postgresql:// URL"),
        ("worker", "not a url at all", "not a URL"),
    ],
)
def test_an_unusable_history_url_stops_the_start_with_exit_2(
    redis_server: RedisServer, command: str, url: str, reason: str
) -> None:
    env = base_env(
        {
            "AGENT_REDIS_URL": redis_server.url,
            "AGENT_HISTORY_URL": url,
            "AGENT_METRICS_PORT": str(free_port()),
            "AGENT_API_PORT": str(free_port()),
        }
    )
    done = subprocess.run(
        cli(command), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "invalid history settings" in output and reason in output
    assert "secret" not in output  # the URL's password never reaches a log line
