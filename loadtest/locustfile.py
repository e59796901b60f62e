"""Locust load test of agent-service: sync chats and queued tasks (followed by SSE or polling).

Run it through ``make loadtest`` (``scripts/loadtest.sh``), which starts the local stack on the
simulator and runs Locust headless; or by hand against any deployment:

    uv run locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8000 \\
        -u 50 -r 10 -t 2m --api-key "$AGENT_API_KEY" --csv out/run --html out/run.html

Each user repeats one scenario, picked at random with the weights ``--sync-weight``,
``--sse-weight`` and ``--poll-weight``:

* sync: ``POST /v1/chat`` with a simple question (one or two LLM calls);
* sse: ``POST /v1/tasks``, then ``GET /v1/tasks/{id}/events`` until ``done`` or ``error``;
* poll: ``POST /v1/tasks``, then ``GET /v1/tasks/{id}`` every ``--poll-interval`` until terminal.

A queued task's whole life (submit to terminal) is reported as ``task (sse)`` / ``task (poll)``.
While the test runs, a sampler reads the service's own ``/metrics`` every second (queue depth,
runs in progress, tasks submitted and finished) into ``<csv prefix>_service.csv``; at the end a
summary is printed: requests, failures, RPS, p50/p90/p99 and the queue wait p95 from the
service's ``agent_task_queue_wait_seconds`` histogram (this run's observations only).
``--shape burst`` replaces the fixed user count by a ramp, a burst and a cool-down (for the
capacity plan: ``bench/capacity.py`` reads the service CSV).
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from locust import HttpUser, LoadTestShape, between, events, task
from locust.env import Environment
from prometheus_client.parser import text_string_to_metric_families

QUESTIONS = (
    "what is 12*(3+4)?",
    "what is 2+2?",
    "what time is it in Europe/Paris?",
    "hello there",
    "say something nice about load tests",
)
TERMINAL = {"succeeded", "failed", "cancelled"}
SCENARIOS = ("sync", "sse", "poll")


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("agent-service")
    group.add_argument("--api-key", default="", env_var="AGENT_API_KEY", help="Bearer API key")
    group.add_argument("--sync-weight", type=float, default=2.0, help="share of sync chats")
    group.add_argument("--sse-weight", type=float, default=1.0, help="share of tasks via SSE")
    group.add_argument("--poll-weight", type=float, default=1.0, help="share of polled tasks")
    group.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls")
    group.add_argument("--task-timeout", type=float, default=120.0, help="give up on a task")
    group.add_argument(
        "--metrics-url", default="", help="the service's /metrics (default: HOST/metrics)"
    )
    group.add_argument(
        "--metrics-token", default="", env_var="AGENT_METRICS_TOKEN", help="bearer for /metrics"
    )
    group.add_argument(
        "--shape",
        choices=["fixed", "burst"],
        default="fixed",
        help="fixed: -u users for -t; burst: ramp, burst to 3x -u, cool down (over -t)",
    )


class AgentUser(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        if options.api_key:
            self.client.headers["Authorization"] = f"Bearer {options.api_key}"
        weights = [options.sync_weight, options.sse_weight, options.poll_weight]
        self._scenario = random.choices(SCENARIOS, weights=weights)[0]

    @task
    def scenario(self) -> None:
        question = random.choice(QUESTIONS)
        if self._scenario == "sync":
            self._post("/v1/chat", question, 200)
            return
        started = time.perf_counter()
        resp = self._post("/v1/tasks", question, 202)
        if resp is None:
            return
        task_id = resp.json()["task_id"]
        status = self._follow(task_id) if self._scenario == "sse" else self._poll(task_id)
        self._report(f"task ({self._scenario})", started, status)

    def _post(self, path: str, message: str, expected: int) -> Any:
        """POST ``message``; the response, or None (and a failed request) unless ``expected``."""
        with self.client.post(
            path, json={"message": message}, name=path, catch_response=True
        ) as resp:
            if resp.status_code != expected:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return None
        return resp

    def _follow(self, task_id: str) -> str | None:
        """Read the task's SSE stream to its terminal event; its status."""
        status = None
        with self.client.get(
            f"/v1/tasks/{task_id}/events",
            name="/v1/tasks/{id}/events",
            stream=True,
            catch_response=True,
            timeout=self.environment.parsed_options.task_timeout,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code}")
                return None
            event = None
            for line in resp.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in ("done", "error"):
                    status = json.loads(line[6:]).get("status", event)
                    break
            if status is None:
                resp.failure("stream ended without a terminal event")
        return status

    def _poll(self, task_id: str) -> str | None:
        options = self.environment.parsed_options
        deadline = time.monotonic() + options.task_timeout
        while time.monotonic() < deadline:
            resp = self.client.get(f"/v1/tasks/{task_id}", name="/v1/tasks/{id}")
            if resp.status_code == 200 and resp.json()["status"] in TERMINAL:
                return str(resp.json()["status"])
            time.sleep(options.poll_interval)
        return None

    def _report(self, name: str, started: float, status: str | None) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        failed = status != "succeeded"
        events.request.fire(
            request_type="TASK",
            name=name,
            response_time=elapsed_ms,
            response_length=0,
            exception=RuntimeError(f"task ended {status}") if failed else None,
            context={},
        )


class BurstShape(LoadTestShape):
    """Ramp to -u users (first 20 %), burst to 3x (20-50 %), back to -u (50-70 %), then a
    tenth of -u (so the backlog drains in view). Only with ``--shape burst``."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        if options is None or options.shape != "burst":
            return None if options is None else self._fixed(options)
        total = options.run_time or 300
        users, rate = options.num_users or 50, options.spawn_rate or 10
        t = self.get_run_time()
        if t > total:
            return None
        if t < 0.2 * total:
            return users, rate
        if t < 0.5 * total:
            return 3 * users, 3 * rate
        if t < 0.7 * total:
            return users, 3 * rate
        return max(1, users // 10), 3 * rate

    def _fixed(self, options: Any) -> tuple[int, float] | None:
        if options.run_time and self.get_run_time() > options.run_time:
            return None
        return options.num_users or 1, options.spawn_rate or 1


# --- the service's own metrics ---------------------------------------------------------------

SAMPLED = (
    "agent_queue_depth",
    "agent_worker_tasks_in_progress",
    "agent_tasks_submitted_total",
    "agent_tasks_finished_total",
)


def _scrape(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as resp:
        text = resp.read().decode()
    values: dict[str, Any] = dict.fromkeys(SAMPLED, 0.0)
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in values:
                values[sample.name] += sample.value
            elif sample.name == "agent_task_queue_wait_seconds_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    values["queue_wait_buckets"] = buckets
    return values


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """``histogram_quantile`` over cumulative buckets (linear inside a bucket)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


class Sampler:
    """Reads /metrics every second into ``<prefix>_service.csv`` while the test runs."""

    def __init__(self, environment: Environment) -> None:
        options = environment.parsed_options
        self.url = options.metrics_url or f"{environment.host.rstrip('/')}/metrics"
        self.token = options.metrics_token
        prefix = options.csv_prefix or ""
        self.path = f"{prefix}_service.csv" if prefix else ""
        self.first: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with self._open() as out:
            writer = csv.writer(out) if out else None
            if writer:
                writer.writerow(["t", "queue_depth", "in_progress", "submitted", "finished"])
            started = time.monotonic()
            while not self._stop.is_set():
                try:
                    values = _scrape(self.url, self.token)
                except OSError as exc:
                    self.error = str(exc)
                else:
                    self.first = self.first or values
                    self.last = values
                    if writer:
                        writer.writerow([round(time.monotonic() - started, 2),
                                         *(values[name] for name in SAMPLED)])  # fmt: skip
                        out.flush()  # type: ignore[union-attr]
                self._stop.wait(1.0)

    @contextlib.contextmanager
    def _open(self) -> Iterator[Any]:
        if not self.path:
            yield None
            return
        with open(self.path, "w", newline="") as out:
            yield out

    def queue_wait_p95(self) -> float | None:
        if not self.first or not self.last:
            return None
        before, after = self.first["queue_wait_buckets"], self.last["queue_wait_buckets"]
        delta = {b: after.get(b, 0.0) - before.get(b, 0.0) for b in after}
        return quantile(0.95, delta)


_sampler: Sampler | None = None


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    global _sampler  # noqa: PLW0603  # one sampler per Locust process
    _sampler = Sampler(environment)
    _sampler.start()


@events.quitting.add_listener
def _summary(environment: Environment, **_: Any) -> None:
    if _sampler is not None:
        _sampler.stop()
    total = environment.stats.total
    print("\n=== agent-service load test summary ===")
    print(f"requests {total.num_requests}, failures {total.num_failures} "
          f"({100 * total.fail_ratio:.2f} %), {total.total_rps:.1f} req/s")  # fmt: skip
    for entry in sorted(environment.stats.entries.values(), key=lambda e: e.name):
        print(
            f"  {entry.method:5s} {entry.name:28s} n={entry.num_requests:<7d} "
            f"fail={entry.num_failures:<5d} p50={entry.get_response_time_percentile(0.5):.0f} ms "
            f"p90={entry.get_response_time_percentile(0.9):.0f} ms "
            f"p99={entry.get_response_time_percentile(0.99):.0f} ms"
        )
    print(
        f"all: p50={total.get_response_time_percentile(0.5):.0f} ms "
        f"p90={total.get_response_time_percentile(0.9):.0f} ms "
        f"p99={total.get_response_time_percentile(0.99):.0f} ms"
    )
    wait = _sampler.queue_wait_p95() if _sampler else None
    if wait is None:
        reason = _sampler.error if _sampler and _sampler.error else "no queued task observed"
        print(f"queue wait p95 (service metrics): n/a ({reason})")
    else:
        print(f"queue wait p95 (service metrics, agent_task_queue_wait_seconds): {wait:.3f} s")
    if _sampler and _sampler.path:
        print(f"service timeline: {_sampler.path}")
