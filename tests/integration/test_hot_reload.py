"""Hot reload of the agent config in a real API process and a real worker process.

The config directory is laid out as the kubelet lays out a mounted ConfigMap (``config.yaml`` ->
``..data/config.yaml``, ``..data`` -> a timestamped directory) and updated the way the kubelet
updates it: a new directory, then an atomic rename of the ``..data`` symlink.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer, Sim
from tests.integration.stack import StackEnv, wait_for_log, wait_task
from tests.procs import Proc

pytestmark = pytest.mark.integration

RELOAD_WITHIN_SECONDS = 5.0


def _config_text(default: str, models: dict[str, str], generation: int | None = None) -> str:
    lines = [f"defaultModel: {default}", "models:"]
    for name, url in models.items():
        lines += [f"  - name: {name}", f"    model: openai/{name}", f"    apiBase: {url}"]
    body = "\n".join(lines) + "\n"
    if generation is None:
        return body
    nested = "".join(f"  {line}\n" for line in body.splitlines())
    return (
        "apiVersion: agent-service.dev/v1alpha1\nkind: AgentConfig\n"
        f"metadata: {{name: demo, generation: {generation}}}\nspec:\n{nested}"
    )


class ConfigMapDir:
    """A directory updated like a ConfigMap volume."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0
        root.mkdir(parents=True)

    @property
    def file(self) -> Path:
        return self.root / "config.yaml"

    def publish(self, text: str) -> None:
        self.version += 1
        target = self.root / f"..2026_12_01_{self.version:04d}"
        target.mkdir()
        (target / "config.yaml").write_text(text, encoding="utf-8")
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(target.name)
        tmp.replace(self.root / "..data")  # rename(2): atomic, as the kubelet does
        if not self.file.is_symlink():
            self.file.symlink_to("..data/config.yaml")


@pytest.fixture(scope="module")
def configmap(tmp_path_factory: pytest.TempPathFactory, sim: Sim, slow_sim: Sim) -> ConfigMapDir:
    directory = ConfigMapDir(tmp_path_factory.mktemp("reload") / "config")
    directory.publish(_config_text("sim", {"sim": sim.url, "slow": slow_sim.url}))
    return directory


@pytest.fixture(scope="module")
def reload_stack(
    redis_server: RedisServer, sim: Sim, log_dir: Path, configmap: ConfigMapDir
) -> Iterator[tuple[Proc, str, Proc, StackEnv]]:
    env = StackEnv(
        redis_server.url,
        sim.url,
        log_dir,
        extra={
            "AGENT_CONFIG_FILE": str(configmap.file),
            "AGENT_CONFIG_RELOAD_INTERVAL_SECONDS": "0.2",
        },
    )
    api, url = env.start_api()
    worker = env.start_worker()
    yield api, url, worker, env
    api.stop()
    worker.stop()


def _models(client: httpx.Client) -> tuple[str, list[str], int]:
    body = client.get("/v1/models").json()
    models = [m for m in body["data"] if m["kind"] == "model"]
    default = next(m["id"] for m in models if m["default"])
    return default, [m["id"] for m in models], body["config_generation"]


def _wait_default(client: httpx.Client, model: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 15:
        if _models(client)[0] == model:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"default model still {_models(client)[0]!r}, not {model!r}")


def _reloads(metrics_url: str, result: str) -> float:
    text = httpx.get(metrics_url, timeout=5).text
    match = re.search(rf'^agent_config_reloads_total{{result="{result}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_edit_reaches_api_and_worker_without_restart(
    reload_stack: tuple[Proc, str, Proc, StackEnv], configmap: ConfigMapDir, sim: Sim, slow_sim: Sim
) -> None:
    api, url, worker, _ = reload_stack
    api_pid, worker_pid = api.pid, worker.pid
    with httpx.Client(base_url=url, timeout=30) as client:
        assert _models(client) == ("sim", ["sim", "slow"], 1)
        # A run in flight when the config changes finishes with the config it started with.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(
                client.post, "/v1/chat", json={"message": "hello there", "model": "slow"}
            )
            time.sleep(0.5)
            configmap.publish(
                _config_text("fresh", {"fresh": sim.url, "sim": sim.url, "slow": slow_sim.url})
            )
            took = _wait_default(client, "fresh")
            old = in_flight.result(timeout=30)
        assert took < RELOAD_WITHIN_SECONDS, f"reload took {took:.2f} s"
        assert old.status_code == 200, old.text
        assert old.json()["config_generation"] == 1
        assert _models(client) == ("fresh", ["fresh", "sim", "slow"], 2)
        ready = client.get("/readyz").json()
        assert ready["config"]["generation"] == 2 and ready["config"]["default_model"] == "fresh"

        # The worker reloaded too: a queued task with no model uses the new default.
        deadline = time.monotonic() + RELOAD_WITHIN_SECONDS
        while True:
            task = client.post("/v1/tasks", json={"message": "what is 6*7?"}).json()
            record = wait_task(client, task["task_id"], {"succeeded", "failed"})
            assert record["status"] == "succeeded", record
            if record["result"]["model"] == "fresh" or time.monotonic() > deadline:
                break
        assert record["result"]["model"] == "fresh", record
        assert record["result"]["config_generation"] == 2
        assert "42" in record["result"]["answer"]
    assert (api.pid, worker.pid) == (api_pid, worker_pid) and api.alive() and worker.alive()
    assert "config reload: applied generation 2" in api.log()
    assert "config reload: applied generation 2" in worker.log()


def test_invalid_edit_is_rejected_and_the_last_good_config_keeps_serving(
    reload_stack: tuple[Proc, str, Proc, StackEnv], configmap: ConfigMapDir, sim: Sim
) -> None:
    api, url, worker, _ = reload_stack
    with httpx.Client(base_url=url, timeout=30) as client:
        before = _models(client)
        hash_before = client.get("/readyz").json()["config"]["hash"]
        api_metrics = f"{url}/metrics"
        rejected = _reloads(api_metrics, "rejected")
        configmap.publish(_config_text("ghost", {"sim": sim.url}))  # unknown default model
        deadline = time.monotonic() + RELOAD_WITHIN_SECONDS
        while _reloads(api_metrics, "rejected") == rejected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _reloads(api_metrics, "rejected") == rejected + 1
        assert _models(client) == before
        ready = client.get("/readyz")
        assert ready.status_code == 200, "a rejected edit does not make the pod unready"
        assert ready.json()["config"]["hash"] == hash_before
        task = client.post("/v1/tasks", json={"message": "what is 2+3?"}).json()
        record = wait_task(client, task["task_id"], {"succeeded", "failed"})
        assert record["status"] == "succeeded" and record["result"]["model"] == before[0]
    for proc in (api, worker):
        # Each process checks on its own clock: the worker may notice after the API did.
        wait_for_log(proc, "rejected, keeping", RELOAD_WITHIN_SECONDS)
        line = next(li for li in proc.log().splitlines() if "rejected, keeping" in li)
        assert "defaultModel: 'ghost' is not a configured model" in line, line


def test_generation_declared_by_the_controller_is_reported(
    reload_stack: tuple[Proc, str, Proc, StackEnv], configmap: ConfigMapDir, sim: Sim
) -> None:
    _, url, _, _ = reload_stack
    with httpx.Client(base_url=url, timeout=30) as client:
        configmap.publish(_config_text("gen7", {"gen7": sim.url}, generation=7))
        _wait_default(client, "gen7")
        assert _models(client)[2] == 7
        metrics = client.get("/metrics").text
        info = re.findall(
            r'^agent_config_info{generation="(\d+)",hash="(\w+)"} (\S+)$', metrics, re.M
        )
        current = {gen for gen, _, value in info if float(value) == 1}
        assert current == {"7"}, info
        assert client.post("/v1/chat", json={"message": "hi"}).json()["config_generation"] == 7


def test_unchanged_content_touch_is_not_a_reload(
    reload_stack: tuple[Proc, str, Proc, StackEnv], configmap: ConfigMapDir
) -> None:
    api, url, _, _ = reload_stack
    applied = _reloads(f"{url}/metrics", "applied")
    text = configmap.file.read_text(encoding="utf-8")
    configmap.publish(text)  # same bytes, new directory (the kubelet resyncs like this)
    os.utime(configmap.file, follow_symlinks=True)
    time.sleep(1.0)
    assert _reloads(f"{url}/metrics", "applied") == applied
    assert api.alive()
