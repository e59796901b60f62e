"""``agent-service submit``: send a task to the API from the command line (scheduled CronJobs).

``POST /v1/tasks`` with the message, then either print the task id or, with ``--wait``, follow
the task and print its answer (exit 1 if it fails or is cancelled). The API is ``--url``, else
``AGENT_API_URL``, else http://127.0.0.1:8000; the key is ``AGENT_API_KEY``. With
``--idempotency-key`` the submission is retried on connection errors and 502/503/504 (the key
makes a retry safe: the API answers the task the first attempt made). Standard library only: it
imports neither LiteLLM nor an HTTP client, so a CronJob's pod starts in a fraction of a second.

Exit codes: 0 submitted (or succeeded, with ``--wait``); 1 the task failed or was cancelled;
2 the API refused the request (4xx); 3 the API could not be reached or kept failing;
4 ``--timeout`` passed before the task ended.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_service.settings import environment_variable

DEFAULT_URL = "http://127.0.0.1:8000"
RETRIED_STATUSES = frozenset({502, 503, 504})
SUBMIT_ATTEMPTS = 5
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
FAILED, REFUSED, UNREACHABLE, TIMED_OUT = 1, 2, 3, 4


class SubmitError(Exception):
    """The request could not be made or was refused; ``code`` is the exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("message", help="the user's message ('-': read it from stdin)")
    parser.add_argument("--agent", help="a configured agent (default: the config's default)")
    parser.add_argument("--session", help="session id (memory, and the agent's multitask)")
    parser.add_argument(
        "--idempotency-key",
        help="Idempotency-Key header: the same key submits once (the API answers the same task)",
    )
    parser.add_argument("--wait", action="store_true", help="follow the task; print its answer")
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --wait: give up (exit 4) after this long; 0 (default): wait for the end",
    )
    parser.add_argument("--url", help=f"API base URL (AGENT_API_URL; default {DEFAULT_URL})")


@dataclass(frozen=True)
class Client:
    """The API as ``submit`` calls it."""

    url: str
    key: str | None
    timeout: float = 30.0

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, **headers: str
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of one request; ``SubmitError`` when nothing answers."""
        data = json.dumps(body).encode() if body is not None else None
        sent = {"accept": "application/json", **headers}
        if data is not None:
            sent["content-type"] = "application/json"
        if self.key:
            sent["authorization"] = f"Bearer {self.key}"
        # The URL is checked to be http(s) by run_submit: never file: or another scheme.
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=data, method=method, headers=sent
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SubmitError(UNREACHABLE, f"cannot reach {self.url}: {reason}") from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_text(status: int, body: dict[str, Any]) -> str:
    error = body.get("error") if isinstance(body.get("error"), dict) else None
    if error:
        return f"HTTP {status} {error.get('type')}: {error.get('message')}"
    return f"HTTP {status}"


def submit(
    client: Client, body: dict[str, Any], key: str | None, sleep: Callable[[float], None]
) -> str:
    """The id of the task ``body`` made (or the one ``key`` already names)."""
    headers = {"Idempotency-Key": key} if key else {}
    attempts = SUBMIT_ATTEMPTS if key else 1  # without a key a retry could submit twice
    for attempt in range(attempts):
        try:
            status, answer = client.request("POST", "/v1/tasks", body, **headers)
        except SubmitError:
            if attempt + 1 == attempts:
                raise
            sleep(min(8.0, 0.5 * 2**attempt))
            continue
        if status in (200, 202):
            return str(answer["task_id"])
        if status in RETRIED_STATUSES and attempt + 1 < attempts:
            sleep(min(8.0, 0.5 * 2**attempt))
            continue
        code = REFUSED if 400 <= status < 500 else UNREACHABLE
        raise SubmitError(code, _error_text(status, answer))
    raise AssertionError("unreachable")


def follow(
    client: Client,
    task_id: str,
    timeout: float,
    sleep: Callable[[float], None],
    note: Callable[[str], None],
) -> dict[str, Any]:
    """Poll the task until it ends (its record); ``SubmitError`` on timeout."""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    interval, announced = 0.25, ""
    while True:
        status, record = client.request("GET", f"/v1/tasks/{task_id}")
        if status != 200:
            code = REFUSED if 400 <= status < 500 else UNREACHABLE
            if code == UNREACHABLE:  # a restarting API: keep following
                record = {}
            else:
                raise SubmitError(code, _error_text(status, record))
        state = record.get("status", "")
        if state in TERMINAL:
            return record
        if state == "awaiting_approval" and announced != record.get("approval_id"):
            announced = str(record.get("approval_id"))
            note(
                f"task {task_id} waits for approval {announced} "
                f"(POST /v1/tasks/{task_id}/approvals/{announced})"
            )
        if deadline is not None and time.monotonic() > deadline:
            raise SubmitError(TIMED_OUT, f"task {task_id} still {state} after {timeout:g} s")
        sleep(interval)
        interval = min(2.0, interval * 1.5)


def run_submit(args: argparse.Namespace) -> int:
    """The ``submit`` command; returns its exit code."""
    message = sys.stdin.read() if args.message == "-" else args.message
    url = (args.url or environment_variable("AGENT_API_URL") or DEFAULT_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        print(f"agent-service submit: the API URL must be http(s): {url!r}", file=sys.stderr)
        return REFUSED
    client = Client(url, environment_variable("AGENT_API_KEY") or None)
    body: dict[str, Any] = {"message": message}
    if args.agent:
        body["agent"] = args.agent
    if args.session:
        body["session_id"] = args.session

    def note(text: str) -> None:
        print(f"agent-service submit: {text}", file=sys.stderr, flush=True)

    try:
        task_id = submit(client, body, args.idempotency_key, time.sleep)
        if not args.wait:
            print(task_id, flush=True)
            return 0
        note(f"task {task_id} submitted")
        record = follow(client, task_id, args.timeout, time.sleep, note)
    except SubmitError as exc:
        note(str(exc))
        return exc.code
    if record["status"] == "succeeded":
        print((record.get("result") or {}).get("answer", ""), flush=True)
        return 0
    error = record.get("error") or {}
    note(f"task {task_id} {record['status']}: {error.get('type')}: {error.get('message')}")
    return FAILED
