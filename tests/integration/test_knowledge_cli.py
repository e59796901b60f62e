"""``agent-service knowledge ingest`` as a real process, on an embedded Chroma in a data
directory, with embeddings from the simulator process: files walked and ingested, a second run
a no-op, a changed file replaced, refused files reported (exit 1), bad arguments (exit 2); then
the same directory opened in this process answers a search from what the command stored."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from agent_service.agentconfig.load import parse_agent_config
from agent_service.observability.metrics import Metrics
from agent_service.runtime.knowledge import KnowledgeHub
from agent_service.settings import KnowledgeSettings
from tests.conftest import Sim
from tests.procs import base_env, cli

pytestmark = pytest.mark.integration


def config_file(root: Path, sim: Sim) -> Path:
    path = root / "agent.yaml"
    document = {
        "defaultModel": "sim",
        "models": [
            {"name": "sim", "model": "openai/sim-agent", "apiBase": sim.url},
            {"name": "embed", "model": "openai/sim-embedding", "apiBase": sim.url,
             "kind": "embedding"},
        ],
        "knowledgeBases": [
            {"name": "handbook", "description": "Runbooks.", "embeddingModel": "embed"}
        ],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(document))
    return path


def ingest(config: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = base_env({"AGENT_CONFIG_FILE": str(config), "AGENT_KNOWLEDGE_CHROMA_PATH": str(store)})
    return subprocess.run(
        cli("knowledge", "ingest", *args),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_command_ingests_files_once_and_search_finds_them(
    tmp_path: Path, sim: Sim
) -> None:
    docs = tmp_path / "handbook"
    (docs / "ops").mkdir(parents=True)
    (docs / "ops" / "restarts.md").write_text(
        "# Restarts\n\nRestart a stuck worker with kubectl rollout restart deploy/worker.\n"
    )
    (docs / "oncall.txt").write_text("The on-call rotation changes every Monday at 9:00.\n")
    (docs / "logo.png").write_bytes(b"\x89PNG")  # not a document type: not walked
    config, store = config_file(tmp_path, sim), tmp_path / "chroma"

    first = ingest(config, store, "handbook", str(docs), "--prefix", "hb/")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "handbook: 2 files: 2 created"
    assert "1/2 hb/oncall.txt: created" in first.stderr  # a line per file: not a terminal

    again = ingest(config, store, "handbook", str(docs), "--prefix", "hb/")
    assert again.stdout.strip() == "handbook: 2 files: 2 unchanged", again.stderr

    (docs / "oncall.txt").write_text("The on-call rotation changes every Tuesday at 10:00.\n")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    changed = ingest(config, store, "handbook", str(docs), str(bad), "--prefix", "hb/")
    assert changed.returncode == 1, changed.stderr  # one file refused, the others ingested
    assert changed.stdout.strip() == "handbook: 3 files: 1 failed, 1 replaced, 1 unchanged"
    assert "hb/broken.pdf: failed (422 invalid_request" in changed.stderr

    assert ingest(config, store, "nope", str(docs)).returncode == 2
    assert ingest(config, store, "handbook", str(tmp_path / "missing")).returncode == 2

    # The embedded store the command wrote, opened by this process (the command has exited).
    hub = KnowledgeHub(
        KnowledgeSettings(chroma_path=store), Metrics(), secrets_dir=tmp_path / "secrets"
    )
    try:
        kb = hub.bases(parse_agent_config(config.read_text()))["handbook"]
        assert sorted(d.doc_id for d in await kb.documents(tenant="default")) == [
            "hb/oncall.txt", "hb/ops/restarts.md",
        ]  # fmt: skip
        found = await kb.search("when does the on-call rotation change?", tenant="default")
        assert found.hits[0].doc_id == "hb/oncall.txt" and "Tuesday" in found.hits[0].text
    finally:
        await hub.aclose()
