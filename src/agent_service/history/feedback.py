"""Feedback on archived runs: a score of -1 or +1 and an optional comment, kept with the run.

For ``POST /v1/tasks/{task_id}/feedback`` (and the same for a sync run, by its run id), wired by
the lead, with the body ``{"score": -1 | 1, "comment": "..."}``. ``FeedbackStore.give`` answers
``RECORDED`` (count it: ``metrics.feedback_given(result.agent, score)``) or ``NOT_FOUND``: the
run is unknown, another tenant's, or not archived yet; the route tells the last case apart with
``store.history_outbox.HistoryOutbox.is_pending`` and answers 409 with ``Retry-After`` (the
drainer archives within ``AGENT_HISTORY_DRAIN_INTERVAL_SECONDS`` while Postgres is up).
A second feedback on a run replaces the first. ``ValueError`` for a score or comment out of
bounds (400; ``models.check_feedback``).
"""

from __future__ import annotations

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_service.history.engine import pg_guarded
from agent_service.history.models import FeedbackOutcome, FeedbackResult, check_feedback
from agent_service.history.schema import runs
from agent_service.history.scope import Scope


class FeedbackStore:
    """Writes feedback with ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @pg_guarded
    async def give(
        self, scope: Scope, run_id: str, score: int, comment: str | None = None
    ) -> FeedbackResult:
        """Store ``score`` and ``comment`` on run ``run_id`` (in ``scope``), now."""
        check_feedback(score, comment)
        if comment is not None:
            comment = comment.replace("\x00", "\ufffd")  # Postgres text refuses NUL
        statement = (
            update(runs)
            .where(runs.c.id == run_id, scope.where(runs))
            .values(feedback_score=score, feedback_comment=comment, feedback_at=func.now())
            .returning(runs.c.agent)
        )
        async with self._engine.begin() as conn:
            agent = (await conn.execute(statement)).scalar_one_or_none()
        if agent is None:
            return FeedbackResult(FeedbackOutcome.NOT_FOUND)
        return FeedbackResult(FeedbackOutcome.RECORDED, agent)
