"""Which sources a run's answer used, in the order it used them.

Called by the agent loop when a run ends, with every ``Source`` its ``retrieval`` steps
returned (numbered ``[1]``, ``[2]``... across the run, in retrieval order). Pure.

- The answer cites some by number: those, in the order of their first citation. A number the
  run never gave out is ignored (the model made it up).
- The answer cites none (a model that does not follow the instruction): every source
  retrieved, in retrieval order, one entry per chunk. The answer was written after reading
  them, so they are what it is based on; dropping them would hide where it came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent_service.domain.sources import Source

_CITATION = re.compile(r"\[(\d{1,4})\]")


def cited_numbers(answer: str) -> list[int]:
    """The numbers ``[n]`` in ``answer``, each once, in order of first appearance."""
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(answer):
        seen.setdefault(int(match.group(1)), None)
    return list(seen)


def used_sources(answer: str, retrieved: Sequence[Source]) -> list[Source]:
    """The sources ``answer`` used, in the order it used them (see the module docstring)."""
    by_number = {source.citation: source for source in retrieved}
    cited = [by_number[n] for n in cited_numbers(answer) if n in by_number]
    if cited:
        return cited
    unique: dict[tuple[str, str, int], Source] = {}
    for source in retrieved:
        unique.setdefault((source.kb, source.document_id, source.chunk), source)
    return list(unique.values())
