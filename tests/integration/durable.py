"""What the durable-run tests share: the side-effecting tool service as a real process, agent
configs with gated tools, the simulator's per-conversation counts, Redis reads of a journal."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from agent_service.sim.conversations import conversation_id
from tests.procs import PYTHON, Proc, base_env, free_port, wait_http

REFUND_PARAMETERS = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number"},
        "seconds": {"type": "number"},
    },
    "required": ["order_id", "amount"],
}


class ToolService:
    """``tests.tool_service`` on a free port: refunds, with every call recorded."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.proc = Proc(
            f"tools-{self.port}", [PYTHON, "-m", "tests.tool_service", str(self.port)],
            base_env(), log_dir,
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{self.port}/calls", self.proc, timeout=30)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def calls(self, order_id: str | None = None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = httpx.get(self.url("/calls"), timeout=10).json()
        if order_id is None:
            return calls
        return [c for c in calls if c["arguments"].get("order_id") == order_id]

    def stop(self) -> None:
        self.proc.stop()


def started_tool_service(log_dir: Path) -> Iterator[ToolService]:
    service = ToolService(log_dir)
    try:
        yield service
    finally:
        service.stop()


def refund_tool(
    service: ToolService, name: str = "refund", path: str = "/refund"
) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Issue a refund for an order (a side effect: money leaves).",
        "url": service.url(path),
        "parameters": REFUND_PARAMETERS,
        "timeoutSeconds": 20,
    }


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def sim_model(name: str, url: str, timeout: float = 30.0) -> dict[str, Any]:
    return {
        "name": name,
        "model": "openai/sim-agent",
        "apiBase": url,
        "timeoutSeconds": timeout,
    }


def conversation(sim_url: str, first_user_message: str) -> dict[str, Any]:
    """The simulator's counts for the conversation begun by ``first_user_message``."""
    base = sim_url.removesuffix("/v1")
    answer = httpx.get(f"{base}/admin/conversations", timeout=10).json()
    found: dict[str, Any] = answer["conversations"].get(conversation_id(first_user_message), {})
    return found


def call_message(tool: str, arguments: dict[str, Any]) -> str:
    """A message the simulator answers by calling ``tool`` with ``arguments`` (its rule 2)."""
    return f"call tool {tool} with {json.dumps(arguments)}"


def journal(client: redis.Redis, prefix: str, task_id: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(f"{prefix}task:{task_id}:journal", 0, -1)]


def wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(0.02)
