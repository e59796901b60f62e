"""What the benchmarks share: the machine line, percentiles, and the stack's processes.

Not a test module: benchmarks print figures and ratios and assert nothing. Every script prints
``machine()`` and ``load()`` with its figures (the load average says how noisy they are: the
machine is shared), and measures its baseline in the same run.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

from tests.procs import Proc, base_env, cli, free_port, redis_args, wait_http, wait_redis


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: host, CPU, cores, Python, date (UTC)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{platform.node()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"CPython {platform.python_version()}, {now}"
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)"


def header(title: str) -> None:
    print(f"# {title}")
    print(f"# machine: {machine()}")
    print(f"# at start: {load()}", flush=True)


def footer() -> None:
    print(f"# at end: {load()}", flush=True)


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 < q < 100) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.3f}..{max(values):.3f}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stack:
    """Processes of one benchmark run (Redis, simulators, API, workers), stopped together."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[Proc] = []

    def redis(self) -> str:
        port = free_port()
        binary = shutil.which("redis-server") or "redis-server"
        proc = Proc("redis", redis_args(binary, port, self.work), base_env(), self.work)
        self.procs.append(proc)
        wait_redis(port, proc)
        return f"redis://127.0.0.1:{port}/0"

    def sim(self, *flags: str) -> str:
        port = free_port()
        proc = Proc(
            f"sim-{port}", cli("sim-llm", "--port", str(port), *flags), base_env(), self.work
        )
        self.procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
        return f"http://127.0.0.1:{port}/v1"

    def mcp_demo(self) -> str:
        """The demo MCP server (``agent-service mcp-demo``); its Streamable HTTP URL."""
        port = free_port()
        proc = Proc(f"mcp-demo-{port}", cli("mcp-demo", "--port", str(port)), base_env(), self.work)
        self.procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        return f"http://127.0.0.1:{port}/mcp"

    def api(self, env: dict[str, str]) -> str:
        port = free_port()
        full = base_env(
            {
                "AGENT_LOG_LEVEL": "WARNING",
                "AGENT_API_HOST": "127.0.0.1",
                "AGENT_API_PORT": str(port),
                "AGENT_METRICS_PORT": str(free_port()),
                **env,
            }
        )
        proc = Proc(f"api-{port}", cli("api"), full, self.work)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", proc, timeout=90)
        return url

    def worker(self, env: dict[str, str]) -> Proc:
        ready = self.work / f"ready-{free_port()}"
        full = base_env(
            {
                "AGENT_LOG_LEVEL": "WARNING",
                "AGENT_METRICS_PORT": "0",
                "AGENT_WORKER_READY_FILE": str(ready),
                **env,
            }
        )
        proc = Proc(f"worker-{ready.name}", cli("worker"), full, self.work)
        self.procs.append(proc)
        deadline = time.monotonic() + 90
        while not ready.exists():
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{proc.log()[-3000:]}")
            time.sleep(0.1)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@contextmanager
def stack(prefix: str) -> Iterator[Stack]:
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    running = Stack(work)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(work, ignore_errors=True)
