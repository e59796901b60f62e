"""The real Prometheus and Alertmanager against real api and worker processes.

Loads the very rule files in alerts/ (only ``for:`` shortened), scrapes every second, then:
every dashboard query returns data after a burst of runs, and with a simulator failing every
call the LLM-error and task-failure alerts reach Alertmanager (read back through its API).
Job names say nothing of agent-service (as under the chart's fullnameOverride): the rules find
the targets by the labels the chart's ServiceMonitors set, and a target nobody answers on fires
AgentServiceTargetDown.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent_service import localmonitoring
from tests.conftest import RedisServer, Sim, SimFactory
from tests.contract.dashboard_queries import iter_dashboard_queries
from tests.integration.stack import StackEnv, wait_task, write_config
from tests.mcp_processes import demo_process
from tests.procs import Proc, free_port, wait_http

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_ALERTS = {
    "AgentServiceLLMErrorRatioHigh",
    "AgentServiceTaskFailureRatioHigh",
    "AgentServiceTargetDown",
}
DEAD_JOB = "renamed-api"  # a target with no process behind it


@dataclass
class Env:
    healthy: str
    failing: str
    prometheus: str
    alertmanager: str

    def query(self, expr: str) -> list[Any]:
        resp = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def env(
    redis_server: RedisServer,
    sim: Sim,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:
    """A healthy stack, a stack whose only model always fails, Prometheus and Alertmanager."""
    if localmonitoring.find_binaries() is None:
        pytest.fail("prometheus and prometheus-alertmanager must be installed (scripts/test.sh)")
    failing_sim = sim_factory("--fail-500", "1.0")
    demo = demo_process(log_dir).start()  # an MCP server, for the MCP panels
    work = tmp_path_factory.mktemp("monitoring")
    procs: list[Proc] = []
    targets: list[localmonitoring.Target] = []
    urls: dict[str, str] = {}
    processes = []
    logs = (work / "monitoring.log").open("wb")
    try:
        for name, model, url in (
            ("healthy", "sim", sim.url),
            ("failing", "broken", failing_sim.url),
        ):
            config = write_config(work / f"{name}.yaml", {model: url})
            if name == "healthy":
                document = yaml.safe_load(config.read_text())
                document["mcpServers"] = [
                    {"name": "orders", "url": demo.url, "allowPrivateNetworks": True}
                ]
                # a knowledge base, for the knowledge panels: the worker counts its chunks
                document["models"].append(
                    {"name": "embed", "model": "openai/sim-embedding", "apiBase": url,
                     "kind": "embedding"}
                )  # fmt: skip
                document["knowledgeBases"] = [
                    {"name": "docs", "description": "Operations docs.", "embeddingModel": "embed"}
                ]
                config.write_text(yaml.safe_dump(document))
            stack = StackEnv(
                redis_server.url, sim.url, log_dir, extra={"AGENT_CONFIG_FILE": str(config)}
            )
            api_port, worker_port = free_port(), free_port()
            api, urls[name] = stack.start_api(AGENT_METRICS_PORT=str(api_port))
            procs.append(api)
            chroma = work / f"chroma-{name}"  # embedded, the worker's alone
            procs.append(
                stack.start_worker(
                    AGENT_METRICS_PORT=str(worker_port), AGENT_KNOWLEDGE_CHROMA_PATH=str(chroma)
                )
            )
            targets.append(localmonitoring.Target(f"api-{name}", f"127.0.0.1:{api_port}", "api"))
            targets.append(
                localmonitoring.Target(f"worker-{name}", f"127.0.0.1:{worker_port}", "worker")
            )
        targets.append(localmonitoring.Target(DEAD_JOB, f"127.0.0.1:{free_port()}", "api"))
        rules = localmonitoring.shorten_rules(
            localmonitoring.rule_files(ROOT / "alerts"), work / "rules", "1s"
        )
        assert rules, "no rule files in alerts/"
        prom_port, am_port = free_port(), free_port()
        processes = localmonitoring.start(
            work,
            targets=targets,
            rules=rules,
            prometheus_port=prom_port,
            alertmanager_port=am_port,
            intervals=("1s", "1s"),
            popen_kwargs={"stdout": logs, "stderr": logs},
        )
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", timeout=60)
        wait_http(f"http://127.0.0.1:{am_port}/-/ready", timeout=60)
        yield Env(
            urls["healthy"],
            urls["failing"],
            f"http://127.0.0.1:{prom_port}",
            f"http://127.0.0.1:{am_port}",
        )
    finally:
        for process in processes:
            process.terminate()
            with contextlib.suppress(Exception):
                process.wait(timeout=10)
        for proc in procs:
            proc.stop()
        demo.stop()
        logs.close()


def _burst(url: str, expect_ok: bool) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for message in ("what is 12*(3+4)?", "what time is it in Europe/Paris?", "hello"):
            resp = client.post("/v1/chat", json={"message": message})
            assert (resp.status_code == 200) is expect_ok, resp.text
        with client.stream(
            "POST", "/v1/chat", json={"message": "what is 6*7?", "stream": True}
        ) as s:
            s.read()
        client.get(f"/v1/tasks/{'0' * 32}")  # a 404, for the error-ratio panels
        ids = [
            client.post("/v1/tasks", json={"message": f"what is {i}+1?"}).json()["task_id"]
            for i in range(5)
        ]
        for task_id in ids:
            wait_task(client, task_id, {"succeeded", "failed"}, timeout=60)


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout}s (last: {last})")


def test_every_dashboard_query_returns_data(env: Env) -> None:
    _burst(env.healthy, expect_ok=True)
    # two scrapes after the burst, so rate() windows hold the new samples
    _wait_for(lambda: env.query("sum(agent_tasks_finished_total)"), 30, "tasks in Prometheus")
    time.sleep(3)
    queries = [
        q
        for path in sorted((ROOT / "dashboards").glob("*.json"))
        for q in iter_dashboard_queries(path)
    ]
    assert len(queries) > 20
    empty = [f"{dash} / {panel}: {expr}" for dash, panel, expr in queries if not env.query(expr)]
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)


def test_llm_error_and_task_failure_alerts_reach_alertmanager(env: Env) -> None:
    _burst(env.failing, expect_ok=False)

    def firing() -> set[str]:
        alerts = httpx.get(f"{env.alertmanager}/api/v2/alerts", timeout=10).json()
        return {a["labels"]["alertname"] for a in alerts if a["status"]["state"] == "active"}

    def expected_active() -> set[str] | None:
        names = firing()
        return names if names >= EXPECTED_ALERTS else None

    names = _wait_for(expected_active, 90, "the expected alerts active in Alertmanager")
    assert names >= EXPECTED_ALERTS
    alerts = httpx.get(f"{env.alertmanager}/api/v2/alerts", timeout=10).json()
    llm = next(a for a in alerts if a["labels"]["alertname"] == "AgentServiceLLMErrorRatioHigh")
    assert llm["labels"]["model"] == "broken"
    down = [a for a in alerts if a["labels"]["alertname"] == "AgentServiceTargetDown"]
    assert [a["labels"]["job"] for a in down] == [DEAD_JOB], "only the dead target is down"
    assert llm["annotations"]["runbook_url"].endswith("#agentservicellmerrorratiohigh")
