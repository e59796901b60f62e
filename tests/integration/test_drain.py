"""A real API process drains on SIGTERM: what is still running when its grace runs out is
answered (503 ``shutting_down`` with Retry-After, or an SSE ``error`` event), never cut; what
ends within the grace is answered normally; the process then exits cleanly.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RedisServer, SimFactory
from tests.faults.harness import wait_until
from tests.integration.stack import (
    StackEnv,
    metric_value,
    model,
    parse_sse,
    write_agent_config,
)
from tests.procs import Proc, free_port

GRACE = 4  # AGENT_API_GRACEFUL_TIMEOUT_SECONDS: the runs are ended ~1 s before it runs out


@pytest.fixture(scope="module")
def drain_env(
    redis_server: RedisServer,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> StackEnv:
    stuck, quick = sim_factory("--ttft", "60"), sim_factory("--ttft", "1.0")
    config = write_agent_config(
        tmp_path_factory.mktemp("drain") / "agent.yaml",
        [model("stuck", stuck.url, timeout=90), model("quick", quick.url)],
        limits={"runTimeoutSeconds": 90},
    )
    return StackEnv(
        redis_server.url,
        quick.url,
        log_dir,
        extra={"AGENT_CONFIG_FILE": str(config), "AGENT_API_GRACEFUL_TIMEOUT_SECONDS": str(GRACE)},
    )


def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.post(path, json=body)


def _stream(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> str:
    with (
        httpx.Client(base_url=url, timeout=60) as client,
        client.stream(method, path, json=body) as response,
    ):
        assert response.status_code == 200, response.read()
        return response.read().decode()  # an incomplete chunked body would raise here


def _terminate_with(
    proc: Proc, metrics_port: int, calls: dict[str, Callable[[], Any]]
) -> tuple[dict[str, Any], float]:
    """Start ``calls`` against the API, SIGTERM it once all are being served; their results
    and how long the process took to exit."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures: dict[str, Future[Any]] = {name: pool.submit(call) for name, call in calls.items()}
        wait_until(
            lambda: metric_value(metrics_port, "agent_http_requests_in_progress") >= len(calls),
            "every request being served",
            timeout=30,
        )
        assert all(not f.done() for f in futures.values()), {
            n: f.result() for n, f in futures.items() if f.done()
        }
        sent = time.monotonic()
        proc.signal(signal.SIGTERM)
        code = proc.popen.wait(timeout=GRACE + 15)
        took = time.monotonic() - sent
        # uvicorn re-raises the SIGTERM it handled once it has shut down; gunicorn exits 0.
        assert code in (0, -signal.SIGTERM), proc.log()[-3000:]
        return {name: f.result(timeout=10) for name, f in futures.items()}, took


def _api(env: StackEnv, **more: str) -> tuple[Proc, str, int]:
    """An API process, warmed up (its first run imports the rest of LiteLLM, which would stall
    the requests of the test), and its metrics port."""
    port = free_port()
    proc, url = env.start_api(AGENT_METRICS_PORT=str(port), **more)
    assert _post(url, "/v1/chat", {"message": "warm up", "model": "quick"}).status_code == 200
    return proc, url, port


def test_sigterm_answers_runs_still_going_and_lets_short_ones_finish(drain_env: StackEnv) -> None:
    proc, url, metrics_port = _api(drain_env)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            resp = client.post("/v1/tasks", json={"message": "no worker takes this"})
            assert resp.status_code == 202, resp.text
            task_id = resp.json()["task_id"]
        results, took = _terminate_with(
            proc,
            metrics_port,
            {
                "sync": lambda: _post(url, "/v1/chat", {"message": "hi", "model": "stuck"}),
                "short": lambda: _post(url, "/v1/chat", {"message": "hi", "model": "quick"}),
                "stream": lambda: _stream(
                    url, "POST", "/v1/chat", {"message": "hi", "model": "stuck", "stream": True}
                ),
                "openai": lambda: _stream(
                    url,
                    "POST",
                    "/v1/chat/completions",
                    {
                        "model": "stuck",
                        "stream": True,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                ),
                "events": lambda: _stream(url, "GET", f"/v1/tasks/{task_id}/events"),
            },
        )
    finally:
        proc.stop()

    sync = results["sync"]
    assert sync.status_code == 503, sync.text
    assert sync.headers["retry-after"]
    assert sync.json()["error"]["type"] == "shutting_down"
    assert "retry" in sync.json()["error"]["message"]
    assert results["short"].status_code == 200, results["short"].text  # ended within the grace

    last = parse_sse(results["stream"])[-1]
    assert last["event"] == "error" and last["data"]["type"] == "shutting_down"
    assert '"code":"shutting_down"' in results["openai"]
    assert results["openai"].rstrip().endswith("data: [DONE]")
    # The task's stream ends as the drain begins, resumable: its last event has no id.
    events = parse_sse(results["events"])
    assert [e["event"] for e in events][-1:] == ["error"]
    assert {e["event"] for e in events[:-1]} <= {"status"}  # `queued`, if read before the drain
    assert events[-1]["data"]["type"] == "shutting_down" and "id" not in events[-1]
    assert took < GRACE + 10, f"exited {took:.1f} s after SIGTERM"
    print(f"\nAPI drained and exited {took:.1f} s after SIGTERM (grace {GRACE} s)")


def test_gunicorn_workers_drain_the_same_way(drain_env: StackEnv) -> None:
    proc, url, metrics_port = _api(drain_env, AGENT_API_WORKERS="2")
    try:
        call = lambda: _post(url, "/v1/chat", {"message": "hi", "model": "stuck"})  # noqa: E731
        results, _ = _terminate_with(proc, metrics_port, {"one": call, "two": call})
    finally:
        proc.stop()
    for answer in results.values():  # served by either worker process
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] and answer.json()["error"]["type"] == "shutting_down"
