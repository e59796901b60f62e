"""``agent-service submit`` against a real stack, as a scheduled CronJob runs it.

``--wait`` prints the answer (exit 0) or exits 1 when the task fails; the same
``--idempotency-key`` (what a CronJob derives from its schedule and scheduled time) submitted
twice makes one task; an unreachable API and a refused request have their own exit codes.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer, Sim
from tests.integration.durable import sim_model, write_config
from tests.integration.stack import StackEnv
from tests.procs import base_env, cli, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer,
    sim: Sim,
    broken_sim: Sim,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """An API and a worker; agent ``failing`` runs on a model whose every call fails."""
    config = write_config(
        tmp_path_factory.mktemp("submit") / "agent.yaml",
        {
            "defaultModel": "sim",
            "models": [sim_model("sim", sim.url), sim_model("broken", broken_sim.url)],
            "retry": {"maxRetries": 0},
            "agents": [
                {"name": "helper", "tools": {"calculator": True}},
                {"name": "failing", "model": "broken"},
            ],
        },
    )
    env = StackEnv(redis_server.url, sim.url, log_dir, extra={"AGENT_CONFIG_FILE": str(config)})
    api, url = env.start_api()
    worker = env.start_worker()
    yield url
    worker.stop()
    api.stop()


def submit(url: str, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = base_env({"AGENT_API_URL": url})
    if key is not None:
        env["AGENT_API_KEY"] = key
    return subprocess.run(
        cli("submit", *args), env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_wait_prints_the_answer(stack: str) -> None:
    done = submit(stack, "--wait", "what is 12*(3+4)?")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The answer is 84."
    assert "submitted" in done.stderr


def test_wait_exits_1_when_the_task_fails(stack: str) -> None:
    done = submit(stack, "--agent", "failing", "--wait", "hello")
    assert done.returncode == 1, done.stderr
    assert "failed: llm_unavailable" in done.stderr
    assert done.stdout == ""


def test_a_refused_request_exits_2(stack: str) -> None:
    done = submit(stack, "--agent", "no-such-agent", "hello")
    assert done.returncode == 2, done.stderr
    assert "HTTP 404 not_found" in done.stderr


def test_the_same_scheduled_time_twice_makes_one_task(stack: str) -> None:
    key = f"schedule:nightly:agent-service-nightly-{uuid.uuid4().int % 10**8}"
    first = submit(stack, "--idempotency-key", key, "what is 2+2?")
    again = submit(stack, "--idempotency-key", key, "what is 2+2?")
    assert first.returncode == again.returncode == 0, (first.stderr, again.stderr)
    task_id = first.stdout.strip()
    assert len(task_id) == 32 and again.stdout.strip() == task_id
    waited = submit(stack, "--idempotency-key", key, "--wait", "what is 2+2?")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == "The answer is 4."
    with httpx.Client(base_url=stack, timeout=30) as client:
        record = client.get(f"/v1/tasks/{task_id}").json()
    assert record["idempotency_key"] == key and record["attempts"] == 1


def test_an_unreachable_api_exits_3() -> None:
    done = submit(f"http://127.0.0.1:{free_port()}", "hello")
    assert done.returncode == 3
    assert "cannot reach" in done.stderr
