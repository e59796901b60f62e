"""The container image: one image runs the simulator, the API and a worker, locked down.

Builds the image from the working tree (once per session), then runs each command the way the
chart runs pods (non-root 10001, read-only root file system with a tmpfs on /tmp, no
capabilities, no privilege escalation, the client keys file mounted read-only) against a real
Redis on the host, and serves one queued task and one synchronous chat end to end, with a key.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer
from tests.container.conftest import (
    HARDENING,
    REPORT,
    UID,
    Container,
    Containers,
    docker_out,
    wait_http,
)
from tests.procs import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

QUESTION = "what is 12*(3+4)?"
# Where the chart mounts the client keys file (a Secret) into api pods.
KEYS_DIR = "/var/run/secrets/agent-service-auth"
TENANT = "container"


def test_help_lists_every_command(docker: str, image: str) -> None:
    result = subprocess.run(
        [docker, "run", "--rm", *HARDENING, image, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("api", "worker", "sim-llm", "up", "config"):
        assert f"    {command} " in result.stdout, result.stdout
    assert "AGENT_REDIS_URL" in result.stdout


def test_image_config_is_locked_down(docker: str, image: str) -> None:
    config = json.loads(
        docker_out(docker, "image", "inspect", "--format", "{{json .Config}}", image)
    )
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["agent-service"]
    assert config["Cmd"] == ["api"]
    assert {"8000/tcp", "9100/tcp"} <= set(config["ExposedPorts"])
    assert config["Healthcheck"]["Test"][0] == "CMD"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["HOME"] == "/tmp"
    assert env["TMPDIR"] == "/tmp"
    assert env["PATH"].startswith("/app/.venv/bin:")
    assert config["Labels"]["org.opencontainers.image.title"] == "agent-service"
    assert config["Labels"]["org.opencontainers.image.version"] != "0.0.0"
    # No compilers and no build tools in the final stage.
    probe = subprocess.run(
        [docker, "run", "--rm", *HARDENING, "--entrypoint=sh", image, "-c",
         "for c in gcc cc c++ clang make uv; do command -v $c && exit 1; done; exit 0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert probe.returncode == 0, f"found in the image: {probe.stdout}"
    # The application is root's: its user can change nothing of it, even on a writable root.
    writable = docker_out(
        docker, "run", "--rm", f"--user={UID}:{UID}", "--entrypoint=find", image,
        "/app", "(", "-writable", "-o", "-user", str(UID), ")", "-print",
    )  # fmt: skip
    assert writable == "", writable


def _wait_file(container: Container, path: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if container.exec("test", "-f", path).returncode == 0:
            return time.monotonic() - started
        if not container.running():
            raise container.fail(f"exited with {container.state('ExitCode').strip()}")
        time.sleep(0.2)
    raise container.fail(f"{path} did not appear within {timeout} s")


def _wait_task(client: httpx.Client, task_id: str, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    record: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        record = response.json()
        if record["status"] in {"succeeded", "failed", "cancelled"}:
            return record
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} not finished after {timeout} s: {record}")


def _wait_healthy(container: Container, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = container.state("Health.Status").strip()
        if status == "healthy":
            return
        time.sleep(0.5)
    raise container.fail(f"Docker health status is {status!r}, not healthy, after {timeout} s")


def _assert_locked_down(docker: str, container: Container) -> None:
    uid = container.exec("id", "-u")
    assert uid.stdout.strip() == str(UID), uid.stdout + uid.stderr
    # Docker needs the pid column to map the host's processes to the container.
    top = docker_out(docker, "top", container.name, "-eo", "pid,uid,args").splitlines()
    assert len(top) > 1, top
    assert all(line.split()[1] == str(UID) for line in top[1:]), top
    # Root file system read-only, including the application's own directory; /tmp writable.
    for path in ("/x", "/app/x", "/app/.venv/x"):
        write = container.exec("sh", "-c", f"touch {path}")
        assert write.returncode != 0, f"{container.name} could write {path}"
        assert "Read-only file system" in write.stderr, write.stderr
    assert container.exec("sh", "-c", "touch /tmp/x && rm /tmp/x").returncode == 0
    # No capabilities at all (effective set of PID 1, the service itself).
    status = container.exec("cat", "/proc/1/status").stdout
    assert "CapEff:\t0000000000000000" in status, status


def _keys_dir(tmp_path: Path) -> tuple[Path, str]:
    """A keys file with one generated key of tenant ``container``, by its hash, as a user
    writes it (docs/api.md); the directory and the key. Readable by the container's user."""
    key = "ak_" + secrets.token_urlsafe(32)
    directory = tmp_path / "auth"
    directory.mkdir()
    digest = hashlib.sha256(key.encode()).hexdigest()
    keys = directory / "keys.yaml"
    keys.write_text(
        f"keys:\n  - {{tenant: {TENANT}, sha256: {digest}, name: container-test}}\n",
        encoding="utf-8",
    )
    keys.chmod(0o444)
    directory.chmod(0o755)
    return directory, key


def test_api_worker_and_simulator_containers_serve_runs(
    docker: str, containers: Containers, redis_server: RedisServer, tmp_path: Path
) -> None:
    sim_port, api_port, api_metrics_port, worker_metrics_port = (free_port() for _ in range(4))
    keys_dir, key = _keys_dir(tmp_path)
    queue = f"container-{secrets.token_hex(4)}"
    env = {
        "AGENT_REDIS_URL": redis_server.url,
        "AGENT_SIM_URL": f"http://127.0.0.1:{sim_port}/v1",
        "AGENT_API_HOST": "127.0.0.1",
        "AGENT_API_PORT": str(api_port),
        "AGENT_WORKER_QUEUE": queue,
        "AGENT_METRICS_HOST": "127.0.0.1",
        "AGENT_LOG_LEVEL": "INFO",
    }
    started = time.monotonic()
    sim = containers.run(
        "sim", ["sim-llm", "--port", str(sim_port), "--host", "127.0.0.1", "--ttft", "0.005"]
    )
    # Two API processes: gunicorn and prometheus' multiprocess files must live under /tmp too.
    # Authentication is on by default: the api reads its keys from the mounted file.
    api = containers.run(
        "api",
        ["api"],
        env
        | {
            "AGENT_API_WORKERS": "2",
            "AGENT_METRICS_PORT": str(api_metrics_port),
            "AGENT_AUTH_KEYS_FILE": f"{KEYS_DIR}/keys.yaml",
        },
        mounts={keys_dir: KEYS_DIR},
    )
    worker = containers.run(
        "worker",
        ["worker"],
        env | {"AGENT_WORKER_CONCURRENCY": "8", "AGENT_METRICS_PORT": str(worker_metrics_port)},
    )
    wait_http(f"http://127.0.0.1:{sim_port}/v1/models", sim, timeout=60)
    wait_http(f"http://127.0.0.1:{api_port}/readyz", api, timeout=120)
    _wait_file(worker, "/tmp/worker-ready", timeout=120)
    REPORT.append(f"sim, api (2 processes) and worker ready in {time.monotonic() - started:.1f} s")

    base_url = f"http://127.0.0.1:{api_port}"
    with httpx.Client(base_url=base_url, timeout=30, trust_env=False) as anonymous:
        refused = anonymous.post("/v1/chat", json={"message": QUESTION})
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = anonymous.post(
            "/v1/chat", json={"message": QUESTION}, headers={"X-API-Key": key + "x"}
        )
        assert wrong.status_code == 401, wrong.text
        # The console's static files are in the image, served without a key.
        console = anonymous.get("/ui/")
        assert console.status_code == 200, console.text
        assert "default-src 'self'" in console.headers["content-security-policy"]
        module = re.search(r'src="(assets/[0-9a-f]+/app\.js)"', console.text)
        assert module, console.text
        assert anonymous.get(f"/ui/{module.group(1)}").status_code == 200
    with httpx.Client(
        base_url=base_url,
        timeout=30,
        trust_env=False,
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        run_started = time.monotonic()
        sync = client.post("/v1/chat", json={"message": QUESTION})
        assert sync.status_code == 200, sync.text
        assert "84" in sync.json()["answer"], sync.json()
        submitted = client.post("/v1/tasks", json={"message": QUESTION})
        assert submitted.status_code == 202, submitted.text
        record = _wait_task(client, submitted.json()["task_id"], timeout=60)
        assert record["status"] == "succeeded", record
        assert record["tenant"] == TENANT, record
        result = record["result"]
        assert isinstance(result, dict)
        assert "84" in result["answer"], record
        REPORT.append(
            f"one sync chat and one queued task in {time.monotonic() - run_started:.1f} s"
        )

    with httpx.Client(timeout=10, trust_env=False) as client:
        api_metrics = client.get(f"http://127.0.0.1:{api_metrics_port}/metrics").text
        worker_metrics = client.get(f"http://127.0.0.1:{worker_metrics_port}/metrics").text
    assert "agent_http_requests_total" in api_metrics, api_metrics[:2000]
    assert f'queue="{queue}"' in worker_metrics, worker_metrics[:2000]

    # The keys file is on a read-only mount, like the chart's Secret volume.
    statvfs = f"import os; print(os.statvfs({KEYS_DIR!r}).f_flag & os.ST_RDONLY)"
    read_only = api.exec("python", "-c", statvfs)
    assert read_only.stdout.strip() == "1", read_only.stdout + read_only.stderr
    for container in (sim, api, worker):
        _assert_locked_down(docker, container)
        _wait_healthy(container, timeout=60)
        health = container.exec("python", "/app/healthcheck.py")
        assert health.returncode == 0, health.stdout + health.stderr
    # ...and it does notice a dead endpoint or a stale heartbeat.
    dead_api = api.exec("sh", "-c", "AGENT_API_PORT=1 python /app/healthcheck.py")
    assert dead_api.returncode == 1, dead_api.stdout + dead_api.stderr
    assert worker.exec("python", "/app/healthcheck.py", "worker").returncode == 0
    no_beat = worker.exec(
        "sh", "-c", "AGENT_WORKER_HEARTBEAT_FILE=/tmp/none python /app/healthcheck.py worker"
    )
    assert no_beat.returncode == 1, no_beat.stdout + no_beat.stderr
    for container in (api, worker):
        written = container.exec("find", "/tmp", "-mindepth", "1", "-maxdepth", "1").stdout.split()
        REPORT.append(f"{container.name.rsplit('-', 1)[1]} wrote under /tmp: {sorted(written)}")

    # PID 1 is the service itself: SIGTERM must stop it cleanly and quickly (no 10 s kill).
    for container in (api, worker, sim):
        stop_started = time.monotonic()
        docker_out(docker, "stop", "--time=30", container.name, timeout=60)
        seconds = time.monotonic() - stop_started
        exit_code = container.state("ExitCode").strip()
        assert exit_code == "0", container.fail(f"exit code {exit_code} after SIGTERM")
        assert seconds < 20, container.fail(f"took {seconds:.1f} s to stop")
