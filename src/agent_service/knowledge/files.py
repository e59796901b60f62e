"""Files to ingest: the paths given to ``agent-service knowledge ingest``, walked.

Called by ``knowledge_cli`` (and ``launcher``, which ingests the project's ``docs/`` for
``up``). A directory is walked recursively, in sorted order, for the extensions ingestion reads
(``documents.EXTENSIONS``); hidden files and directories are skipped. Each file's document id is
its path relative to the directory given (``operations.md``, ``guides/setup.md``), or its name
for a file given directly, with an optional prefix: the same file ingested again keeps its id,
so an unchanged file is a no-op and a changed one replaces its chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent_service.knowledge.documents import EXTENSIONS


@dataclass(frozen=True)
class FileToIngest:
    path: Path
    doc_id: str


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def walk(paths: Iterable[Path], *, prefix: str = "") -> Iterator[FileToIngest]:
    """The files under ``paths`` that ingestion reads, with their document ids.

    A path that does not exist raises ``FileNotFoundError``; a file given directly is taken
    whatever its extension (ingestion then says whether it reads it).
    """
    for root in paths:
        if root.is_file():
            yield FileToIngest(root, prefix + root.name)
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"no such file or directory: {root}")
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and path.suffix.lower() in EXTENSIONS and not _hidden(relative):
                yield FileToIngest(path, prefix + relative.as_posix())
