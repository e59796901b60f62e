"""A webhook receiver for tests: a real HTTP server in the test process, answering each path
with a scripted sequence of status codes (or holding the request open), recording every hit."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Answer = int | Literal["hang"]
HANG_SECONDS = 60.0


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    at: float


class Receiver:
    """``plan(200)`` gives a fresh URL; its n-th request gets the n-th answer (the last one
    repeats). ``"hang"`` holds the request without answering until ``release`` (or 60 s)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, list[Answer]] = {}
        self._hits: dict[str, list[Hit]] = {}
        self._changed = threading.Condition(self._lock)
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hit = Hit(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                )
                answer = receiver._record(hit)
                if answer == "hang":
                    receiver.released.wait(HANG_SECONDS)
                    answer = 200
                try:
                    self.send_response(answer)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the worker that sent it is gone

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def plan(self, *answers: Answer) -> str:
        path = f"/hook/{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._plans[path] = list(answers)
            self._hits[path] = []
        return f"http://127.0.0.1:{self.port}{path}"

    def _record(self, hit: Hit) -> Answer:
        with self._changed:
            hits = self._hits.setdefault(hit.path, [])
            hits.append(hit)
            self._changed.notify_all()
            plan = self._plans.get(hit.path) or [404]
            return plan[min(len(hits), len(plan)) - 1]

    def hits(self, url: str) -> list[Hit]:
        path = url.split(str(self.port), 1)[1]
        with self._lock:
            return list(self._hits.get(path, []))

    def wait_hits(self, url: str, count: int, timeout: float = 30.0) -> list[Hit]:
        path = url.split(str(self.port), 1)[1]
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._hits.get(path, [])) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = len(self._hits.get(path, []))
                    raise TimeoutError(f"{path}: {got} of {count} deliveries in {timeout} s")
                self._changed.wait(left)
            return list(self._hits[path])

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
