"""Session concurrency (``agents[].multitask``), two messages on one session, real processes.

``reject``: the second is 409 while the first runs; ``enqueue``: it runs after the first ends;
``interrupt``: the first is cancelled at its next step and the second runs. The first run is
slow (a 1.5 s simulator), so it is still going when the second message arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RedisServer, Sim, SimFactory
from tests.integration.durable import sim_model, write_config
from tests.integration.stack import StackEnv, wait_task
from tests.integration.test_api import assert_error_shape
from tests.procs import Proc

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer,
    sim: Sim,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, Proc]]:
    slow = sim_factory("--ttft", "1.5")
    agents = [
        {"name": policy, "model": "slow", "multitask": policy, "tools": {"calculator": True}}
        for policy in ("reject", "enqueue", "interrupt")
    ]
    config = write_config(
        tmp_path_factory.mktemp("multitask") / "agent.yaml",
        {
            "defaultModel": "sim",
            "models": [sim_model("sim", sim.url), sim_model("slow", slow.url)],
            "retry": {"maxRetries": 0},
            "agents": agents,
        },
    )
    env = StackEnv(redis_server.url, sim.url, log_dir, extra={"AGENT_CONFIG_FILE": str(config)})
    api, url = env.start_api()
    worker = env.start_worker()
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, worker
    worker.stop()
    api.stop()


def _submit(client: httpx.Client, agent: str, session: str, message: str) -> httpx.Response:
    # Arithmetic: a calculator call, then the answer: two slow LLM calls (about 3 s).
    body = {"message": message, "agent": agent, "session_id": session}
    return client.post("/v1/tasks", json=body)


def _running(client: httpx.Client, agent: str, session: str) -> str:
    answer = _submit(client, agent, session, "what is 6*7?")
    assert answer.status_code == 202, answer.text
    task_id = str(answer.json()["task_id"])
    wait_task(client, task_id, {"running"}, timeout=20)
    return task_id


def _session() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def test_reject_refuses_a_second_message_while_the_first_runs(
    stack: tuple[httpx.Client, Proc],
) -> None:
    client, _ = stack
    session = _session()
    first = _running(client, "reject", session)
    second = _submit(client, "reject", session, "and 7*8?")
    error = assert_error_shape(second, 409, "conflict")
    assert first in error["message"]
    assert second.headers["location"] == f"/v1/tasks/{first}"
    # A sync run on the busy session is refused the same way.
    chat = client.post("/v1/chat", json={"message": "hi", "agent": "reject", "session_id": session})
    assert_error_shape(chat, 409, "conflict")
    assert wait_task(client, first, TERMINAL)["status"] == "succeeded"
    # Once the first run ended, the session takes a new one.
    after = _submit(client, "reject", session, "and 7*8?")
    assert after.status_code == 202, after.text
    assert wait_task(client, after.json()["task_id"], TERMINAL)["status"] == "succeeded"


def test_enqueue_runs_the_second_message_after_the_first(
    stack: tuple[httpx.Client, Proc],
) -> None:
    client, _ = stack
    session = _session()
    first = _running(client, "enqueue", session)
    second = _submit(client, "enqueue", session, "and what is 7*8?")
    assert second.status_code == 202, second.text
    assert second.json()["waiting"] is True
    second_id = second.json()["task_id"]
    assert client.get(f"/v1/tasks/{second_id}").json()["status"] == "queued"
    done: dict[str, dict[str, Any]] = {
        task_id: wait_task(client, task_id, TERMINAL, timeout=40) for task_id in (first, second_id)
    }
    assert [r["status"] for r in done.values()] == ["succeeded", "succeeded"]
    assert done[second_id]["started_at"] >= done[first]["finished_at"]
    assert "56" in done[second_id]["result"]["answer"]


def test_interrupt_cancels_the_first_run_and_runs_the_second(
    stack: tuple[httpx.Client, Proc],
) -> None:
    client, _ = stack
    session = _session()
    first = _running(client, "interrupt", session)
    second = _submit(client, "interrupt", session, "no, what is 7*8?")
    assert second.status_code == 202, second.text
    assert second.json()["interrupted"] == [first]
    second_id = second.json()["task_id"]
    interrupted = wait_task(client, first, TERMINAL, timeout=20)
    assert interrupted["status"] == "cancelled", interrupted
    record = wait_task(client, second_id, TERMINAL, timeout=30)
    assert record["status"] == "succeeded", record
    assert record["started_at"] >= interrupted["finished_at"]
    assert "56" in record["result"]["answer"]
