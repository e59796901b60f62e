"""Docker HEALTHCHECK of the agent-service image: checks whatever command the container runs.

The image runs several commands (``api``, ``worker``, ``sim-llm``, ``mcp-demo``), so this script reads the
command line of PID 1 (``agent-service CMD ...``, or ``docker-init -- agent-service CMD ...``
under ``--init``) and checks that command:

* ``api``: ``GET /healthz`` on 127.0.0.1 at ``--port``, ``AGENT_API_PORT`` or 8000;
* ``sim-llm``: ``GET /v1/models`` on 127.0.0.1 at ``--port`` or 8100;
* ``mcp-demo``: ``GET /healthz`` on 127.0.0.1 at ``--port`` or 8200;
* ``worker``: the heartbeat file (``AGENT_WORKER_HEARTBEAT_FILE``) is younger than 60 s;
* anything else (``config validate``, ``--help``): healthy.

Arguments override that guess: ``python /app/healthcheck.py worker`` checks a worker whatever PID 1
is (a Kubernetes exec probe in a pod with ``shareProcessNamespace``, where PID 1 is ``pause``).

Exit status 0 is healthy, 1 unhealthy (Docker's contract). Kubernetes does not run it: the
chart declares its own probes. Standard library only; runs as the image's user.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

COMMANDS = ("api", "worker", "sim-llm", "mcp-demo")
HEARTBEAT_MAX_AGE_SECONDS = 60.0


def _argv() -> list[str]:
    raw = Path("/proc/1/cmdline").read_bytes()
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _http_ok(port: str, path: str) -> bool:
    # No proxy: an HTTP(S)_PROXY in the container's environment must not catch loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{int(port)}{path}", timeout=4) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def _heartbeat_fresh() -> bool:
    path = os.environ.get("AGENT_WORKER_HEARTBEAT_FILE")
    if not path:
        return True  # no heartbeat configured: nothing this check can see
    try:
        age = time.time() - Path(path).stat().st_mtime
    except OSError:
        return False
    return age < HEARTBEAT_MAX_AGE_SECONDS


def healthy(argv: list[str]) -> bool:
    command = next((arg for arg in argv if arg in COMMANDS), None)
    if command == "api":
        port = _option(argv, "--port") or os.environ.get("AGENT_API_PORT") or "8000"
        return _http_ok(port, "/healthz")
    if command == "sim-llm":
        return _http_ok(_option(argv, "--port") or "8100", "/v1/models")
    if command == "mcp-demo":
        return _http_ok(_option(argv, "--port") or "8200", "/healthz")
    if command == "worker":
        return _heartbeat_fresh()
    return True


if __name__ == "__main__":
    sys.exit(0 if healthy(sys.argv[1:] or _argv()) else 1)
