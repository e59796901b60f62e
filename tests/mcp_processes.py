"""MCP servers as real processes for tests: the demo server and the test server.

Each runs on a free loopback port that it keeps across a kill and a restart, so a client can
be shown the same server going away and coming back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.procs import PYTHON, Proc, base_env, cli, free_port, wait_http


class McpProcess:
    """A real MCP server process on a fixed port: it can be killed and started again."""

    def __init__(self, args: Callable[[int], list[str]], ready_path: str, log_dir: Path) -> None:
        self.port = free_port()
        self._args = args
        self._ready = ready_path
        self._log_dir = log_dir
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> McpProcess:
        self.proc = Proc(f"mcp-{self.port}", self._args(self.port), base_env(), self._log_dir)
        wait_http(f"http://127.0.0.1:{self.port}{self._ready}", self.proc, timeout=30)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill_group()
        self.proc.stop()  # closes its log

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def calls(self) -> list[dict[str, Any]]:
        """The test server's record of the tool calls it ran."""
        calls: list[dict[str, Any]] = httpx.get(f"http://127.0.0.1:{self.port}/calls").json()
        return calls


def demo_process(log_dir: Path) -> McpProcess:
    return McpProcess(lambda port: cli("mcp-demo", "--port", str(port)), "/healthz", log_dir)


def counting_process(log_dir: Path) -> McpProcess:
    return McpProcess(lambda port: [PYTHON, "-m", "tests.mcp_server", str(port)], "/calls", log_dir)


def started(process: McpProcess) -> Iterator[McpProcess]:
    """Run ``process`` for a fixture: ``yield from started(demo_process(log_dir))``."""
    process.start()
    try:
        yield process
    finally:
        process.stop()
