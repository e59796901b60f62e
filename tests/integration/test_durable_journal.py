"""The step journal with real workers: a worker SIGKILLed right after a side-effecting tool call
was journaled, then the run resumed by another worker from its journal.

The tool service (HTTP) and the test MCP server record every call they receive; the simulator
counts completion requests per conversation (``GET /admin/conversations``). After the
redelivery: the tool saw the call exactly once (with ``<task_id>:<step>`` as its idempotency
key), no completion request of a journaled step reached the simulator twice, and the task
succeeded with ``attempts: 2`` and ``resumed_at_step`` > 0. This module never starts the shared
``worker`` fixture: its tests own every worker on their queue.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from agent_service.mcptools.base import IDEMPOTENCY_META_KEY
from tests.conftest import RedisServer, SimFactory
from tests.integration.durable import (
    ToolService,
    call_message,
    conversation,
    journal,
    refund_tool,
    sim_model,
    started_tool_service,
    wait_until,
    write_config,
)
from tests.integration.stack import StackEnv, wait_task
from tests.mcp_processes import McpProcess, counting_process, started
from tests.procs import Proc

pytestmark = pytest.mark.integration

# Redelivered soon after the kill; above the longest run here (two 1.5 s LLM calls).
WORKER_ENV = {"AGENT_WORKER_VISIBILITY_TIMEOUT_SECONDS": "5"}


@pytest.fixture(scope="module")
def tools(log_dir: Path) -> Iterator[ToolService]:
    yield from started_tool_service(log_dir)


@pytest.fixture(scope="module")
def counter(log_dir: Path) -> Iterator[McpProcess]:
    yield from started(counting_process(log_dir))


@pytest.fixture(scope="module")
def slow_sim_url(sim_factory: SimFactory) -> str:
    """Every LLM call takes 1.5 s: the window in which the worker is killed."""
    return sim_factory("--ttft", "1.5").url


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer,
    slow_sim_url: str,
    tools: ToolService,
    counter: McpProcess,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StackEnv, httpx.Client]]:
    config = write_config(
        tmp_path_factory.mktemp("durable") / "agent.yaml",
        {
            "defaultModel": "slow",
            "models": [sim_model("slow", slow_sim_url)],
            "retry": {"maxRetries": 0},
            "tools": {"allowPrivateNetworks": True, "http": [refund_tool(tools)]},
            "mcpServers": [{"name": "counter", "url": counter.url, "allowPrivateNetworks": True}],
            "agents": [
                {
                    "name": "durable",
                    "tools": {"http": ["refund"], "mcp": [{"server": "counter"}]},
                }
            ],
        },
    )
    env = StackEnv(
        redis_server.url, slow_sim_url, log_dir, extra={"AGENT_CONFIG_FILE": str(config)}
    )
    api, url = env.start_api()
    with httpx.Client(base_url=url, timeout=30) as client:
        yield env, client
    api.stop()


def _kill_after_tool_step(env: StackEnv, client: httpx.Client, message: str) -> str:
    """Submit ``message``, SIGKILL the only worker once the tool call's result is journaled
    (during the next LLM call), run a second worker to the end; the task id."""
    r = redis.Redis.from_url(env.redis_url)
    first = env.start_worker(**WORKER_ENV)
    try:
        answer = client.post("/v1/tasks", json={"message": message, "agent": "durable"})
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]
        wait_until(lambda: len(journal(r, f"{env.queue}:", task_id)) >= 2, "tool step", 30)
        first.signal(signal.SIGKILL)
        first.popen.wait(timeout=10)
    finally:
        first.stop()
    steps = journal(r, f"{env.queue}:", task_id)
    assert [entry["step"]["kind"] for entry in steps] == ["llm", "tool"], steps
    assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "running"
    second: Proc = env.start_worker(**WORKER_ENV)
    try:
        wait_task(client, task_id, {"succeeded", "failed", "cancelled"}, timeout=60)
    finally:
        second.stop()
    return task_id


def _assert_resumed(
    client: httpx.Client, sim_url: str, task_id: str, message: str
) -> dict[str, Any]:
    record: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()
    assert record["status"] == "succeeded", record
    assert record["attempts"] == 2
    first, second = record["attempt_log"]
    assert (first["trigger"], first["resumed_at_step"]) == ("submitted", 0)
    assert second["trigger"] == "redelivered"
    assert second["resumed_at_step"] == 2  # the LLM call and the tool call: replayed
    # The result shows every step once: the two journaled ones and the final answer.
    assert [step["kind"] for step in record["result"]["steps"]] == ["llm", "tool", "llm"]
    counts = conversation(sim_url, message)
    # Step 0 (system + user: 2 messages) was journaled: it never reached the simulator again.
    # The answer's request (4 messages) was in flight at the kill: sent once or twice.
    assert counts["by_messages"]["2"] == 1, counts
    assert 1 <= counts["by_messages"]["4"] <= 2, counts
    return record


def test_http_tool_call_journaled_before_a_kill_is_not_made_again(
    stack: tuple[StackEnv, httpx.Client], tools: ToolService, slow_sim_url: str
) -> None:
    env, client = stack
    order = f"OD-{uuid.uuid4().hex[:8]}"
    message = call_message("refund", {"order_id": order, "amount": 42})
    task_id = _kill_after_tool_step(env, client, message)
    record = _assert_resumed(client, slow_sim_url, task_id, message)
    calls = tools.calls(order)
    assert len(calls) == 1, calls
    assert calls[0]["idempotency_key"] == f"{task_id}:1"
    assert "RF-" in record["result"]["answer"]


def test_mcp_tool_call_journaled_before_a_kill_is_not_made_again(
    stack: tuple[StackEnv, httpx.Client], counter: McpProcess, slow_sim_url: str
) -> None:
    env, client = stack
    label = f"label-{uuid.uuid4().hex[:8]}"
    message = call_message("count_calls", {"label": label})
    task_id = _kill_after_tool_step(env, client, message)
    _assert_resumed(client, slow_sim_url, task_id, message)
    calls = [c for c in counter.calls() if c["arguments"].get("label") == label]
    assert len(calls) == 1, calls
    assert calls[0]["meta"][IDEMPOTENCY_META_KEY] == f"{task_id}:1"
