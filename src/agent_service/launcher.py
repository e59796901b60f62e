"""``agent-service up``: the whole local stack in the foreground.

Starts redis-server (unless ``AGENT_REDIS_URL`` is given), a private PostgreSQL for the run
history (unless ``AGENT_HISTORY_URL`` is given; without Postgres installed the stack runs with
history off), the LLM simulator, the demo MCP server and the local agent config
(``localconfig``: agents ``assistant``, ``orders`` and ``refunds``; unless ``AGENT_CONFIG_FILE``
is given), the API and one worker as child processes; waits for ``/readyz``; prints the URLs,
the agents and an API key it generated for the session (tenant ``local``), unless a keys file
is given or ``AGENT_AUTH_ENABLED=false``; stops every child, in reverse order, on Ctrl-C,
SIGTERM or when any child dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from agent_service import localmonitoring, localpostgres
from agent_service.api.auth import generate_key
from agent_service.domain.runs import DEFAULT_TENANT
from agent_service.localconfig import DOCS_KB, all_local_agents, local_config_yaml
from agent_service.settings import Settings

LOCAL_TENANT = "local"

STOP_TIMEOUT_SECONDS = 20.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the launcher dies (Linux), so none is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Child:
    def __init__(self, name: str, args: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        # A session of its own: Ctrl-C reaches only the launcher, which stops children in order.
        self.popen = subprocess.Popen(
            list(args), env=env, start_new_session=True, preexec_fn=_die_with_parent
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class _Stack:
    def __init__(self) -> None:
        self.children: list[_Child] = []

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> _Child:
        child = _Child(name, args, env)
        self.children.append(child)
        return child

    def adopt(self, name: str, popen: subprocess.Popen[bytes]) -> None:
        child = _Child.__new__(_Child)
        child.name, child.popen = name, popen
        self.children.append(child)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def dead(self) -> _Child | None:
        return next((c for c in self.children if not c.alive()), None)


def _wait(check: object, what: str, stack: _Stack, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        dead = stack.dead()
        if dead is not None:
            raise RuntimeError(f"{dead.name} exited with code {dead.popen.returncode}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310  # our own loopback URL
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _redis_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent_service.cli", *args]


def _start_redis(stack: _Stack, workdir: Path, env: dict[str, str]) -> str:
    """A private redis-server (AOF on, data in ``workdir``); returns its URL."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--appendonly", "yes", "--maxmemory-policy", "noeviction",
            "--loglevel", "warning"]  # fmt: skip
    stack.start("redis", args, env)
    _wait(lambda: _redis_ok(port), "redis-server", stack, 20)
    return f"redis://127.0.0.1:{port}/0"


def _start_postgres(stack: _Stack, workdir: Path, env: dict[str, str]) -> str | None:
    """A private PostgreSQL for the run history (data under ``workdir``, removed with it);
    its URL, or None (one line printed) when Postgres is not installed."""
    bin_dir = localpostgres.find_bin_dir()
    if bin_dir is None:
        print(
            "agent-service up: PostgreSQL not found, so run history is off: install it "
            f"({localpostgres.INSTALL_HINT}) or set AGENT_HISTORY_URL.",
            file=sys.stderr,
        )
        return None
    workdir.chmod(0o711)  # the server's own user must reach its directory inside
    server = localpostgres.LocalPostgres.prepare(bin_dir, free_port(), parent=workdir)
    account = localpostgres.server_account()
    initdb = subprocess.run(
        server.initdb_args(), env=env, capture_output=True, text=True, check=False, **account
    )
    if initdb.returncode != 0:
        raise RuntimeError(f"initdb failed: {initdb.stderr.strip()[-500:]}")
    popen = subprocess.Popen(
        server.server_args(),
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "postgres.log").open("wb"),
        **account,
    )
    # Stopped after the API and worker (reverse order): SIGTERM, a smart shutdown, is quick
    # once they have closed their connections.
    stack.adopt("postgres", popen)
    _wait(server.ready, "postgres", stack, 30)
    return server.url()


ALERTS_DIR = Path(__file__).resolve().parents[2] / "alerts"  # a source checkout's rule files
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"  # a source checkout's documentation
CHROMA_DATA = Path.home() / ".cache" / "agent-service" / "up-chroma"
"""Where ``up`` keeps its knowledge bases: kept across runs, so restarting ingests nothing
again (unchanged documents are no-ops) and deleting the directory starts afresh."""


def _start_chroma(stack: _Stack, workdir: Path, env: dict[str, str]) -> str:
    """A Chroma server (``chroma run``, from the ``chromadb`` package) with its data in
    ``CHROMA_DATA``; returns its URL. A server, not the embedded store: the API and the worker
    are two processes, and an embedded store's writes are invisible to another process's
    queries. Its output (a banner, then a line per request) goes to ``chroma.log`` in the work
    directory, warnings only."""
    port = free_port()
    binary = Path(sys.executable).with_name("chroma")
    CHROMA_DATA.mkdir(parents=True, exist_ok=True)
    args = [str(binary), "run", "--path", str(CHROMA_DATA), "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip
    with (workdir / "chroma.log").open("wb") as log:
        popen = subprocess.Popen(
            args, env={**env, "RUST_LOG": "warn"}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
    stack.adopt("chroma", popen)
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: _http_ok(f"{url}/api/v2/heartbeat"), "chroma", stack, 60)
    return url


def _ingest_docs(env: dict[str, str], tenant: str) -> None:
    """Ingest the project's ``docs/`` into the ``docs`` knowledge base (the default agent
    searches it), with the CLI's progress bar; unchanged files cost nothing."""
    if not DOCS_DIR.is_dir():
        print(f"agent-service up: no {DOCS_DIR}; the docs knowledge base stays empty", flush=True)
        return
    done = subprocess.run(
        _cli(
            "knowledge", "ingest", DOCS_KB, str(DOCS_DIR), "--prefix", "docs/", "--tenant", tenant
        ),
        env=env,
        check=False,
    )
    if done.returncode != 0:
        print("agent-service up: ingesting docs/ failed (see above); going on", flush=True)


def _preferred_port(port: int) -> int:
    return port if _port_free(port) else free_port()


def _start_monitoring(
    stack: _Stack, workdir: Path, env: dict[str, str], api_metrics: int, worker_metrics: int
) -> tuple[int, int]:
    """Prometheus (rules from alerts/) and Alertmanager as children of the stack."""
    prometheus_port, alertmanager_port = _preferred_port(9090), _preferred_port(9093)
    targets = [
        localmonitoring.Target("agent-service-api", f"127.0.0.1:{api_metrics}", "api"),
        # The worker's samples are already in the api's (shared multiprocess directory):
        # scrape it for its `up` only, or every sum would count the worker twice.
        localmonitoring.Target(
            "agent-service-worker", f"127.0.0.1:{worker_metrics}", "worker", up_only=True
        ),
    ]
    rules = localmonitoring.rule_files(ALERTS_DIR)
    if not rules:
        print(f"agent-service up: no rule files in {ALERTS_DIR}; alerts are off", file=sys.stderr)
    processes = localmonitoring.start(
        workdir / "monitoring",
        targets=targets,
        rules=rules,
        prometheus_port=prometheus_port,
        alertmanager_port=alertmanager_port,
        popen_kwargs={
            "env": env,
            "start_new_session": True,
            "preexec_fn": _die_with_parent,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
        },
    )
    for name, process in zip(("alertmanager", "prometheus"), processes, strict=True):
        stack.adopt(name, process)
    _wait(lambda: _http_ok(f"http://127.0.0.1:{prometheus_port}/-/ready"), "prometheus", stack, 60)
    return prometheus_port, alertmanager_port


def run_local_stack(
    settings: Settings,
    api_port: int,
    sim_port: int,
    sim_ttft: float,
    with_monitoring: bool = False,
) -> int:
    """Run the stack until interrupted; returns the exit code."""
    redis_given = "url" in settings.redis.model_fields_set
    if not redis_given and shutil.which("redis-server") is None:
        print(
            "redis-server not found: install it (sudo apt-get install redis-server) "
            "or set AGENT_REDIS_URL to a running Redis.",
            file=sys.stderr,
        )
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="agent-service-up-"))
    stack = _Stack()
    stopping = False

    def _on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1")
    try:
        redis_url = settings.redis.url if redis_given else _start_redis(stack, workdir, env)
        history = _history_url(settings, stack, workdir, env)
        sim_port = _start_sim(stack, env, sim_port or free_port(), sim_ttft)
        if settings.config.file is None:
            sim_url = f"http://127.0.0.1:{sim_port}/v1"
            env["AGENT_CONFIG_FILE"] = str(_local_config(stack, workdir, env, sim_url))
            _local_knowledge(stack, settings, workdir, env)
        env.update(
            AGENT_REDIS_URL=redis_url,
            AGENT_SIM_URL=f"http://127.0.0.1:{sim_port}/v1",
            AGENT_API_PORT=str(api_port),
            AGENT_API_HOST="127.0.0.1",
            AGENT_METRICS_HOST="127.0.0.1",
        )
        # API and worker share one multiprocess metrics directory, so either metrics port shows
        # the whole stack's metrics; the API's is the usual 9100 when that port is free.
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        api_metrics = settings.metrics.port if _port_free(settings.metrics.port) else free_port()
        worker_metrics = free_port()
        key = _local_key(settings, workdir, env)
        stack.start("api", _cli("api"), {**env, "AGENT_METRICS_PORT": str(api_metrics)})
        stack.start("worker", _cli("worker"), {**env, "AGENT_METRICS_PORT": str(worker_metrics)})
        base = f"http://127.0.0.1:{api_port}"
        _wait(lambda: _http_ok(f"{base}/readyz"), "api", stack, 90)
        monitoring = None
        if with_monitoring:
            monitoring = _start_monitoring(stack, workdir, env, api_metrics, worker_metrics)
        _banner(
            base=base,
            redis_url=redis_url,
            history=history,
            sim_port=sim_port,
            settings=settings,
            config=env.get("AGENT_CONFIG_FILE") or "built-in (LLM simulator)",
            local=settings.config.file is None,
            metrics=(api_metrics, worker_metrics),
            monitoring=monitoring,
            key=key,
        )
        while not stopping:
            dead = stack.dead()
            if dead is not None:
                print(
                    f"agent-service up: {dead.name} exited ({dead.popen.returncode}); stopping",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.3)
        return 0
    except RuntimeError as exc:
        print(f"agent-service up: {exc}", file=sys.stderr)
        return 1
    finally:
        print("agent-service up: stopping", file=sys.stderr)
        stack.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)


def _start_sim(stack: _Stack, env: dict[str, str], port: int, ttft: float) -> int:
    """The LLM simulator on ``port``, answering; returns the port."""
    stack.start("sim-llm", _cli("sim-llm", "--port", str(port), "--ttft", str(ttft)), env)
    _wait(lambda: _http_ok(f"http://127.0.0.1:{port}/v1/models"), "simulator", stack, 30)
    return port


def _local_knowledge(stack: _Stack, settings: Settings, workdir: Path, env: dict[str, str]) -> None:
    """The local config's ``docs`` knowledge base: a Chroma server unless the settings name a
    store, then ``docs/`` ingested into it for the tenant of the session's key (``local``; the
    ``default`` tenant when authentication is off or your keys file applies)."""
    knowledge = settings.knowledge
    if knowledge.chroma_url is None and knowledge.chroma_path is None:
        env["AGENT_KNOWLEDGE_CHROMA_URL"] = _start_chroma(stack, workdir, env)
    own_key = settings.auth.enabled and settings.auth.keys_file is None
    _ingest_docs(env, LOCAL_TENANT if own_key else DEFAULT_TENANT)


def _local_config(stack: _Stack, workdir: Path, env: dict[str, str], sim_url: str) -> Path:
    """Start the demo MCP server and write the local agent config next to it; its path."""
    port = free_port()
    stack.start("mcp-demo", _cli("mcp-demo", "--host", "127.0.0.1", "--port", str(port)), env)
    _wait(lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), "mcp-demo", stack, 30)
    path = workdir / "agent.yaml"
    path.write_text(local_config_yaml(sim_url, f"http://127.0.0.1:{port}/mcp"))
    return path


def _approval_examples(base: str, header: str) -> str:
    """curl lines for the approval flow of the ``refunds`` agent (localconfig.approval_agents)."""
    return f"""
  # a refund waits for your approval: the task pauses (awaiting_approval), holding no worker
  curl -s {base}/v1/tasks{header} -H 'content-type: application/json' \\
       -d '{{"agent":"refunds","message":"please refund order OD-20240502"}}'
  curl -s '{base}/v1/approvals?status=pending'{header}
  curl -s {base}/v1/tasks/TASK_ID/approvals/APPROVAL_ID{header} \\
       -H 'content-type: application/json' -d '{{"decision":"approve"}}'
"""


def _history_url(
    settings: Settings, stack: _Stack, workdir: Path, env: dict[str, str]
) -> str | None:
    """The run history's Postgres for the API and the worker (set in ``env``): the user's
    ``AGENT_HISTORY_URL``, else a private server; None when history is off."""
    if settings.history.enabled:
        return "AGENT_HISTORY_URL (yours)"
    url = _start_postgres(stack, workdir, env)
    if url is not None:
        env["AGENT_HISTORY_URL"] = url
    return url


def _local_key(settings: Settings, workdir: Path, env: dict[str, str]) -> str | None:
    """A fresh API key for this session (tenant ``local``) in a keys file of the work dir;
    None when auth is off or the caller brought a keys file (their keys apply)."""
    if not settings.auth.enabled:
        print(
            "agent-service up: AUTHENTICATION IS OFF (AGENT_AUTH_ENABLED=false): anyone who "
            "reaches the API port is served",
            file=sys.stderr,
        )
        return None
    if settings.auth.keys_file is not None:
        return None
    key = generate_key()
    path = workdir / "api-keys.yaml"
    path.write_text(f"keys:\n  - {{tenant: {LOCAL_TENANT}, key: {key}, name: up}}\n")
    path.chmod(0o600)
    env["AGENT_AUTH_KEYS_FILE"] = str(path)
    return key


def _banner(
    *,
    base: str,
    redis_url: str,
    history: str | None,
    sim_port: int,
    settings: Settings,
    config: str,
    local: bool,
    metrics: tuple[int, int],
    monitoring: tuple[int, int] | None,
    key: str | None,
) -> None:
    if local:
        names = "\n".join(
            f"    {agent['name']:<10} {agent['description']}" for agent in all_local_agents()
        )
        agents = f"  agents     (GET /v1/agents; the first is the default)\n{names}\n"
    else:
        agents = "  agents     those of your config: GET /v1/agents\n"
    if key is not None:
        auth_line = f"  API key    {key}   (tenant {LOCAL_TENANT}; new each run)\n"
        header = ' -H "authorization: Bearer $AGENT_API_KEY"'
        export = f"\n  export AGENT_API_KEY={key}\n"
    elif settings.auth.enabled:
        auth_line = f"  API keys   from {settings.auth.keys_file}\n"
        header = ' -H "authorization: Bearer $AGENT_API_KEY"'
        export = ""
    else:
        auth_line, header, export = "  API key    none: authentication is off\n", "", ""
    sign_in = (
        "sign in with the API key below"
        if key is not None or settings.auth.enabled
        else "any key signs in: authentication is off"
    )
    if monitoring is not None:
        print(
            f"  prometheus    http://127.0.0.1:{monitoring[0]}  (rules: {ALERTS_DIR})\n"
            f"  alertmanager  http://127.0.0.1:{monitoring[1]}",
            flush=True,
        )
    print(
        f"""
agent-service is up
  API        {base}   (docs: {base}/docs)
  console    {base}/ui/   ({sign_in})
  metrics    http://127.0.0.1:{metrics[0]}/metrics   (worker: :{metrics[1]}; both show all)
  Redis      {redis_url}
  history    {history or "off (no PostgreSQL)"}
  simulator  http://127.0.0.1:{sim_port}/v1
  config     {config}
{agents}{auth_line}{export}
  curl -s {base}/v1/agents{header}
  curl -s {base}/v1/chat{header} -H 'content-type: application/json' \\
       -d '{{"message":"what is 12*(3+4)?"}}'
  curl -s {base}/v1/chat{header} -H 'content-type: application/json' \\
       -d '{{"message":"how do I scale the workers?"}}'      # answers with sources from docs/
  curl -s {base}/v1/knowledge/docs/documents{header}
  curl -s {base}/v1/chat{header} -H 'content-type: application/json' \\
       -d '{{"agent":"orders","message":"where is order OD-20240502?"}}'
  curl -s {base}/v1/tasks{header} -H 'content-type: application/json' \\
       -d '{{"message":"what is 12*(3+4)?"}}'
  curl -s {base}/v1/tasks/TASK_ID{header}
{_approval_examples(base, header) if local else ""}
Ctrl-C stops everything.
""",
        flush=True,
    )
