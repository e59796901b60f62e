"""Feedback on archived runs, on a real Postgres: stored with the run, replaced by a second
one, refused for unknown or foreign runs and bad scores, counted by agent and score."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from agent_service.history.models import MAX_COMMENT_CHARS, FeedbackOutcome
from agent_service.history.runtime import History
from agent_service.history.scope import Scope
from agent_service.observability.metrics import Metrics
from tests.history.factory import sync_run, task_run

pytestmark = pytest.mark.integration

ACME = Scope.of_tenant("acme")


async def test_feedback_is_stored_with_the_run_and_replaced_by_a_second(
    history: History,
) -> None:
    run = task_run().model_copy(update={"agent": "support"})
    await history.archive.write([run])
    before = time.time()
    result = await history.feedback.give(ACME, run.run_id, -1, "wrong answer")
    assert (result.outcome, result.agent) == (FeedbackOutcome.RECORDED, "support")
    found = await history.runs.get(ACME, run.run_id)
    assert found is not None and found.feedback is not None
    assert (found.feedback.score, found.feedback.comment) == (-1, "wrong answer")
    assert found.feedback.at >= before - 1
    assert found.feedback_score == -1
    await history.feedback.give(ACME, run.run_id, 1)
    found = await history.runs.get(ACME, run.run_id)
    assert found is not None and found.feedback is not None
    assert (found.feedback.score, found.feedback.comment) == (1, None)


async def test_a_sync_run_takes_feedback_by_its_run_id(history: History) -> None:
    chat = sync_run()
    await history.archive.write([chat])
    result = await history.feedback.give(ACME, chat.run_id, 1, "thanks\x00")
    assert result.outcome is FeedbackOutcome.RECORDED
    found = await history.runs.get(ACME, chat.run_id)
    assert found is not None and found.feedback is not None
    assert found.feedback.comment == "thanks\ufffd"


async def test_unknown_and_foreign_runs_are_not_found(history: History) -> None:
    run = task_run(tenant="globex")
    await history.archive.write([run])
    assert (await history.feedback.give(ACME, run.run_id, 1)).outcome is FeedbackOutcome.NOT_FOUND
    assert (await history.feedback.give(ACME, "nope", 1)).outcome is FeedbackOutcome.NOT_FOUND
    found = await history.runs.get(Scope.admin(), run.run_id)
    assert found is not None and found.feedback is None  # untouched
    admin = await history.feedback.give(Scope.admin(), run.run_id, 1)
    assert admin.outcome is FeedbackOutcome.RECORDED


@pytest.mark.parametrize(
    ("score", "comment"), [(0, None), (2, None), (True, None), (1, "x" * (MAX_COMMENT_CHARS + 1))]
)
async def test_bad_feedback_is_refused(history: History, score: int, comment: str | None) -> None:
    run = task_run()
    await history.archive.write([run])
    with pytest.raises(ValueError, match=r"score|comment"):
        await history.feedback.give(ACME, run.run_id, score, comment)


def test_feedback_is_counted_by_agent_and_score() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.feedback_given("support", 1)
    metrics.feedback_given("support", 1)
    metrics.feedback_given("support", -1)
    value = metrics.registry.get_sample_value
    assert value("agent_feedback_total", {"agent": "support", "score": "1"}) == 2
    assert value("agent_feedback_total", {"agent": "support", "score": "-1"}) == 1
