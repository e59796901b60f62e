"""Sources: the knowledge base chunks a run's answer is based on.

A ``search_<kb>`` tool (``knowledge.tool``) returns a ``Retrieval``: the text the model reads,
with each hit numbered ``[n]`` for citing, and the hits as ``Source``s. The agent loop keeps
them on the run's ``retrieval`` steps (so a resumed run replays them from its journal) and puts
the ones the answer used on ``RunResult.sources`` (``agent.sources``). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field


class Source(BaseModel):
    """One chunk of one document, as a run's answer cites it."""

    citation: int = Field(description="Its number in the run: the answer cites it as [n].")
    kb: str = Field(description="The knowledge base (a configured name).")
    document_id: str
    title: str = ""
    uri: str = ""
    chunk: int = Field(default=0, description="The chunk's position in its document.")
    excerpt: str = Field(description="The chunk's text, without its heading path, cut short.")
    score: float = Field(description="Cosine similarity to the question (1 = same direction).")


@dataclass(frozen=True)
class Retrieval:
    """What one knowledge search gave the run: ``text`` for the model, ``sources`` for the
    result (best first, numbered from the ``first_number`` the loop asked for)."""

    text: str
    sources: list[Source] = field(default_factory=list)
