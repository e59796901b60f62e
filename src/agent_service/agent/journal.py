"""Replaying and recording a run's steps: the agent loop's side of the step journal.

The loop (``agent.loop``) calls ``recorded`` before each LLM or tool step: an entry there means
an earlier attempt completed the step, and the loop takes its result instead of making the call
again. After a fresh step it appends ``llm_entry`` or ``tool_entry`` to the ``StepJournal`` port
before starting the next step. ``MemoryJournal`` is the port for sync runs of agents with
approvals: if such a run reaches a gated tool, the API hands its steps over to a queued task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from agent_service.agent.ports import StepJournal
from agent_service.domain.approvals import ApprovalDecision
from agent_service.domain.errors import AgentError, ErrorType
from agent_service.domain.journal import JournalEntry
from agent_service.domain.messages import ChatMessage, LLMCompletion
from agent_service.domain.runs import Step


class MemoryJournal:
    """A ``StepJournal`` kept in memory (a sync run): nothing to replay, no idempotency key."""

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []

    @property
    def entries(self) -> Sequence[JournalEntry]:
        return self._entries

    @property
    def decisions(self) -> Mapping[int, ApprovalDecision]:
        return {}

    def idempotency_key(self, step: int) -> str | None:
        return None

    async def append(self, entry: JournalEntry) -> None:
        self._entries.append(entry)


def recorded(
    journal: StepJournal | None, index: int, kind: Literal["llm", "tool"]
) -> JournalEntry | None:
    """The entry an earlier attempt recorded at step ``index``, or None (a fresh step).

    A recorded step of another kind means the replay left the path the run took (its agent's
    config changed in a way that changes the steps): the run fails rather than guess.
    """
    if journal is None or index >= len(journal.entries):
        return None
    entry = journal.entries[index]
    # A knowledge search is a tool call whose step says "retrieval".
    if (entry.kind if entry.kind != "retrieval" else "tool") != kind:
        raise AgentError(
            ErrorType.INTERNAL,
            f"the run's journal has a {entry.kind} step at {index} where the replay expected "
            f"a {kind} step; the agent's config changed since the run began",
        )
    return entry


def llm_entry(
    step: Step, completion: LLMCompletion, history: list[ChatMessage] | None
) -> JournalEntry:
    """The entry of an LLM step (``history``: the first step's session memory, pinned)."""
    return JournalEntry(step=step, completion=completion, history=history)


def tool_entry(
    step: Step,
    tool_call_id: str,
    output: str,
    ok: bool,
    approval: ApprovalDecision | None = None,
) -> JournalEntry:
    """The entry of a tool step: the message the model reads, and how the call went."""
    return JournalEntry(
        step=step, tool_call_id=tool_call_id, output=output, ok=ok, approval=approval
    )


def pinned_history(journal: StepJournal | None) -> list[ChatMessage] | None:
    """The session memory the run began with, if an earlier attempt pinned it."""
    if journal is None or not journal.entries:
        return None
    return journal.entries[0].history
