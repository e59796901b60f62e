"""The gate every run passes before it starts: body limits, rate limits and budgets, its guard.

``RunGate`` is built once by the app's lifespan and handed to the run routes (``/v1/chat``,
``/v1/chat/completions``, ``/v1/tasks``) as a dependency. Each route calls ``check`` (the
agent asked for, 404 when the caller may not use it, and limits that depend on settings and the
config snapshot: 422), then ``admit`` (counts the request
against the caller's rates and budgets: 429), then ``guard`` for a sync run (re-checks budgets
between steps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent_service.agent.loop import Agent
from agent_service.agentconfig.model import AgentConfig
from agent_service.api.errors import ApiError
from agent_service.api.schemas import RunBody
from agent_service.domain.callers import Caller
from agent_service.domain.errors import ErrorType
from agent_service.observability.metrics import Metrics
from agent_service.runtime import Snapshot
from agent_service.settings import ApiSettings
from agent_service.store.limits import BUDGET_MESSAGES, Admission, Limiter, RedisRunGuard, RunGuards

_RATE_MESSAGES = {
    "requests_per_minute": "too many requests for this API key: the per-minute limit is reached",
    "tokens_per_minute": "this API key used its LLM tokens for this minute",
    **BUDGET_MESSAGES,
}


def rate_headers(admission: Admission) -> dict[str, str]:
    """``X-RateLimit-*`` of the per-minute request limit (none when it is not set)."""
    if admission.limit is None or admission.remaining is None:
        return {}
    return {
        "X-RateLimit-Limit": str(admission.limit),
        "X-RateLimit-Remaining": str(admission.remaining),
        "X-RateLimit-Reset": str(admission.reset),
    }


@dataclass(frozen=True)
class RunGate:
    """Admission of runs for one API process."""

    settings: ApiSettings
    limiter: Limiter
    guards: RunGuards
    metrics: Metrics

    def check(self, body: RunBody, snapshot: Snapshot, caller: Caller) -> Agent:
        """The agent ``body`` asks for, once its limits that depend on settings and the config
        in force hold (422); 404 for an agent the caller's tenant may not use or that does not
        exist."""
        agent = snapshot.agent_for(body.agent, caller.tenant)
        if agent is None:
            raise ApiError(404, ErrorType.NOT_FOUND, f"agent {body.agent!r} not found")
        self.check_limits(body.message, body.model, len(json.dumps(body.metadata)), snapshot.config)
        return agent

    def check_limits(
        self, message: str, model: str | None, metadata_size: int, config: AgentConfig
    ) -> None:
        """Limits that depend on settings and the config in force (422 in the error shape)."""
        settings = self.settings
        if len(message) > settings.max_message_chars:
            raise ApiError(
                422,
                ErrorType.INVALID_REQUEST,
                f"message: longer than {settings.max_message_chars} characters",
            )
        if model is not None and model not in config.model_names:
            known = ", ".join(config.model_names)
            raise ApiError(
                422,
                ErrorType.INVALID_REQUEST,
                f"model: {model!r} is not configured (known: {known})",
            )
        if metadata_size > settings.max_metadata_bytes:
            raise ApiError(
                422,
                ErrorType.INVALID_REQUEST,
                f"metadata: larger than {settings.max_metadata_bytes} bytes as JSON",
            )

    async def admit(self, caller: Caller, config: AgentConfig) -> dict[str, str]:
        """Count a run against the caller's rates and budgets under ``config``: 429 when one is
        exhausted (with ``Retry-After`` and ``X-RateLimit-*``), else the headers to add to the
        answer."""
        admission = await self.limiter.admit(caller, config.limits_for(caller.tenant))
        headers = rate_headers(admission)
        if admission.allowed:
            return headers
        reason = admission.reason or "requests_per_minute"
        self.metrics.rate_limited.labels(reason).inc()
        daily = reason.startswith("daily_")
        error = ErrorType.BUDGET_EXCEEDED if daily else ErrorType.RATE_LIMITED
        raise ApiError(
            429,
            error,
            _RATE_MESSAGES.get(reason, reason),
            headers={**headers, "Retry-After": str(admission.retry_after)},
        )

    def guard(self, caller: Caller, config: AgentConfig) -> RedisRunGuard | None:
        """The between-steps guard of a sync run (None when there is nothing to check)."""
        return self.guards.for_run(caller, config.limits_for(caller.tenant))
