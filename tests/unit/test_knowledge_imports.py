"""Importing the knowledge package costs no chromadb, pypdf or litellm: they load on first use."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "base", "chroma", "chunking", "documents", "errors", "files", "html_text", "pdf_text",
    "store", "tool", "versions",
]  # fmt: skip


def test_heavy_dependencies_load_on_first_use_only() -> None:
    code = (
        "import sys\n"
        + "".join(f"import agent_service.knowledge.{name}\n" for name in MODULES)
        + "print(sorted(m for m in ('chromadb', 'pypdf', 'litellm', 'onnxruntime') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
