"""A real API and worker with history on, for the service tests: keys of several tenants and
an admin key, a model that answers and one that always fails, and helpers that wait for the
archive and read it back."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.integration.stack import StackEnv, write_config
from tests.procs import Proc

ARCHIVED_TTL = 60
"""AGENT_HISTORY_ARCHIVED_RECORD_TTL_SECONDS of the test stacks (its minimum)."""
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
ADMIN_TENANT = "ops"


def keys_file(path: Path) -> dict[str, str]:
    """A keys file with one key per tenant of ``TENANTS`` and an admin key (tenant ``ops``);
    returns tenant -> key (``admin`` for the admin key)."""
    keys = {tenant: f"ak_test_{tenant}_{'x' * 20}" for tenant in TENANTS}
    keys["admin"] = f"ak_test_admin_{'x' * 20}"
    lines = [f"  - {{tenant: {t}, key: {k}}}" for t, k in keys.items() if t != "admin"]
    lines.append(f"  - {{tenant: {ADMIN_TENANT}, key: {keys['admin']}, role: admin}}")
    path.write_text("keys:\n" + "\n".join(lines) + "\n")
    return keys


def history_stack_env(
    redis_url: str, sims: dict[str, str], pg_url: str, log_dir: Path, root: Path, **extra: str
) -> tuple[StackEnv, dict[str, str]]:
    """A stack env with history on (quick drains), auth on; ``sims`` is model -> simulator."""
    keys = keys_file(root / "keys.yaml")
    config = write_config(root / "agent.yaml", sims)
    env = StackEnv(
        redis_url,
        next(iter(sims.values())),
        log_dir,
        extra={
            "AGENT_CONFIG_FILE": str(config),
            "AGENT_AUTH_ENABLED": "true",
            "AGENT_AUTH_KEYS_FILE": str(root / "keys.yaml"),
            "AGENT_HISTORY_URL": pg_url,
            "AGENT_HISTORY_DRAIN_INTERVAL_SECONDS": "0.1",
            "AGENT_HISTORY_ARCHIVED_RECORD_TTL_SECONDS": str(ARCHIVED_TTL),
            "AGENT_HISTORY_CONNECT_TIMEOUT_SECONDS": "2",
            **extra,
        },
    )
    return env, keys


@dataclass
class Service:
    """A running API (and usually a worker) with history on."""

    url: str
    pg_url: str
    keys: dict[str, str]
    env: StackEnv
    api_metrics_port: int
    procs: list[Proc] = field(default_factory=list)

    def client(self, tenant: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=30,
            headers={"Authorization": f"Bearer {self.keys[tenant]}"},
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def archived_ids(pg_url: str, ids: Iterable[str]) -> set[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id FROM history_runs WHERE id = ANY(%s)", [list(ids)])
        return {row[0] for row in rows}


def wait_archived(pg_url: str, ids: Iterable[str], timeout: float = 30) -> None:
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    while (found := archived_ids(pg_url, wanted)) != wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not archived after {timeout:g} s: {sorted(wanted - found)}")
        time.sleep(0.1)


def run_chat(client: httpx.Client, **body: Any) -> tuple[str, httpx.Response]:
    """A sync run; its run id (the X-Run-Id header) and the answer."""
    resp = client.post("/v1/chat", json={"message": "what is 12*(3+4)?", **body})
    return resp.headers["x-run-id"], resp


def submit(client: httpx.Client, **body: Any) -> str:
    resp = client.post("/v1/tasks", json={"message": "what is 12*(3+4)?", **body})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])
