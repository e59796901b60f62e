"""``agent-service knowledge ingest KB PATH...``: put files into a knowledge base.

Walks the paths (``knowledge.files``), then ingests each file in turn straight into the vector
store the settings name (``AGENT_KNOWLEDGE_CHROMA_URL``, or ``..._PATH`` when nothing else has
the embedded store open), with the knowledge base and its embedding model from the agent config
(``AGENT_CONFIG_FILE``). A progress bar on stderr shows files done and the current file's
stage (embedding N/M chunks); at the end one line per status (created, replaced, unchanged,
failed). An unchanged file costs a read and a hash: nothing is embedded again.

A file the knowledge base refuses (unsupported type, too large, a PDF that does not parse) is
reported and skipped; the exit code is then 1. 2: bad arguments (unknown knowledge base, a
path that does not exist); 3: the store or the embedding model is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agent_service.domain.runs import DEFAULT_TENANT

if TYPE_CHECKING:
    from agent_service.agentconfig.model import AgentConfig
    from agent_service.knowledge.base import IngestProgress, KnowledgeBase
    from agent_service.knowledge.files import FileToIngest
    from agent_service.settings import Settings

OK, SOME_FAILED, BAD_ARGUMENTS, UNAVAILABLE = 0, 1, 2, 3
BAR_WIDTH = 24


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="knowledge_command", required=True, metavar="ACTION")
    ingest = sub.add_parser(
        "ingest",
        help="ingest files (text, Markdown, HTML, PDF) into a knowledge base, with a progress bar",
    )
    ingest.add_argument("kb", metavar="KB", help="a knowledgeBases name of the agent config")
    ingest.add_argument("paths", metavar="PATH", nargs="+", type=Path, help="files or directories")
    ingest.add_argument(
        "--tenant", default=DEFAULT_TENANT, help=f"tenant owning the documents ({DEFAULT_TENANT})"
    )
    ingest.add_argument("--prefix", default="", help="prefix of every document id ('docs/')")


class ProgressBar:
    """``[######......]  3/13 files  operations.md: embedding 40/61`` on one redrawn line
    (a line per file when ``out`` is not a terminal)."""

    def __init__(self, total: int, out: TextIO) -> None:
        self._total, self._out = total, out
        self._tty = out.isatty()
        self._done = 0
        self._current = ""

    def file_started(self, name: str) -> None:
        self._current = name
        self._draw("reading")

    def stage(self, progress: IngestProgress) -> None:
        if progress.stage == "embedding" and self._tty:
            self._draw(f"embedding {progress.done}/{progress.total} chunks")

    def file_done(self, outcome: str) -> None:
        self._done += 1
        if self._tty:
            self._draw(outcome)
        else:
            self._out.write(f"{self._done}/{self._total} {self._current}: {outcome}\n")

    def close(self) -> None:
        if self._tty:
            self._out.write("\n")
        self._out.flush()

    def _draw(self, what: str) -> None:
        if not self._tty:
            return
        filled = BAR_WIDTH * self._done // max(self._total, 1)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = f"[{bar}] {self._done:>3}/{self._total} files  {self._current}: {what}"
        self._out.write("\r\x1b[2K" + line[:160])
        self._out.flush()


async def ingest_files(
    kb: KnowledgeBase,
    files: list[FileToIngest],
    *,
    tenant: str,
    out: TextIO,
) -> Counter[str]:
    """Ingest ``files`` one by one into ``kb`` for ``tenant``; the count of each outcome.

    A refused file is counted ``failed`` and reported; an unavailable store or embedding model
    stops the walk (the next files would fail the same way)."""
    from agent_service.knowledge.base import DocumentUpload  # noqa: PLC0415 - see run_knowledge
    from agent_service.knowledge.errors import (  # noqa: PLC0415
        KnowledgeError,
        KnowledgeStoreUnavailableError,
    )

    bar = ProgressBar(len(files), out)
    outcomes: Counter[str] = Counter()
    try:
        for item in files:
            bar.file_started(item.doc_id)
            upload = DocumentUpload(
                doc_id=item.doc_id, data=item.path.read_bytes(), filename=item.path.name,
                uri=item.doc_id,
            )  # fmt: skip
            try:
                result = await kb.ingest(upload, tenant=tenant, on_progress=bar.stage)
            except KnowledgeStoreUnavailableError:
                raise
            except KnowledgeError as exc:
                outcomes["failed"] += 1
                bar.file_done(f"failed ({exc.status} {exc.type}: {exc.message})")
                continue
            outcomes[result.status] += 1
            bar.file_done(f"{result.status}, {result.chunks} chunks")
    finally:
        bar.close()
    return outcomes


def run_knowledge(args: argparse.Namespace, settings: Settings) -> int:
    """The ``knowledge`` command; its exit code. Its heavy modules (LiteLLM, Chroma) are
    imported here, not with the module: ``agent-service --help`` must stay fast."""
    from agent_service.agentconfig.load import load_config_version  # noqa: PLC0415
    from agent_service.knowledge.files import walk  # noqa: PLC0415

    version = load_config_version(settings)
    names = [kb.name for kb in version.config.knowledge_bases]
    if args.kb not in names:
        known = ", ".join(names) or "none"
        sys.stderr.write(f"error: {args.kb!r} is not a knowledge base (knowledgeBases: {known})\n")
        return BAD_ARGUMENTS
    try:
        files = list(walk(args.paths, prefix=args.prefix))
    except FileNotFoundError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return BAD_ARGUMENTS
    return asyncio.run(_ingest(settings, version.config, args, files))


async def _ingest(
    settings: Settings, config: AgentConfig, args: argparse.Namespace, files: list[FileToIngest]
) -> int:
    from agent_service.domain.errors import AgentError  # noqa: PLC0415
    from agent_service.observability.metrics import Metrics  # noqa: PLC0415
    from agent_service.runtime.knowledge import KnowledgeHub  # noqa: PLC0415

    hub = KnowledgeHub(
        settings.knowledge,
        Metrics(),
        secrets_dir=settings.config.secrets_dir,
        transport=settings.llm.transport,
    )
    try:
        kb = hub.bases(config)[args.kb]
        outcomes = await ingest_files(kb, files, tenant=args.tenant, out=sys.stderr)
    except AgentError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return UNAVAILABLE
    finally:
        await hub.aclose()
    summary = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
    sys.stdout.write(f"{args.kb}: {len(files)} files: {summary or 'nothing to ingest'}\n")
    return SOME_FAILED if outcomes["failed"] else OK
