"""Human approval of tool calls, end to end: real API and workers, real Redis, the simulator, the
side-effecting tool service and a webhook receiver checking signatures.

A run of a gated tool pauses (``awaiting_approval``, an ``approval_required`` event, the
``approval.required`` webhook, no worker held); a person approves (with edited arguments: the
tool sees them) and the run resumes on another worker; rejecting tells the model, which answers;
expiry rejects or fails as configured; a repeated decision is a no-op, a conflicting one 409;
another tenant sees 404. Sync runs reaching a gated tool are handed over to a task.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RedisServer, Sim
from tests.integration.durable import (
    ToolService,
    call_message,
    refund_tool,
    sim_model,
    started_tool_service,
    write_config,
)
from tests.integration.stack import (
    StackEnv,
    metric_value,
    parse_sse,
    secured_env,
    wait_record,
    wait_task,
)
from tests.integration.test_api import assert_error_shape
from tests.integration.test_webhooks import check_signature
from tests.integration.webhook_receiver import Receiver
from tests.procs import Proc, free_port

pytestmark = pytest.mark.integration

KEYS = {"alpha": "ak_alpha_approvals_0123456789", "beta": "ak_beta_approvals_0123456789"}
SECRET = "whsec_approvals_0123456789"
WEBHOOK_ENV = {
    "AGENT_WEBHOOKS_ALLOW_HTTP": "true",
    "AGENT_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
    "AGENT_WEBHOOKS_ALLOWED_HOSTS": "127.0.0.1",
    "AGENT_WEBHOOKS_BACKOFF_INITIAL_SECONDS": "0.1",
}
ABOVE_100 = {"properties": {"amount": {"exclusiveMinimum": 100}}, "required": ["amount"]}


class Stack:
    def __init__(self, env: StackEnv, url: str, api_metrics: int) -> None:
        self.env = env
        self.url = url
        self.api_metrics = api_metrics
        self.alpha = httpx.Client(base_url=url, timeout=30, headers=_auth("alpha"))
        self.beta = httpx.Client(base_url=url, timeout=30, headers=_auth("beta"))
        self.workers: list[tuple[Proc, int]] = []

    def worker(self) -> int:
        """A running worker (started on first use); its metrics port."""
        if not self.workers:
            port = free_port()
            self.workers.append((self.env.start_worker(AGENT_METRICS_PORT=str(port)), port))
        return self.workers[0][1]

    def close(self) -> None:
        for proc, _ in self.workers:
            proc.stop()
        self.alpha.close()
        self.beta.close()


def _auth(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


def _agent(name: str, **approvals: Any) -> dict[str, Any]:
    return {"name": name, "tools": {"http": ["refund"]}, "approvals": approvals}


@pytest.fixture(scope="module")
def tools(log_dir: Path) -> Iterator[ToolService]:
    yield from started_tool_service(log_dir)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer,
    sim: Sim,
    tools: ToolService,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("approvals")
    (root / "secret").write_text(SECRET)
    rule = {"tool": "refund", "approval": "rule", "rule": ABOVE_100}
    config = write_config(
        root / "agent.yaml",
        {
            "defaultModel": "sim",
            "models": [sim_model("sim", sim.url)],
            "retry": {"maxRetries": 0},
            "tools": {"allowPrivateNetworks": True, "http": [refund_tool(tools)]},
            "agents": [
                _agent("approver", tools=[rule]),
                _agent("expiring", tools=[{"tool": "refund"}], timeoutSeconds=2),
                _agent("strict", tools=[{"tool": "refund"}], timeoutSeconds=2, onTimeout="fail"),
                {**_agent("interrupter", tools=[{"tool": "refund"}]), "multitask": "interrupt"},
            ],
        },
    )
    env = secured_env(
        redis_server.url,
        sim.url,
        log_dir,
        root,
        KEYS,
        AGENT_CONFIG_FILE=str(config),
        AGENT_WEBHOOKS_SECRET_FILE=str(root / "secret"),
        **WEBHOOK_ENV,
    )
    api_metrics = free_port()
    api, url = env.start_api(AGENT_METRICS_PORT=str(api_metrics))
    stack = Stack(env, url, api_metrics)
    yield stack
    stack.close()
    api.stop()


def _order() -> str:
    return f"OD-{uuid.uuid4().hex[:8]}"


def _submit(client: httpx.Client, agent: str, arguments: dict[str, Any], **body: Any) -> str:
    message = call_message("refund", arguments)
    answer = client.post("/v1/tasks", json={"message": message, "agent": agent, **body})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["task_id"])


def _paused(client: httpx.Client, task_id: str) -> dict[str, Any]:
    return wait_task(client, task_id, {"awaiting_approval", "succeeded", "failed"}, timeout=30)


def _decide(
    client: httpx.Client, task_id: str, approval_id: str, decision: str, **body: Any
) -> httpx.Response:
    return client.post(
        f"/v1/tasks/{task_id}/approvals/{approval_id}", json={"decision": decision, **body}
    )


def _events(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    """The task's events so far (the stream is read until its first keep-alive pause)."""
    with client.stream("GET", f"/v1/tasks/{task_id}/events", timeout=30) as response:
        text = ""
        for chunk in response.iter_text():
            text += chunk
            if '"status":"queued","approval_id"' in text or "event: done" in text:
                break
            if "event: approval_required" in text and text.endswith("\n\n"):
                break
    return parse_sse(text)


def test_a_call_under_the_rule_needs_no_approval(stack: Stack, tools: ToolService) -> None:
    stack.worker()
    order = _order()
    task_id = _submit(stack.alpha, "approver", {"order_id": order, "amount": 50})
    record = wait_task(stack.alpha, task_id, {"succeeded", "failed"})
    assert record["status"] == "succeeded", record
    assert record["approval_id"] is None
    [call] = tools.calls(order)
    assert call["arguments"]["amount"] == 50


def test_approve_with_edited_arguments_resumes_on_another_worker(
    stack: Stack, tools: ToolService, receiver: Receiver
) -> None:
    env, alpha = stack.env, stack.alpha
    first_port = free_port()
    first = env.start_worker(AGENT_METRICS_PORT=str(first_port))
    hook = receiver.plan(200)
    order = _order()
    try:
        task_id = _submit(alpha, "approver", {"order_id": order, "amount": 500}, webhook_url=hook)
        record = _paused(alpha, task_id)
        assert record["status"] == "awaiting_approval", record
        approval_id = record["approval_id"]
        # The webhook announces the approval, signed like a completion.
        [hit] = receiver.wait_hits(hook, 1)
        payload = check_signature(hit, SECRET)
        assert hit.headers["x-agent-event"] == "approval.required"
        assert hit.headers["x-agent-delivery"] == f"{approval_id}:1"
        assert hit.headers["x-agent-task-id"] == task_id
        assert payload["event"] == "approval.required"
        assert payload["approval"]["approval_id"] == approval_id
        assert payload["approval"]["arguments"] == {"order_id": order, "amount": 500}
        assert payload["task"]["status"] == "awaiting_approval"
        # Nothing runs while it waits: the gauge counts it, the tool saw nothing.
        wait_record(
            alpha,
            task_id,
            lambda _: metric_value(first_port, "agent_approvals_pending") >= 1,
            timeout=10,
        )
    finally:
        first.stop()
    assert tools.calls(order) == []
    events = _events(alpha, task_id)
    [required] = [e for e in events if e.get("event") == "approval_required"]
    data = required["data"]
    assert data["approval_id"] == approval_id and data["tool"] == "refund"
    assert data["arguments"] == {"order_id": order, "amount": 500}
    assert data["step"] == 1 and "reasoning" in data
    # Listing: the tenant sees it pending; another tenant sees nothing and gets 404s.
    pending = alpha.get("/v1/approvals", params={"status": "pending"}).json()["data"]
    assert approval_id in [a["approval_id"] for a in pending]
    assert stack.beta.get("/v1/approvals").json()["data"] == []
    foreign = _decide(stack.beta, task_id, approval_id, "approve")
    assert_error_shape(foreign, 404, "not_found")
    assert stack.beta.get(f"/v1/tasks/{task_id}").status_code == 404
    # Edited arguments must fit the tool's parameters.
    bad = _decide(alpha, task_id, approval_id, "approve", arguments={"order_id": order})
    assert bad.status_code == 422 and "amount" in bad.json()["error"]["message"]
    # Approve with a smaller amount, on another worker.
    stack.worker()
    edited = {"order_id": order, "amount": 120}
    answer = _decide(alpha, task_id, approval_id, "approve", arguments=edited, comment="ok")
    assert answer.status_code == 200, answer.text
    assert answer.json()["idempotent_replay"] is False
    assert answer.json()["approval"]["status"] == "approved"
    record = wait_task(alpha, task_id, {"succeeded", "failed"})
    assert record["status"] == "succeeded", record
    [call] = tools.calls(order)
    assert call["arguments"] == edited
    assert call["idempotency_key"] == f"{task_id}:1"
    assert "RF-" in record["result"]["answer"]
    last = record["attempt_log"][-1]
    assert (last["trigger"], last["resumed_at_step"], record["attempts"]) == ("approval", 1, 2)
    assert json.loads(record["result"]["steps"][1]["input"]) == edited
    # The same decision again: a no-op; another one: 409.
    again = _decide(alpha, task_id, approval_id, "approve", arguments=edited)
    assert again.status_code == 200 and again.json()["idempotent_replay"] is True
    conflicting = _decide(alpha, task_id, approval_id, "reject")
    assert_error_shape(conflicting, 409, "conflict")
    other_arguments = _decide(alpha, task_id, approval_id, "approve")
    assert other_arguments.status_code == 409
    assert len(tools.calls(order)) == 1
    pending = alpha.get("/v1/approvals", params={"status": "pending"}).json()["data"]
    assert approval_id not in [a["approval_id"] for a in pending]
    decided = metric_value(
        stack.api_metrics, "agent_approvals_total", agent="approver", tool="refund",
        decision="approve",
    )  # fmt: skip
    assert decided == 1
    finished = receiver.wait_hits(hook, 2)[1]
    assert finished.headers["x-agent-event"] == "task.finished"


def test_a_rejection_is_told_to_the_model_which_answers(stack: Stack, tools: ToolService) -> None:
    stack.worker()
    order = _order()
    task_id = _submit(stack.alpha, "approver", {"order_id": order, "amount": 900})
    approval_id = _paused(stack.alpha, task_id)["approval_id"]
    answer = _decide(stack.alpha, task_id, approval_id, "reject", comment="not during the audit")
    assert answer.status_code == 200, answer.text
    record = wait_task(stack.alpha, task_id, {"succeeded", "failed"})
    assert record["status"] == "succeeded", record
    text = record["result"]["answer"]
    assert "rejected it: not during the audit" in text, text
    assert tools.calls(order) == []
    assert record["result"]["steps"][1]["status"] == "error"


def test_an_expired_approval_rejects_the_call(stack: Stack, tools: ToolService) -> None:
    worker_port = stack.worker()
    order = _order()
    task_id = _submit(stack.alpha, "expiring", {"order_id": order, "amount": 10})
    approval_id = _paused(stack.alpha, task_id)["approval_id"]
    record = wait_task(stack.alpha, task_id, {"succeeded", "failed"}, timeout=30)
    assert record["status"] == "succeeded", record
    assert "not approved within 2 s" in record["result"]["answer"]
    assert tools.calls(order) == []
    [approval] = [
        a for a in stack.alpha.get("/v1/approvals").json()["data"]
        if a["approval_id"] == approval_id
    ]  # fmt: skip
    assert (approval["status"], approval["decision"]) == ("expired", "timeout")
    late = _decide(stack.alpha, task_id, approval_id, "approve")
    assert late.status_code == 409
    timeouts = metric_value(
        worker_port, "agent_approvals_total", agent="expiring", tool="refund", decision="timeout"
    )
    assert timeouts >= 1


def test_an_expired_approval_fails_the_task_when_set_to(stack: Stack) -> None:
    stack.worker()
    task_id = _submit(stack.alpha, "strict", {"order_id": _order(), "amount": 10})
    _paused(stack.alpha, task_id)
    record = wait_task(stack.alpha, task_id, {"succeeded", "failed"}, timeout=30)
    assert record["status"] == "failed", record
    assert record["error"]["type"] == "approval_timeout"


def test_cancelling_a_paused_task_withdraws_its_approval(stack: Stack) -> None:
    stack.worker()
    task_id = _submit(stack.alpha, "approver", {"order_id": _order(), "amount": 700})
    approval_id = _paused(stack.alpha, task_id)["approval_id"]
    answer = stack.alpha.post(f"/v1/tasks/{task_id}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    record = stack.alpha.get(f"/v1/tasks/{task_id}").json()
    assert record["status"] == "cancelled" and record["approval_id"] is None
    pending = stack.alpha.get("/v1/approvals", params={"status": "pending"}).json()["data"]
    assert approval_id not in [a["approval_id"] for a in pending]
    late = _decide(stack.alpha, task_id, approval_id, "approve")
    assert late.status_code == 409


def test_a_sync_chat_reaching_a_gated_tool_answers_409_and_continues_as_a_task(
    stack: Stack, tools: ToolService
) -> None:
    stack.worker()
    order = _order()
    message = call_message("refund", {"order_id": order, "amount": 300})
    answer = stack.alpha.post("/v1/chat", json={"message": message, "agent": "approver"})
    assert_error_shape(answer, 409, "approval_required")
    task_id = answer.headers["location"].rsplit("/", 1)[1]
    assert task_id in answer.json()["error"]["message"]
    record = stack.alpha.get(f"/v1/tasks/{task_id}").json()
    assert record["status"] == "awaiting_approval"
    assert record["request"]["message"] == message
    approval_id = record["approval_id"]
    assert _decide(stack.alpha, task_id, approval_id, "approve").status_code == 200
    record = wait_task(stack.alpha, task_id, {"succeeded", "failed"})
    assert record["status"] == "succeeded", record
    # The LLM step made by the sync run was handed over, not made again.
    assert record["attempt_log"][-1]["resumed_at_step"] == 1
    assert len(tools.calls(order)) == 1


def test_a_streamed_chat_ends_with_approval_required_and_the_task_id(stack: Stack) -> None:
    stack.worker()
    message = call_message("refund", {"order_id": _order(), "amount": 400})
    body = {"message": message, "agent": "approver", "stream": True}
    with stack.alpha.stream("POST", "/v1/chat", json=body) as response:
        assert response.status_code == 200
        events = parse_sse(response.read().decode())
    assert [e["event"] for e in events] == ["step", "approval_required"]
    data = events[-1]["data"]
    assert data["tool"] == "refund" and data["arguments"]["amount"] == 400
    task_id = data["task_id"]
    record = stack.alpha.get(f"/v1/tasks/{task_id}").json()
    assert record["status"] == "awaiting_approval"
    assert record["approval_id"] == data["approval_id"]
    assert _decide(stack.alpha, task_id, data["approval_id"], "reject").status_code == 200
    assert wait_task(stack.alpha, task_id, {"succeeded", "failed"})["status"] == "succeeded"


def test_a_paused_run_holds_its_session_until_interrupted(stack: Stack) -> None:
    stack.worker()
    session = f"s-{uuid.uuid4().hex[:8]}"
    first = _submit(
        stack.alpha, "interrupter", {"order_id": _order(), "amount": 1}, session_id=session
    )
    approval_id = _paused(stack.alpha, first)["approval_id"]
    # The session is busy while the run waits: a `reject` agent is refused...
    refused = stack.alpha.post(
        "/v1/tasks", json={"message": "hello", "agent": "approver", "session_id": session}
    )
    assert_error_shape(refused, 409, "conflict")
    # ...and an `interrupt` agent cancels the paused run at once and starts.
    answer = stack.alpha.post(
        "/v1/tasks",
        json={"message": "hello there", "agent": "interrupter", "session_id": session},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["interrupted"] == [first] and answer.json()["waiting"] is False
    assert stack.alpha.get(f"/v1/tasks/{first}").json()["status"] == "cancelled"
    pending = stack.alpha.get("/v1/approvals", params={"status": "pending"}).json()["data"]
    assert approval_id not in [a["approval_id"] for a in pending]
    second = wait_task(stack.alpha, answer.json()["task_id"], {"succeeded", "failed"})
    assert second["status"] == "succeeded", second
