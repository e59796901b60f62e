"""Shared fixtures: a real redis-server on a free port, the LLM simulator as a real process, a
private PostgreSQL server.

Tests never read the developer's environment: AGENT_*, OTEL_* and provider variables are cleared
for the test process, and child processes get ``procs.base_env()``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, start_postgres
from tests.procs import Proc, base_env, cli, free_port, redis_args, wait_http, wait_redis

for _key in list(os.environ):
    # AGENT_TEST_* are the test suite's own inputs (set by .ci/run), not service settings.
    if _key.startswith(("AGENT_", "OTEL_", "OPENAI_", "ANTHROPIC_")) and not _key.startswith(
        "AGENT_TEST_"
    ):
        del os.environ[_key]
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


class RedisServer:
    def __init__(self, proc: Proc, port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"


def start_redis(
    log_dir: Path, data_dir: Path, port: int | None = None, aof: bool = False
) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (the test command installs it: make test)")
    port = port or free_port()
    args = redis_args(binary, port, data_dir, aof)
    proc = Proc(f"redis-{port}", args, base_env(), log_dir)
    wait_redis(port, proc)
    return RedisServer(proc, port)


@pytest.fixture(scope="session")
def redis_server(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(log_dir, tmp_path_factory.mktemp("redis"))
    yield server
    server.proc.stop()


@pytest.fixture(scope="session")
def postgres_server(log_dir: Path) -> Iterator[PostgresServer]:
    """A private Postgres for the session (Debian's ``postgresql``; the test command installs
    it). Missing, the tests needing it skip, except under CI=true, where they fail."""
    server = start_postgres(log_dir)
    if server is None:
        message = "Postgres is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield server
    server.remove()


class Sim:
    def __init__(self, proc: Proc, port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"


SimFactory = Callable[..., Sim]


@pytest.fixture(scope="session")
def sim_factory(log_dir: Path) -> Iterator[SimFactory]:
    """Start simulators with given flags, e.g. ``sim_factory("--ttft", "1.0")``."""
    started: list[Proc] = []

    def start(*flags: str) -> Sim:
        port = free_port()
        proc = Proc(f"sim-{port}", cli("sim-llm", "--port", str(port), *flags), base_env(), log_dir)
        started.append(proc)
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=30)  # open with --api-key
        return Sim(proc, port)

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def sim(sim_factory: SimFactory) -> Sim:
    """A fast simulator (5 ms to first token) shared by the session."""
    return sim_factory("--ttft", "0.005")
