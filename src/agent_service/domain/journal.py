"""The step journal of a run: each completed step, recorded before the next one starts.

A queued run appends one ``JournalEntry`` per step (an LLM completion with the tool calls it
asked for, or a tool result) to its journal in Redis (``store.journal``). A redelivered or
resumed run replays the entries to rebuild its conversation and goes on at the first step with
no entry, so no recorded LLM call or tool call is made again. Pure data.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent_service.domain.approvals import ApprovalDecision
from agent_service.domain.messages import ChatMessage, LLMCompletion
from agent_service.domain.runs import Step


class JournalEntry(BaseModel):
    """One completed step. ``step.index`` is its position in the journal."""

    step: Step
    completion: LLMCompletion | None = None
    """The LLM's answer, whole (``step.kind == "llm"``)."""
    tool_call_id: str | None = None
    output: str | None = None
    """The tool message the model read, as sent (``step.kind == "tool"``)."""
    ok: bool = True
    """Whether the tool call succeeded (failures in a row make the agent stop offering tools)."""
    approval: ApprovalDecision | None = None
    """The decision the tool call went through, when its agent gates it."""
    history: list[ChatMessage] | None = None
    """First entry only: the session memory the run started from, so a resumed run sees the
    conversation it began with even if the session moved on."""

    @property
    def kind(self) -> str:
        return self.step.kind


class JournalConflictError(Exception):
    """A step could not be recorded: a newer attempt of the same run owns its journal (a stale
    delivery still running). The stale attempt stops without writing anything else."""
