"""Metrics from real API and worker processes: every service metric, labels, multiprocess sums.

The stack runs with history on (a database on the session's Postgres), so the history
metrics are exposed too: the outbox gauges by the worker's drainer, feedback by the API."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import Sim
from tests.contract.design_metrics import SERVICE_METRICS
from tests.integration.stack import StackEnv, wait_task
from tests.mcp_processes import demo_process
from tests.postgres import PostgresServer
from tests.procs import free_port

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.M)


def families(text: str) -> set[str]:
    """Names as the design table writes them (counters keep ``_total``), with a sample."""
    names = set()
    for sample, _, _ in SAMPLE.findall(text):
        base = re.sub(r"_(bucket|count|sum|created)$", "", sample)
        names.add(base if base in SERVICE_METRICS else sample)
    return names


def label_values(text: str, metric: str, label: str) -> set[str]:
    pattern = re.compile(rf"^{metric}\{{[^}}]*{label}=\"([^\"]*)\"", re.M)
    return set(pattern.findall(text))


@pytest.fixture(scope="module")
def ports(
    stack_env: StackEnv,
    sim: Sim,
    log_dir: Path,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, int, int]]:
    # The stack's config plus an MCP server, so the MCP gauges have samples too.
    demo = demo_process(log_dir).start()
    config = tmp_path_factory.mktemp("metrics") / "agent.yaml"
    document = yaml.safe_load(Path(stack_env.extra["AGENT_CONFIG_FILE"]).read_text())
    document["mcpServers"] = [{"name": "orders", "url": demo.url, "allowPrivateNetworks": True}]
    # One named agent as the implicit one was, with a gated tool whose rule never matches: the
    # approval metrics are exposed (primed) without any run pausing.
    document["agents"] = [
        {
            "name": "default",
            "tools": {"calculator": True, "current_time": True, "mcp": [{"server": "orders"}]},
            "approvals": {
                "tools": [{"tool": "current_time", "approval": "rule", "rule": {"required": ["x"]}}]
            },
        }
    ]
    # A knowledge base (nobody fills it): the retrieval histograms are primed, and the worker's
    # counter reports its chunks from the embedded store it alone opens.
    document["models"].append(
        {"name": "embed", "model": "openai/sim-embedding", "apiBase": sim.url, "kind": "embedding"}
    )
    document["knowledgeBases"] = [
        {"name": "docs", "description": "Operations docs.", "embeddingModel": "embed"}
    ]
    document["agents"][0]["knowledge"] = ["docs"]
    config.write_text(yaml.safe_dump(document))
    chroma = tmp_path_factory.mktemp("metrics-chroma")
    api_metrics, worker_metrics = free_port(), free_port()
    with postgres_server.database() as history_url:
        history = {"AGENT_CONFIG_FILE": str(config), "AGENT_HISTORY_URL": history_url}
        api, url = stack_env.start_api(AGENT_METRICS_PORT=str(api_metrics), **history)
        worker = stack_env.start_worker(
            AGENT_METRICS_PORT=str(worker_metrics),
            AGENT_KNOWLEDGE_CHROMA_PATH=str(chroma),
            **history,
        )
        yield url, api_metrics, worker_metrics
        worker.stop()
        api.stop()
    demo.stop()


def test_every_design_metric_is_exposed_after_a_sync_and_a_queued_run(
    ports: tuple[str, int, int],
) -> None:
    url, api_port, worker_port = ports
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/v1/chat", json={"message": "what is 2+3?"}).status_code == 200
        with client.stream("POST", "/v1/chat", json={"message": "hi", "stream": True}) as resp:
            resp.read()
        task = client.post("/v1/tasks", json={"message": "what is 12*(3+4)?"}).json()["task_id"]
        wait_task(client, task, {"succeeded"})
        client.get(f"/v1/tasks/{task}")
        deadline = time.monotonic() + 30
        while (
            feedback := client.post(f"/v1/tasks/{task}/feedback", json={"score": 1})
        ).status_code == 409:
            assert time.monotonic() < deadline, "the task was not archived in 30 s"
            time.sleep(0.1)
        assert feedback.status_code == 200, feedback.text
        api_text = client.get("/metrics").text
    started = time.perf_counter()
    port_text = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=10).text
    print(f"scrape of the api metrics port: {(time.perf_counter() - started) * 1000:.1f} ms")
    worker_text = httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text
    assert families(port_text) >= families(api_text) - {"python_info"}
    exposed = families(api_text) | families(worker_text)
    missing = sorted(name for name in SERVICE_METRICS if name not in exposed)
    assert not missing, f"not exposed by api or worker: {missing}"


def test_labels_come_from_closed_sets(ports: tuple[str, int, int]) -> None:
    url, _, worker_port = ports
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get(f"/v1/tasks/{'a' * 32}")
        client.get("/v1/no/such/route/123")
        text = client.get("/metrics").text
    routes = label_values(text, "agent_http_requests_total", "route")
    assert "/v1/tasks/{task_id}" in routes
    assert "unmatched" in routes
    assert not any("aaaa" in r or "123" in r for r in routes), routes
    worker_text = httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text
    assert label_values(worker_text, "agent_llm_requests_total", "model") <= {
        "sim",
        "slow",
        "broken",
        "sim-backup",
        "embed",
    }
    assert label_values(worker_text, "agent_tool_calls_total", "tool") <= {
        "calculator",
        "current_time",
        "unknown",
        # the demo MCP server's tools, as discovered: <server>__<tool>
        "orders__lookup_order",
        "orders__list_recent_orders",
        "orders__track_shipment",
        "orders__refund_order",
        "search_docs",
    }
    assert 'agent_worker_slots{queue="' in worker_text
    assert re.search(r'^agent_queue_depth\{queue="[^"]+"\} 0\.0$', worker_text, re.M)


@pytest.mark.parametrize("explicit_dir", [True, False])
def test_gunicorn_workers_are_summed_on_the_metrics_port(
    stack_env: StackEnv, tmp_path: Path, explicit_dir: bool
) -> None:
    metrics_port = free_port()
    extra = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)} if explicit_dir else {}
    proc, url = stack_env.start_api(
        AGENT_API_WORKERS="2", AGENT_METRICS_PORT=str(metrics_port), **extra
    )
    try:
        for _ in range(40):  # a new connection each time: requests spread over both workers
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        match = re.search(
            r'^agent_http_requests_total\{method="GET",route="/healthz",status_code="200"\} (\S+)',
            text,
            re.M,
        )
        assert match and float(match.group(1)) >= 40, text[:2000]
        if explicit_dir:
            pids = {p.stem.rsplit("_", 1)[-1] for p in tmp_path.glob("counter_*.db")}
            assert len(pids) >= 2, f"expected files from two workers, got {pids}"
    finally:
        proc.stop()
