"""What each process pays to import its code: RSS and wall time, per package (issue 17, part 3).

Not a test: it prints figures. Each line is a fresh interpreter (``sys.executable``) that imports
one module and reports its peak RSS (``ru_maxrss``) and the import's wall time; the first line is
a bare interpreter, the baseline every other line includes. Per package: the heavy third-party
packages one by one (each alone, so shared dependencies count in each; a package whose top
module imports lazily is named by the module that does the work, e.g. ``celery.app.base``).
Per process: the API's and the worker's entry modules, with which of the watched packages
(LiteLLM, the Kubernetes client, kopf, chromadb, SQLAlchemy, psycopg, Alembic, mcp, openai)
they imported. Medians of ``--repeat`` interpreters per line.

    uv run python bench/import_memory.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header

PACKAGES = [
    "litellm", "openai", "httpx_aiohttp", "aiohttp", "mcp", "fastapi", "sqlalchemy", "redis",
    "celery.app.base", "kombu.transport.redis", "opentelemetry.sdk.trace", "prometheus_client",
    "pydantic.main", "chromadb",
    "pypdf", "kubernetes", "kopf",
]  # fmt: skip
PROCESSES = {
    "api process (agent_service.api.app)": "agent_service.api.app",
    "worker process (agent_service.worker.main)": "agent_service.worker.main",
    "controller (agent_service.controller.main)": "agent_service.controller.main",
}
WATCHED = [
    "litellm", "kubernetes", "kopf", "chromadb", "sqlalchemy", "psycopg", "alembic", "mcp",
    "openai",
]  # fmt: skip

PROBE = """
import json, resource, sys, time
started = time.perf_counter()
if sys.argv[1]:
    __import__(sys.argv[1])
seconds = time.perf_counter() - started
loaded = {name.split(".")[0] for name in sys.modules}
print(json.dumps({
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "seconds": seconds,
    "loaded": sorted(set(sys.argv[2:]) & loaded),
}))
"""


def probe(module: str) -> dict[str, object]:
    env_module = module or ""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, env_module, *WATCHED],
        capture_output=True,
        text=True,
        check=False,
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"},
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def measure(module: str, repeat: int) -> dict[str, object]:
    samples = [probe(module) for _ in range(repeat)]
    if any("error" in s for s in samples):
        return samples[0]
    return {
        "rss_mb": statistics.median(float(s["rss_mb"]) for s in samples),  # type: ignore[arg-type]
        "seconds": statistics.median(float(s["seconds"]) for s in samples),  # type: ignore[arg-type]
        "loaded": samples[0]["loaded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="interpreters per line (median)")
    args = parser.parse_args()
    header(f"import memory: RSS after one import in a fresh interpreter, median of {args.repeat}")
    bare = measure("", args.repeat)
    base = float(bare["rss_mb"])  # type: ignore[arg-type]
    print(f"{'bare interpreter':<46} {base:7.1f} MB")
    print("\nper package (each alone; above the bare interpreter):")
    for name in PACKAGES:
        got = measure(name, args.repeat)
        if "error" in got:
            print(f"  {name:<44} not importable: {got['error']}")
            continue
        rss, seconds = float(got["rss_mb"]), float(got["seconds"])  # type: ignore[arg-type]
        print(f"  {name:<44} {rss - base:+7.1f} MB  {seconds:5.2f} s")
    print("\nper process (entry module; total RSS, and which heavy packages it imported):")
    for label, module in PROCESSES.items():
        got = measure(module, args.repeat)
        if "error" in got:
            print(f"  {label:<44} not importable: {got['error']}")
            continue
        rss, seconds = float(got["rss_mb"]), float(got["seconds"])  # type: ignore[arg-type]
        loaded = ", ".join(got["loaded"]) or "none of them"  # type: ignore[arg-type]
        print(f"  {label:<44} {rss:7.1f} MB  {seconds:5.2f} s  imports: {loaded}")
    footer()


if __name__ == "__main__":
    main()
