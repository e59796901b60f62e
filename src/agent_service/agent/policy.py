"""Pure decisions of the agent loop: history trimming, limit checks, tool output shaping.

Functions over domain objects only, so they are tested table-driven without any I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

from agent_service.agentconfig.model import Limits, RouterSpec
from agent_service.domain.errors import AgentError, ErrorType
from agent_service.domain.messages import ChatMessage, TokenUsage
from agent_service.domain.runs import RunRequest


def estimate_tokens(text: str | None) -> int:
    """A cheap token estimate (4 characters a token, at least 1 for non-empty text)."""
    if not text:
        return 0
    return max(1, (len(text) + 3) // 4)


def message_tokens(message: ChatMessage) -> int:
    tokens = 4 + estimate_tokens(message.content)
    for call in message.tool_calls:
        tokens += estimate_tokens(call.name) + estimate_tokens(call.arguments)
    return tokens


def trim_history(history: Sequence[ChatMessage], token_budget: int) -> list[ChatMessage]:
    """Keep the newest messages of ``history`` that fit ``token_budget``.

    History is stored as whole turns (user, then assistant); trimming drops the oldest turns
    first and never starts the kept history with an assistant message.
    """
    kept: list[ChatMessage] = []
    used = 0
    for message in reversed(history):
        cost = message_tokens(message)
        if used + cost > token_budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept


def check_token_budget(usage: TokenUsage, limits: Limits) -> None:
    """Raise ``token_limit`` once a run has spent more than ``max_tokens_per_run``."""
    if usage.total_tokens > limits.max_tokens_per_run:
        raise AgentError(
            ErrorType.TOKEN_LIMIT,
            f"run used {usage.total_tokens} tokens, above the limit of {limits.max_tokens_per_run}",
        )


def remaining_output_tokens(usage: TokenUsage, limits: Limits, model_max: int) -> int:
    """Output tokens the next call may use without crossing the per-run token limit."""
    remaining = limits.max_tokens_per_run - usage.total_tokens
    if remaining <= 0:
        raise AgentError(
            ErrorType.TOKEN_LIMIT,
            f"run used {usage.total_tokens} tokens, the limit is {limits.max_tokens_per_run}",
        )
    return max(1, min(model_max, remaining))


def truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 15] + " …[truncated]"


def check_run_cost(usage: TokenUsage, limits: Limits) -> None:
    """Raise ``budget_exceeded`` once a run has spent more than ``max_cost_usd_per_run``."""
    cap = limits.max_cost_usd_per_run
    if cap is not None and usage.cost_usd > cap:
        raise AgentError(
            ErrorType.BUDGET_EXCEEDED,
            f"run cost ${usage.cost_usd:.6f}, above its limit of ${cap:g} (maxCostUsdPerRun)",
        )


def routed_model(request: RunRequest, router: RouterSpec) -> str | None:
    """The cheap model for a short request that names no model and needs no tool, else None.

    "Needs no tool" is a guess from ``router.tool_hints`` (regexes: arithmetic, dates and
    times by default); a routed run is offered no tools, so a wrong guess costs an answer
    without them, never a tool call on the cheap model.
    """
    if not router.enabled or router.model is None or request.model or request.history:
        return None
    if request.continuation or request.client_tools or request.output_format is not None:
        return None
    message = request.message
    if len(message) > router.max_chars:
        return None
    if any(re.search(hint, message) for hint in router.tool_hints):
        return None
    return router.model


def cache_key(request: RunRequest, model: str, config_hash: str) -> str | None:
    """The response-cache key of a stateless run (None when it must not be cached).

    Scoped by tenant and by config hash: a config change (prompt, tools, prices) never serves
    an answer computed under the previous one.
    """
    if request.session_id:
        return None
    material = json.dumps(
        {
            "tenant": request.tenant,
            "config": config_hash,
            "model": model,
            "message": request.message,
            "history": [m.model_dump(mode="json", exclude_defaults=True) for m in request.history],
            "continuation": [
                m.model_dump(mode="json", exclude_defaults=True) for m in request.continuation
            ],
            "client_tools": [t.model_dump(mode="json") for t in request.client_tools],
            "output_format": request.output_format.model_dump(mode="json")
            if request.output_format
            else None,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode()).hexdigest()
