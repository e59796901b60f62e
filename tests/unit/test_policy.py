"""Pure decisions of the agent loop, table-driven."""

from __future__ import annotations

import pytest

from agent_service.agent import policy
from agent_service.agentconfig.model import Limits
from agent_service.domain.errors import AgentError, ErrorType
from agent_service.domain.messages import ChatMessage, TokenUsage


def turn(i: int, size: int = 40) -> list[ChatMessage]:
    return [
        ChatMessage(role="user", content=f"u{i}" + "x" * size),
        ChatMessage(role="assistant", content=f"a{i}" + "y" * size),
    ]


@pytest.mark.parametrize(
    ("budget", "kept_users"),
    [(0, []), (10, []), (16, []), (32, ["u2"]), (60, ["u1", "u2"]), (10_000, ["u0", "u1", "u2"])],
)
def test_trim_history_keeps_newest_whole_turns(budget: int, kept_users: list[str]) -> None:
    history = turn(0) + turn(1) + turn(2)
    kept = policy.trim_history(history, budget)
    assert [m.content[:2] for m in kept if m.role == "user" and m.content] == kept_users
    assert not kept or kept[0].role == "user"


@pytest.mark.parametrize(
    ("used", "limit", "model_max", "expected"),
    [
        (0, 100, 50, 50),
        (80, 100, 50, 20),
        (99, 100, 50, 1),
        (100, 100, 50, None),
        (150, 100, 50, None),
    ],
)
def test_remaining_output_tokens(
    used: int, limit: int, model_max: int, expected: int | None
) -> None:
    usage = TokenUsage(input_tokens=used)
    limits = Limits(max_tokens_per_run=limit)
    if expected is None:
        with pytest.raises(AgentError) as info:
            policy.remaining_output_tokens(usage, limits, model_max)
        assert info.value.type == ErrorType.TOKEN_LIMIT
    else:
        assert policy.remaining_output_tokens(usage, limits, model_max) == expected


@pytest.mark.parametrize(
    ("text", "tokens"), [(None, 0), ("", 0), ("a", 1), ("abcd", 1), ("abcde", 2)]
)
def test_estimate_tokens(text: str | None, tokens: int) -> None:
    assert policy.estimate_tokens(text) == tokens


def test_truncate() -> None:
    assert policy.truncate("short", 100) == "short"
    out = policy.truncate("x" * 200, 100)
    assert len(out) <= 100 and out.endswith("[truncated]")
