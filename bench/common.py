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
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3, state, is index 0)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid``: a ``Proc`` leads its own, so ``sid`` is its pid."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[3]) == sid:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # exited while we looked
    return pids


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU of a process and everything it started (the reaped children too)."""
    total = 0
    for pid in session_pids(sid):
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def session_rss_mb(sid: int) -> float:
    """Resident memory of every live process of session ``sid``, summed (MB)."""
    total = 0.0
    for pid in session_pids(sid):
        try:
            total += rss_mb(pid)
        except OSError:
            continue
    return total


# wrk calls ``done`` once at the end: one line of integers (latencies in microseconds).
_WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-report %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """What one ``wrk`` run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    socket_errors: int
    non_2xx: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk_post(
    url: str,
    body: str,
    headers: Mapping[str, str],
    *,
    seconds: int,
    connections: int,
    script_dir: Path,
) -> WrkResult:
    """POST ``body`` to ``url`` on ``connections`` keep-alive connections for ``seconds``."""
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]"]
    lines += [f'wrk.headers["{name}"] = [==[{value}]==]' for name, value in headers.items()]
    script = script_dir / f"wrk-{free_port()}.lua"
    script.write_text("\n".join(lines) + _WRK_REPORT)
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
         "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    report = next(line for line in out.splitlines() if line.startswith("wrk-report "))
    requests, micros, errors, non_2xx, p50, p95, p99 = map(int, report.split()[1:])
    return WrkResult(requests, micros / 1e6, errors, non_2xx, p50 / 1e3, p95 / 1e3, p99 / 1e3)


class Stack:
    """Processes of one benchmark run (Redis, simulators, API, workers), stopped together."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        ready_url: str,
        *,
        timeout: float = 60.0,
        cwd: Path | None = None,
    ) -> Proc:
        """Start a process of this stack and wait until ``ready_url`` answers 200."""
        proc = Proc(name, args, env, self.work, cwd=cwd)
        self.procs.append(proc)
        wait_http(ready_url, proc, timeout=timeout)
        return proc

    def redis(self) -> str:
        return self.redis_process()[0]

    def redis_process(self) -> tuple[str, Proc]:
        port = free_port()
        binary = shutil.which("redis-server") or "redis-server"
        proc = Proc("redis", redis_args(binary, port, self.work), base_env(), self.work)
        self.procs.append(proc)
        wait_redis(port, proc)
        return f"redis://127.0.0.1:{port}/0", proc

    def sim(self, *flags: str) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1"
        args = cli("sim-llm", "--port", str(port), *flags)
        self.start(f"sim-{port}", args, base_env(), f"{url}/models")
        return url

    def mcp_demo(self) -> str:
        """The demo MCP server (``agent-service mcp-demo``); its Streamable HTTP URL."""
        port = free_port()
        proc = Proc(f"mcp-demo-{port}", cli("mcp-demo", "--port", str(port)), base_env(), self.work)
        self.procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        return f"http://127.0.0.1:{port}/mcp"

    def api(self, env: dict[str, str]) -> str:
        return self.api_process(env)[0]

    def api_process(self, env: dict[str, str]) -> tuple[str, Proc]:
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
        url = f"http://127.0.0.1:{port}"
        proc = self.start(f"api-{port}", cli("api"), full, f"{url}/readyz", timeout=90)
        return url, proc

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
