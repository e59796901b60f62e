"""Failing dependencies: a flaky primary model, a hung model, a hung HTTP tool.

The models are simulators started with failure injection (``agent-service sim-llm --fail-500``,
``--hang``); the hung tool is a TCP server that accepts requests and never answers. Every hang
must be cut by its configured timeout (the simulator would hang for two minutes), and the run
must then either go on (fallback model, tool error handed to the model) or fail cleanly with
the documented error.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer, SimFactory
from tests.faults.harness import Worker, start_workers, submit_many, wait_terminal
from tests.integration.stack import StackEnv, model, write_agent_config

pytestmark = pytest.mark.faults

RUNS = 200
HANG_SECONDS = 120  # how long the simulator and the tool would hang: far above every bound
TIMEOUT = 1.0  # the hung model's and the hung tool's configured timeout


class SilentServer:
    """Accepts TCP connections, reads what comes, never answers (a hung HTTP tool)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self.sock.close()


@pytest.fixture(scope="module")
def silent_tool() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def stack_env(
    redis_server: RedisServer,
    sim_factory: SimFactory,
    silent_tool: SilentServer,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> StackEnv:
    flaky = sim_factory("--ttft", "0.01", "--fail-500", "0.5", "--fail-model", "primary")
    hung = sim_factory("--hang", "1.0", "--hang-seconds", str(HANG_SECONDS))
    config = write_agent_config(
        tmp_path_factory.mktemp("faults-deps") / "agent.yaml",
        [
            model("primary", flaky.url, fallbacks=["backup"]),
            model("backup", flaky.url),
            model("stuck", hung.url, timeout=TIMEOUT),
            model(
                "stuck-then-backup",
                hung.url,
                provider_model="stuck",
                timeout=TIMEOUT,
                fallbacks=["backup"],
            ),
        ],
        limits={"runTimeoutSeconds": 20},
        tools={
            "allowPrivateNetworks": True,
            "http": [
                {
                    "name": "lookup",
                    "description": "Looks things up.",
                    "url": f"http://127.0.0.1:{silent_tool.port}/lookup",
                    "timeoutSeconds": TIMEOUT,
                }
            ],
        },
    )
    return StackEnv(
        redis_server.url,
        flaky.url,
        log_dir,
        extra={"AGENT_CONFIG_FILE": str(config), "AGENT_WORKER_CONCURRENCY": "32"},
    )


@pytest.fixture(scope="module")
def worker(stack_env: StackEnv) -> Iterator[Worker]:
    (started,) = start_workers(stack_env, 1)
    yield started
    started.proc.stop()


def test_primary_failing_half_the_calls_runs_succeed_via_fallback(
    client: httpx.Client, worker: Worker
) -> None:
    ids = submit_many(client, RUNS)
    records = wait_terminal(client, ids, timeout=90)
    succeeded = [r for r in records.values() if r["status"] == "succeeded"]
    assert len(succeeded) >= 0.99 * RUNS, [r["error"] for r in records.values() if r["error"]][:3]
    by_backup = [r for r in succeeded if r["result"]["model"] == "backup"]
    # About half the primary calls fail (seeded injection) and each one falls back once.
    assert 0.3 * RUNS <= len(by_backup) <= 0.7 * RUNS, len(by_backup)
    for record in by_backup:
        (step,) = record["result"]["steps"]
        assert step["fallback_from"] == "primary"
    fallbacks = worker.metric("agent_llm_fallbacks_total", from_model="primary", to_model="backup")
    assert fallbacks == len(by_backup)


def test_hung_model_without_fallback_fails_cleanly_within_its_timeout(
    client: httpx.Client,
) -> None:
    started = time.monotonic()
    resp = client.post("/v1/chat", json={"message": "hello", "model": "stuck"})
    elapsed = time.monotonic() - started
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["type"] == "llm_unavailable"
    assert resp.headers.get("retry-after")
    # Bounded by the model's timeout (1 s) and its deadline margin, not by the 120 s hang.
    assert elapsed < 10, elapsed


def test_hung_model_with_fallback_goes_on_with_the_fallback(client: httpx.Client) -> None:
    resp = client.post("/v1/chat", json={"message": "hello", "model": "stuck-then-backup"})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["model"] == "backup"
    (step,) = result["steps"]
    assert step["name"] == "backup"
    assert step["fallback_from"] == "stuck-then-backup"


def test_hung_http_tool_is_cut_by_its_timeout_and_the_run_goes_on(
    client: httpx.Client, silent_tool: SilentServer
) -> None:
    before = silent_tool.accepted
    resp = client.post(
        "/v1/chat", json={"message": "use the lookup tool: weather in Paris", "model": "backup"}
    )
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert silent_tool.accepted > before, "the tool was never called"
    kinds = [(s["kind"], s["name"], s["status"]) for s in result["steps"]]
    assert kinds == [("llm", "backup", "ok"), ("tool", "lookup", "error"), ("llm", "backup", "ok")]
    tool_step = result["steps"][1]
    assert tool_step["duration_ms"] < 10_000, tool_step  # the 1 s timeout, not the hang
    assert "could not use the lookup tool" in result["answer"]
