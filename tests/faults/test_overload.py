"""The API under overload: bounded work in hand, 503 + ``Retry-After`` at once, then recovery.

Documented behaviour (``AGENT_API_MAX_IN_FLIGHT``): one API process serves at most that many
requests at once (probes and ``/metrics`` excepted); above it, it answers 503 with
``Retry-After`` at once instead of queueing. A burst of slow sync runs, several times the limit,
must therefore get a few answers and many quick refusals, never a client timeout, while
``/healthz`` keeps answering; once the burst is over, runs are served again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer, SimFactory
from tests.integration.stack import StackEnv, model, write_agent_config
from tests.procs import Proc

pytestmark = pytest.mark.faults

LIMIT = 4
BURST = 6 * LIMIT
RUN_SECONDS = 3.0  # the simulator's latency: a served run holds its slot this long


@dataclass
class Answer:
    status: int | None
    seconds: float
    retry_after: str | None = None
    error: str | None = None


@pytest.fixture(scope="module")
def api(
    redis_server: RedisServer,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Proc, str]]:
    sim = sim_factory("--ttft", str(RUN_SECONDS))
    config = write_agent_config(
        tmp_path_factory.mktemp("faults-overload") / "agent.yaml", [model("sim", sim.url)]
    )
    env = StackEnv(
        redis_server.url,
        sim.url,
        log_dir,
        extra={"AGENT_CONFIG_FILE": str(config), "AGENT_API_MAX_IN_FLIGHT": str(LIMIT)},
    )
    proc, url = env.start_api()
    yield proc, url
    proc.stop()


def _chat(client: httpx.Client, i: int) -> Answer:
    started = time.monotonic()
    try:
        resp = client.post("/v1/chat", json={"message": f"hello number {i}"})
    except httpx.HTTPError as exc:
        return Answer(None, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
    return Answer(resp.status_code, time.monotonic() - started, resp.headers.get("retry-after"))


def test_burst_above_the_limit_is_refused_fast_and_the_api_recovers(
    api: tuple[Proc, str],
) -> None:
    proc, url = api
    # The client timeout stands for a caller's patience: an overloaded API must answer first.
    with httpx.Client(base_url=url, timeout=4 * RUN_SECONDS) as client:
        with ThreadPoolExecutor(max_workers=BURST + 1) as pool:
            burst = [pool.submit(_chat, client, i) for i in range(BURST)]
            time.sleep(RUN_SECONDS / 3)  # the burst is in: the limit is reached
            probe = client.get("/healthz")
            answers = [f.result() for f in burst]
        assert probe.status_code == 200, "a probe was refused or queued behind the burst"

        no_answer = [a for a in answers if a.status is None]
        assert not no_answer, f"requests without an answer (timeouts): {no_answer[:3]}"
        unexpected = [a for a in answers if a.status not in (200, 429, 503)]
        assert not unexpected, f"neither served nor refused: {unexpected[:3]}"
        served = [a for a in answers if a.status == 200]
        refused = [a for a in answers if a.status in (429, 503)]
        assert refused, f"all {len(served)} requests of the burst were admitted: no limit"
        # Bounded: the burst arrived within a fraction of a run, so at most LIMIT were admitted.
        assert 1 <= len(served) <= LIMIT, len(served)
        assert all(a.retry_after for a in refused), "a refusal without Retry-After"
        # Refused at once, not after waiting for a slot: well before a served run could end.
        assert max(a.seconds for a in refused) < RUN_SECONDS, sorted(a.seconds for a in refused)

        after = _chat(client, BURST)
        assert after.status == 200, after
    assert proc.alive()
