"""The peers ``bench/peers.py`` compares against: their virtual environments and their servers.

LiteLLM Proxy and LangGraph's CLI (``langgraph dev``, the in-memory runtime) are installed with
uv into their own virtual environments under ``.cache/bench-peers/`` (git-ignored), one per
requirement set, made on the first run and reused after that. Both are started as real
processes on loopback, pointed at the project's LLM simulator, with every call home switched
off: the benchmark machine may have no internet, and a peer waiting on a network timeout would
be measured as slow. ``bench/peers.py`` calls ``ToolEnv.ensure`` and the ``start_*`` functions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, Stack
from tests.procs import Proc, base_env, free_port

CACHE = ROOT / ".cache" / "bench-peers"


@dataclass(frozen=True)
class ToolEnv:
    """A virtual environment holding one peer, and the distributions whose versions we print."""

    name: str
    requirements: tuple[str, ...]
    shown: tuple[str, ...]

    def unpinned(self) -> ToolEnv:
        """The same peer at its newest release (``--latest``)."""
        names = tuple(req.split("==")[0] for req in self.requirements)
        return ToolEnv(f"{self.name}-latest", names, self.shown)

    @property
    def path(self) -> Path:
        digest = hashlib.sha256("\n".join(self.requirements).encode()).hexdigest()[:10]
        return CACHE / f"{self.name}-{digest}"

    def bin(self, command: str) -> str:
        return str(self.path / "bin" / command)

    def ensure(self, *, upgrade: bool = False) -> None:
        """Create the environment and install the requirements, unless an earlier run did."""
        done = self.path / ".installed"
        if done.exists() and not upgrade:
            return
        uv = shutil.which("uv")
        if uv is None:
            sys.exit("uv is not on PATH: scripts/bootstrap.sh installs it")
        print(f"# installing {' '.join(self.requirements)} into {self.path}", flush=True)
        steps = [
            # The project's own interpreter: no download, and both sides run the same CPython.
            [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(self.path)],
            [uv, "pip", "install", "--quiet", "--python", self.bin("python"), *self.requirements]
            + (["--upgrade"] if upgrade else []),
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                sys.exit(f"{' '.join(step)} failed:\n{result.stdout}{result.stderr}")
        done.touch()

    def versions(self) -> str:
        """``name version`` of the shown distributions, as installed."""
        script = (
            "import importlib.metadata as m, sys\n"
            "print(', '.join(f'{d} {m.version(d)}' for d in sys.argv[1:]))"
        )
        return subprocess.run(
            [self.bin("python"), "-c", script, *self.shown],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip


# Pinned to the releases this benchmark was validated with; --latest takes the newest instead.
LITELLM_PROXY = ToolEnv(
    "litellm-proxy", ("litellm[proxy]==1.108.7",), ("litellm", "openai", "uvicorn", "fastapi")
)
LANGGRAPH = ToolEnv(
    "langgraph",
    (
        "langgraph-cli[inmem]==0.4.40",
        "langgraph-api==0.16.7",
        "langgraph-runtime-inmem==0.36.7",
        "langgraph==1.2.24",
        "langchain-openai==1.8.1",
    ),
    ("langgraph-api", "langgraph-runtime-inmem", "langgraph", "langchain-openai", "openai"),
)
PY_SPY = ToolEnv("py-spy", ("py-spy==0.4.3",), ("py-spy",))  # for --profile

# Everything either peer would fetch or send on its own, switched off.
OFFLINE_ENV = {
    # LiteLLM fetches these files from GitHub at import unless told to use its bundled copies.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_TELEMETRY_DISABLED": "true",
    # LangSmith tracing (no API key is passed either), the CLI's analytics, the PyPI version
    # check of `langgraph dev`. Its license "metadata loop" stays off without a license key.
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
}


def peer_env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment for a peer: no developer LangSmith/LangChain/LangGraph settings."""
    env = {
        k: v
        for k, v in base_env().items()
        if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_", "AGENT_"))
    }
    return {**env, **OFFLINE_ENV, **extra}


def start_litellm_proxy(
    stack: Stack, peer: ToolEnv, sim_url: str, master_key: str
) -> tuple[str, Proc]:
    """LiteLLM Proxy, one uvicorn process, no database; model ``sim`` is the simulator.

    A master key is required since 1.10x (it refuses to start without one); with no database it
    is checked in memory. Its access log is off (``LITELLM_LOG=WARNING``), as ours is.
    Returns the base URL and the process.
    """
    config = stack.work / "litellm.yaml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "model_list": [
                    {
                        "model_name": "sim",
                        "litellm_params": {
                            "model": "openai/sim-agent",
                            "api_base": sim_url,
                            "api_key": "sim",
                        },
                    }
                ]
            }
        )
    )
    port = free_port()
    args = [peer.bin("litellm"), "--config", str(config), "--host", "127.0.0.1"]
    args += ["--port", str(port), "--num_workers", "1"]
    env = peer_env({"LITELLM_MASTER_KEY": master_key, "LITELLM_LOG": "WARNING"})
    url = f"http://127.0.0.1:{port}"
    proc = stack.start("litellm-proxy", args, env, f"{url}/health/liveliness", timeout=240)
    return url, proc


def write_langgraph_app(directory: Path) -> Path:
    """The LangGraph app: ``bench/langgraph_agent.py`` and a ``langgraph.json`` naming it."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("langgraph_agent.py"), directory / "agent.py")
    config = directory / "langgraph.json"
    config.write_text(
        json.dumps({"dependencies": ["."], "graphs": {"agent": "./agent.py:graph"}}, indent=2)
    )
    return config


def start_langgraph_dev(stack: Stack, peer: ToolEnv, sim_url: str, jobs: int) -> tuple[str, Proc]:
    """``langgraph dev``: LangGraph's development server, in-memory runtime, one process.

    ``--n-jobs-per-worker`` sets the runs it executes at once (its default is 10). No reload
    (no file watcher process), no browser. ``--allow-blocking`` switches off the blocking-call
    detector (blockbuster) that only the in-memory runtime's queue installs. Its
    logs are at WARNING, like ours; it keeps its dev persistence (state pickled to
    ``.langgraph_api/`` in its working directory), which ``langgraph dev`` cannot switch off.
    Returns the base URL and the process.
    """
    app = stack.work / "langgraph-app"
    config = write_langgraph_app(app)
    port = free_port()
    args = [peer.bin("langgraph"), "dev", "--config", str(config), "--host", "127.0.0.1"]
    args += ["--port", str(port), "--no-browser", "--no-reload", "--allow-blocking"]
    args += ["--n-jobs-per-worker", str(jobs), "--server-log-level", "WARNING"]
    env = peer_env(
        {
            "PEERS_SIM_URL": sim_url,
            "PYTHONPATH": str(ROOT / "src"),  # the agent uses our tools (langgraph_agent.py)
            "LOG_LEVEL": "WARNING",
            "LOG_COLOR": "false",
        }
    )
    url = f"http://127.0.0.1:{port}"
    proc = stack.start("langgraph-dev", args, env, f"{url}/ok", timeout=120, cwd=app)
    return url, proc


def project_versions() -> str:
    """This project's version and the LiteLLM it runs on."""
    import importlib.metadata as m

    return f"agent-service {m.version('agent-service')}, litellm {m.version('litellm')}"
