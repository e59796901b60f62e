"""Integration fixtures: a real API process and a real worker process on the session's Redis,
and for the store tests an asyncio client of that Redis with keys of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent_service.api.auth import generate_key
from agent_service.settings import RedisSettings
from agent_service.store.client import Redis, create_redis
from agent_service.store.keys import Keys
from tests.conftest import RedisServer, Sim, SimFactory
from tests.integration.stack import StackEnv, secured_env, write_config
from tests.procs import Proc

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """The service's own asyncio Redis client on the session's redis-server."""
    client = create_redis(RedisSettings(url=redis_server.url))
    yield client
    await client.aclose()
    await client.connection_pool.disconnect()  # a pool passed in is not closed by aclose


@pytest.fixture
def keys() -> Keys:
    """Keys under a prefix of their own: a test sees only what it wrote."""
    return Keys(f"t-{uuid.uuid4().hex[:8]}:")


@pytest.fixture(scope="module")
def slow_sim(sim_factory: SimFactory) -> Sim:
    """A simulator taking 2 s to answer, for runs that must still be in flight."""
    return sim_factory("--ttft", "2.0")


@pytest.fixture(scope="module")
def broken_sim(sim_factory: SimFactory) -> Sim:
    """A simulator answering 500 to every call."""
    return sim_factory("--fail-500", "1.0")


@pytest.fixture(scope="module")
def stack_env(
    redis_server: RedisServer,
    sim: Sim,
    slow_sim: Sim,
    broken_sim: Sim,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> StackEnv:
    config = write_config(
        tmp_path_factory.mktemp("config") / "agent.yaml",
        {"sim": sim.url, "slow": slow_sim.url, "broken": broken_sim.url},
        fallbacks={"sim": ["slow"]},
    )
    return StackEnv(redis_server.url, sim.url, log_dir, extra={"AGENT_CONFIG_FILE": str(config)})


@pytest.fixture(scope="module")
def api(stack_env: StackEnv) -> Iterator[tuple[Proc, str]]:
    proc, url = stack_env.start_api()
    yield proc, url
    proc.stop()


@pytest.fixture(scope="module")
def worker(stack_env: StackEnv) -> Iterator[Proc]:
    proc = stack_env.start_worker()
    yield proc
    proc.stop()


@pytest.fixture
def client(api: tuple[Proc, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api[1], timeout=30) as http:
        yield http


@dataclass(frozen=True)
class OpenAIStack:
    """An API and a worker with authentication on, for the OpenAI client tests: ``key`` acts
    for tenant ``clients``, ``other_key`` for tenant ``others``."""

    url: str
    key: str
    other_key: str

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture(scope="session")
def openai_stack(
    redis_server: RedisServer, sim: Sim, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenAIStack]:
    """Shared by the OpenAI client tests (Python SDK, LangChain, npm SDKs, the spec checks)."""
    key, other = generate_key(), generate_key()
    root = tmp_path_factory.mktemp("openai-stack")
    env = secured_env(redis_server.url, sim.url, log_dir, root, {"clients": key, "others": other})
    api, url = env.start_api()
    worker = env.start_worker()
    yield OpenAIStack(url, key, other)
    worker.stop()
    api.stop()
