"""The API and worker processes import no heavy package they may not need (issue 17).

LiteLLM (~150 MB), the ``mcp`` SDK (~40 MB), chromadb, pypdf, SQLAlchemy with psycopg and
Alembic (~36 MB) and the controller's ``kubernetes``/``kopf`` are imported on first use: a model
that needs LiteLLM, a config that names an MCP server, a knowledge base, a PDF, run history
(``AGENT_HISTORY_URL``). ``bench/import_memory.py`` prints what each costs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = (
    "litellm",
    "mcp",
    "mcp_types",
    "chromadb",
    "pypdf",
    "sqlalchemy",
    "psycopg",
    "alembic",
    "kubernetes",
    "kopf",
)


@pytest.mark.parametrize("module", ["agent_service.api.app", "agent_service.worker.main"])
def test_the_entry_module_imports_no_heavy_package(module: str) -> None:
    code = f"import sys\nimport {module}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
