"""Named agents and MCP tool servers through the real stack: an API process and a worker with
authentication on, real MCP servers (the demo server and a test server) as processes, Redis and
the simulator.

Covers what an agent platform promises: each tenant sees and runs only its agents, an agent's
MCP tools are discovered and called exactly once per model request, a slow or dead server turns
into a tool error the model answers around, a restarted server is used again without restarting
the API or the worker, structured answers validate against the agent's schema, and agents added
to the config file are served without a restart.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from agent_service.api.auth import generate_key
from tests.conftest import RedisServer, Sim
from tests.integration.stack import metric_value, secured_env, wait_for_log, wait_task
from tests.integration.test_api import assert_error_shape
from tests.mcp_processes import McpProcess, counting_process, demo_process, started
from tests.procs import Proc, free_port

pytestmark = pytest.mark.integration

KEYS = {"team-a": generate_key(), "team-b": generate_key()}
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confident": {"type": "boolean"}},
    "required": ["answer", "confident"],
    "additionalProperties": False,
}
ORDER_ANSWER = (
    "Order OD-20240502 is shipped: DHL tracking number JD014600003828, "
    "estimated delivery 2024-05-07."
)


def agent_config(sim: Sim, demo: McpProcess, tester: McpProcess, extra: str = "") -> str:
    return yaml.safe_dump(
        {
            "defaultModel": "sim",
            "models": [{"name": "sim", "model": "openai/sim-agent", "apiBase": sim.url}],
            "mcpServers": [
                {"name": "orders", "url": demo.url, "allowPrivateNetworks": True},
                {
                    "name": "test",
                    "url": tester.url,
                    "allowPrivateNetworks": True,
                    "timeoutSeconds": 2,
                },
            ],
            "defaultAgent": "assistant",
            "agents": [
                {
                    "name": "assistant",
                    "description": "Arithmetic and the time.",
                    "tools": {"calculator": True, "currentTime": True},
                },
                {
                    "name": "orders",
                    "description": "Customer service: where an order is.",
                    "systemPrompt": "You answer questions about orders.",
                    "tools": {"mcp": [{"server": "orders", "include": ["lookup_order"]}]},
                    "tenants": ["team-a"],
                },
                {"name": "tester", "tools": {"mcp": [{"server": "test"}]}},
                {"name": "extractor", "responseFormat": SCHEMA},
                *(yaml.safe_load(extra) if extra else []),
            ],
        },
        sort_keys=False,
    )


@pytest.fixture(scope="module")
def demo(log_dir: Path) -> Iterator[McpProcess]:
    yield from started(demo_process(log_dir))


@pytest.fixture(scope="module")
def tester(log_dir: Path) -> Iterator[McpProcess]:
    yield from started(counting_process(log_dir))


class Stack:
    def __init__(self, url: str, api: Proc, worker: Proc, config: Path, metrics_port: int):
        self.url, self.api, self.worker = url, api, worker
        self.config = config
        self.metrics_port = metrics_port

    def client(self, tenant: str = "team-a") -> httpx.Client:
        headers = {"Authorization": f"Bearer {KEYS[tenant]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer,
    sim: Sim,
    demo: McpProcess,
    tester: McpProcess,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("agents")
    config = root / "agent.yaml"
    config.write_text(agent_config(sim, demo, tester))
    env = secured_env(
        redis_server.url,
        sim.url,
        log_dir,
        root,
        KEYS,
        AGENT_CONFIG_FILE=str(config),
        AGENT_CONFIG_RELOAD_INTERVAL_SECONDS="0.2",
        AGENT_MCP_REFRESH_INTERVAL_SECONDS="1",
        AGENT_MCP_RECONNECT_INITIAL_SECONDS="0.1",
        AGENT_MCP_RECONNECT_MAX_SECONDS="0.5",
    )
    metrics_port = free_port()
    api, url = env.start_api(AGENT_METRICS_PORT=str(metrics_port))
    worker = env.start_worker()
    yield Stack(url, api, worker, config, metrics_port)
    api.stop()
    worker.stop()


def chat(client: httpx.Client, agent: str | None, message: str) -> httpx.Response:
    body: dict[str, Any] = {"message": message}
    if agent is not None:
        body["agent"] = agent
    return client.post("/v1/chat", json=body)


def steps(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["kind"], s["name"], s["status"]) for s in result["steps"]]


def test_each_tenant_lists_only_its_agents(stack: Stack) -> None:
    with stack.client("team-a") as a, stack.client("team-b") as b:
        seen_a = a.get("/v1/agents").json()
        seen_b = b.get("/v1/agents").json()
        models_b = [m["id"] for m in b.get("/v1/models").json()["data"]]
    by_name = {card["name"]: card for card in seen_a["data"]}
    assert list(by_name) == ["assistant", "orders", "tester", "extractor"]
    assert by_name["orders"]["tools"] == ["orders__lookup_order"]
    assert by_name["orders"]["model"] == "sim"
    assert by_name["assistant"]["default"] and seen_a["default_agent"] == "assistant"
    assert by_name["extractor"]["structured_output"]
    assert [card["name"] for card in seen_b["data"]] == ["assistant", "tester", "extractor"]
    assert "orders" not in models_b and "assistant" in models_b and "sim" in models_b


def test_the_orders_agent_answers_from_the_mcp_tool(stack: Stack) -> None:
    with stack.client() as client:
        resp = chat(client, "orders", "where is order OD-20240502?")
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["agent"] == "orders"
    assert steps(result) == [
        ("llm", "sim", "ok"),
        ("tool", "orders__lookup_order", "ok"),
        ("llm", "sim", "ok"),
    ]
    assert json.loads(result["steps"][1]["input"]) == {"order_id": "OD-20240502"}
    assert result["answer"] == ORDER_ANSWER
    port = stack.metrics_port
    assert metric_value(port, "agent_runs_total", agent="orders", mode="sync") >= 1
    assert metric_value(port, "agent_tool_calls_total", tool="orders__lookup_order") >= 1


def test_a_forbidden_or_unknown_agent_is_not_found(stack: Stack) -> None:
    with stack.client("team-b") as client:
        for agent in ("orders", "nobody"):
            resp = chat(client, agent, "where is order OD-20240502?")
            assert_error_shape(resp, 404, "not_found")
            assert f"agent {agent!r} not found" in resp.json()["error"]["message"]
        task = client.post("/v1/tasks", json={"message": "hi", "agent": "orders"})
        assert_error_shape(task, 404, "not_found")


def test_a_queued_run_keeps_its_agent_and_config_generation(stack: Stack) -> None:
    with stack.client() as client:
        resp = client.post(
            "/v1/tasks", json={"message": "where is order OD-20240502?", "agent": "orders"}
        )
        assert resp.status_code == 202, resp.text
        record = wait_task(client, resp.json()["task_id"], {"succeeded", "failed"})
        generation = client.get("/readyz").json()["config"]["generation"]
    assert record["status"] == "succeeded", record
    assert record["agent"] == "orders" and record["request"]["agent"] == "orders"
    assert record["config_generation"] == generation
    assert record["result"]["answer"] == ORDER_ANSWER
    assert ("tool", "orders__lookup_order", "ok") in steps(record["result"])


def test_the_default_agent_serves_requests_that_name_none(stack: Stack) -> None:
    with stack.client("team-b") as client:
        result = chat(client, None, "what is 12*(3+4)?").json()
    assert result["agent"] == "assistant"
    assert ("tool", "calculator", "ok") in steps(result)


def test_the_openai_sdk_selects_an_agent_by_model(stack: Stack) -> None:
    sdk = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=KEYS["team-a"], max_retries=0)
    with sdk:
        completion = sdk.chat.completions.create(
            model="orders", messages=[{"role": "user", "content": "where is order OD-20240502?"}]
        )
        assert completion.choices[0].message.content == ORDER_ANSWER
        default_on_model = sdk.chat.completions.create(
            model="sim", messages=[{"role": "user", "content": "what is 2+3?"}]
        )
        assert default_on_model.choices[0].message.content
    other = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=KEYS["team-b"], max_retries=0)
    with other, pytest.raises(openai.NotFoundError):
        other.chat.completions.create(model="orders", messages=[{"role": "user", "content": "x"}])


def test_one_model_request_makes_exactly_one_server_side_call(
    stack: Stack, tester: McpProcess
) -> None:
    before = [c for c in tester.calls() if c["tool"] == "count_calls"]
    label = f"once-{time.monotonic_ns()}"
    with stack.client() as client:
        result = chat(client, "tester", f'call tool count_calls with {{"label": "{label}"}}').json()
    assert ("tool", "test__count_calls", "ok") in steps(result), result
    made = [c for c in tester.calls() if c["tool"] == "count_calls"][len(before) :]
    assert [c["arguments"] for c in made] == [{"label": label}]
    assert "traceparent" in made[0]["meta"]
    assert "authorization" not in made[0]["headers"], "the caller's key never reaches a server"


def test_a_slow_tool_times_out_and_the_run_goes_on(stack: Stack) -> None:
    with stack.client() as client:
        resp = chat(client, "tester", 'call tool slow with {"seconds": 5}')
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert steps(result) == [
        ("llm", "sim", "ok"),
        ("tool", "test__slow", "error"),
        ("llm", "sim", "ok"),
    ]
    assert "2 s" in (result["steps"][1]["error"] or ""), result["steps"][1]
    assert result["answer"]


def test_a_server_killed_mid_run_then_restarted(stack: Stack, tester: McpProcess) -> None:
    port = stack.metrics_port
    assert metric_value(port, "agent_mcp_server_up", server="test") == 1
    with concurrent.futures.ThreadPoolExecutor(1) as pool, stack.client() as client:
        running = pool.submit(chat, client, "tester", 'call tool slow with {"seconds": 1.5}')
        _until(lambda: any(c["tool"] == "slow" for c in tester.calls()[-1:]), 10)
        tester.kill()
        resp = running.result(timeout=30)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert steps(result)[1] == ("tool", "test__slow", "error")
    assert result["answer"], "the model answers around the tool error"
    _until(lambda: metric_value(port, "agent_mcp_server_up", server="test") == 0, 15)

    tester.start()
    _until(lambda: metric_value(port, "agent_mcp_server_up", server="test") == 1, 15)
    with stack.client() as client:
        again = chat(client, "tester", 'call tool echo with {"text": "back again"}').json()
    assert ("tool", "test__echo", "ok") in steps(again), again
    assert stack.api.alive() and stack.worker.alive(), "nothing was restarted"


def test_structured_answers_validate_against_the_agent_schema(stack: Stack) -> None:
    with stack.client() as client:
        plain = chat(client, "extractor", "is the sky blue?").json()
        repaired = chat(client, "extractor", "[[invalid-json-once]] is the sky blue?").json()
        refused = chat(client, "extractor", "[[invalid-json]] is the sky blue?")
    assert set(plain["output"]) == {"answer", "confident"}
    assert json.loads(plain["answer"]) == plain["output"]
    assert [s["kind"] for s in plain["steps"]] == ["llm"]
    assert [s["kind"] for s in repaired["steps"]] == ["llm", "llm"], "one repair call"
    assert set(repaired["output"]) == {"answer", "confident"}
    assert_error_shape(refused, 502, "invalid_output")
    assert "after one repair" in refused.json()["error"]["message"]


def test_an_agent_added_to_the_file_is_served_without_restart(
    stack: Stack, sim: Sim, demo: McpProcess, tester: McpProcess
) -> None:
    original = stack.config.read_text()
    added = "- {name: newcomer, description: added live, tools: {calculator: true}}"
    try:
        _publish(stack.config, agent_config(sim, demo, tester, extra=added))
        started = time.monotonic()
        with stack.client() as client:
            _until(lambda: chat(client, "newcomer", "what is 6*7?").status_code == 200, 5)
            elapsed = time.monotonic() - started
            result = chat(client, "newcomer", "what is 6*7?").json()
        assert elapsed < 5 and result["agent"] == "newcomer"
        task_agent = _queued_agent(stack, "newcomer")
        assert task_agent == "newcomer", "the worker serves it too"

        bad = "- {name: broken, model: gpt-9}"
        _publish(stack.config, agent_config(sim, demo, tester, extra=f"{added}\n{bad}"))
        for proc in (stack.api, stack.worker):
            wait_for_log(proc, "rejected, keeping", 10)
            line = next(li for li in proc.log().splitlines() if "rejected, keeping" in li)
            assert "agents[5].model: 'gpt-9' is not a configured model" in line, line
        with stack.client() as client:
            assert chat(client, "newcomer", "what is 6*7?").status_code == 200
            assert chat(client, "orders", "where is order OD-20240502?").status_code == 200
    finally:
        _publish(stack.config, original)


def _queued_agent(stack: Stack, agent: str) -> str:
    with stack.client() as client:
        task = client.post("/v1/tasks", json={"message": "what is 6*7?", "agent": agent}).json()
        record = wait_task(client, task["task_id"], {"succeeded", "failed"})
    assert record["status"] == "succeeded", record
    return str(record["result"]["agent"])


def _publish(path: Path, text: str) -> None:
    """Replace the config file atomically (as a ConfigMap update does)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout} s")
