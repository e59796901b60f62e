"""``agent-service up``: the whole local stack from one command, then a clean Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.stack import wait_task
from tests.procs import Proc, base_env, cli, free_port, wait_http

pytestmark = pytest.mark.e2e


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(240)  # the stack, then a chat, a task and their history
def test_up_runs_the_stack_and_ctrl_c_stops_everything(log_dir: Path) -> None:
    port = free_port()
    env = base_env({"AGENT_AUTH_ENABLED": "true"})  # as a user runs it: keys required
    proc = Proc("up", cli("up", "--port", str(port)), env, log_dir)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", proc, timeout=120)
        # The banner comes after /readyz answers: wait for the key itself to be printed.
        deadline = time.monotonic() + 20
        found = None
        while found is None and time.monotonic() < deadline:
            found = re.search(r"API key +(ak_\S+)", proc.log())
            time.sleep(0.1)
        assert found, proc.log()[-2000:]
        anonymous = httpx.post(f"http://127.0.0.1:{port}/v1/chat", json={"message": "hi"})
        assert anonymous.status_code == 401
        headers = {"Authorization": f"Bearer {found.group(1)}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers
        ) as client:
            sync = client.post("/v1/chat", json={"message": "what is 12*(3+4)?"})
            assert sync.status_code == 200, sync.text
            assert "84" in sync.json()["answer"]
            assert "calculator" in [s["name"] for s in sync.json()["steps"]]
            task = client.post("/v1/tasks", json={"message": "what is 12*(3+4)?"})
            assert task.status_code == 202
            record = wait_task(client, task.json()["task_id"], {"succeeded", "failed"}, 60)
            assert record["status"] == "succeeded"
            assert "84" in record["result"]["answer"]
            # The run history, in the private Postgres `up` started (Debian's postgresql).
            history = re.search(
                r"history +(postgresql://postgres@127\.0\.0\.1:(\d+)/\S+)", proc.log()
            )
            assert history, proc.log()[-2000:]
            pg_port = int(history.group(2))
            runs = {sync.headers["x-run-id"], task.json()["task_id"]}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                listed = client.get("/v1/tasks")
                if listed.status_code == 200 and runs <= {
                    i["run_id"] for i in listed.json()["items"]
                }:
                    break
                time.sleep(0.5)
            assert runs <= {i["run_id"] for i in listed.json()["items"]}, listed.text
            feedback = client.post(
                f"/v1/runs/{sync.headers['x-run-id']}/feedback", json={"score": 1}
            )
            assert feedback.status_code == 200, feedback.text
            usage = client.get("/v1/usage").json()["rows"]
            assert usage[0]["runs"] == 2 and usage[0]["feedback_up"] == 1
            agents = client.get("/v1/agents").json()
            assert [a["name"] for a in agents["data"]] == ["assistant", "orders", "refunds"]
            assert agents["default_agent"] == "assistant"
            orders = client.post(
                "/v1/chat", json={"agent": "orders", "message": "where is order OD-20240502?"}
            )
            assert orders.status_code == 200, orders.text
            assert "OD-20240502 is shipped" in orders.json()["answer"]
            assert ("tool", "orders__lookup_order") in [
                (s["kind"], s["name"]) for s in orders.json()["steps"]
            ]
            _approve_a_refund(client)
        sdk = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=found.group(1), max_retries=0
        )
        with sdk:
            completion = sdk.chat.completions.create(
                model="orders",
                messages=[{"role": "user", "content": "where is order OD-20240502?"}],
            )
        assert "OD-20240502 is shipped" in (completion.choices[0].message.content or "")
        assert f"http://127.0.0.1:{port}" in proc.log()
        assert "orders     Customer service" in proc.log()
        assert '"agent":"refunds"' in proc.log() and "approvals?status=pending" in proc.log()
        assert "curl -s" in proc.log()
        proc.signal(signal.SIGINT)
        assert proc.popen.wait(timeout=60) == 0, proc.log()[-3000:]
        deadline = time.monotonic() + 10
        while _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _port_open(port), "the API outlived agent-service up"
        assert not _port_open(pg_port), "Postgres outlived agent-service up"
    finally:
        proc.kill_group() if proc.alive() else None
        proc.stop()


def test_up_without_redis_server_says_how_to_install_it(tmp_path: Path) -> None:
    env = base_env({"PATH": str(tmp_path)})  # no redis-server on this PATH
    result = subprocess.run(
        cli("up"), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "redis-server not found" in lines[0] and "apt-get install" in lines[0]
    )


def _approve_a_refund(client: httpx.Client) -> None:
    """The approval flow the banner shows: the refund pauses, is listed, approved, made once."""
    body = {"agent": "refunds", "message": "please refund order OD-20240502"}
    task = client.post("/v1/tasks", json=body)
    assert task.status_code == 202, task.text
    task_id = task.json()["task_id"]
    record = wait_task(client, task_id, {"awaiting_approval", "failed", "succeeded"}, 60)
    assert record["status"] == "awaiting_approval", record
    [pending] = client.get("/v1/approvals", params={"status": "pending"}).json()["data"]
    assert pending["tool"] == "orders__refund_order"
    assert pending["arguments"]["order_id"] == "OD-20240502"
    decided = client.post(
        f"/v1/tasks/{task_id}/approvals/{pending['approval_id']}", json={"decision": "approve"}
    )
    assert decided.status_code == 200, decided.text
    record = wait_task(client, task_id, {"succeeded", "failed"}, 60)
    assert record["status"] == "succeeded", record
    assert "for order OD-20240502 is issued" in record["result"]["answer"]
