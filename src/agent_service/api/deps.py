"""FastAPI dependencies: the process's services from the lifespan state, the caller (API key),
run admission (rate limits and budgets), request checks.

Dependencies are ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread handoff per dependency per request (measured: a quarter of the CPU
of ``POST /v1/tasks``)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request

from agent_service.api.auth import KeyRing, presented_key
from agent_service.api.errors import ApiError
from agent_service.config import Settings
from agent_service.domain.callers import ANONYMOUS, Caller
from agent_service.domain.errors import ErrorType
from agent_service.queue.producer import TaskQueue
from agent_service.services import Services
from agent_service.store.limits import BUDGET_MESSAGES, Admission

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="agent-service"'}
_RATE_MESSAGES = {
    "requests_per_minute": "too many requests for this API key: the per-minute limit is reached",
    "tokens_per_minute": "this API key used its LLM tokens for this minute",
    **BUDGET_MESSAGES,
}


async def get_services(request: Request) -> Services:
    services: Services = request.state.services
    return services


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.services.settings
    return settings


async def get_queue(request: Request) -> TaskQueue:
    queue: TaskQueue = request.state.task_queue
    return queue


async def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(
            415,
            ErrorType.UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with content-type: application/json",
        )


async def get_caller(request: Request) -> Caller:
    """The caller of a /v1 request: its API key's tenant (401 without a valid key), or the
    anonymous ``default`` tenant when authentication is off."""
    services: Services = request.state.services
    if not services.settings.auth.enabled:
        caller = ANONYMOUS
    else:
        keyring: KeyRing = request.state.keyring
        key = presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
        if key is None:
            raise ApiError(
                401,
                ErrorType.UNAUTHORIZED,
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                headers=_CHALLENGE,
            )
        found = keyring.lookup(key)
        if found is None:
            raise ApiError(401, ErrorType.UNAUTHORIZED, "invalid API key", headers=_CHALLENGE)
        caller = found
    request.state.caller = caller
    structlog.contextvars.bind_contextvars(tenant=caller.tenant, key_id=caller.key_id)
    return caller


def rate_headers(admission: Admission) -> dict[str, str]:
    """``X-RateLimit-*`` of the per-minute request limit (none when it is not set)."""
    if admission.limit is None or admission.remaining is None:
        return {}
    return {
        "X-RateLimit-Limit": str(admission.limit),
        "X-RateLimit-Remaining": str(admission.remaining),
        "X-RateLimit-Reset": str(admission.reset),
    }


async def admit_run(services: Services, caller: Caller) -> dict[str, str]:
    """Count a run against the caller's rates and budgets: 429 when one is exhausted (with
    ``Retry-After`` and ``X-RateLimit-*``), else the headers to add to the answer."""
    limits = services.config.limits_for(caller.tenant)
    admission = await services.limiter.admit(caller, limits)
    headers = rate_headers(admission)
    if admission.allowed:
        return headers
    reason = admission.reason or "requests_per_minute"
    services.metrics.rate_limited.labels(reason).inc()
    error = ErrorType.BUDGET_EXCEEDED if reason.startswith("daily_") else ErrorType.RATE_LIMITED
    raise ApiError(
        429,
        error,
        _RATE_MESSAGES.get(reason, reason),
        headers={**headers, "Retry-After": str(admission.retry_after)},
    )


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
QueueDep = Annotated[TaskQueue, Depends(get_queue)]
JsonBody = Depends(require_json)


def check_run_body(message: str, model: str | None, metadata_size: int, services: Services) -> None:
    """Limits that depend on settings and the config in force (422 in the error shape)."""
    settings = services.settings.api
    if len(message) > settings.max_message_chars:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            f"message: longer than {settings.max_message_chars} characters",
        )
    if model is not None and model not in services.config.model_names:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            f"model: {model!r} is not configured (known: {', '.join(services.config.model_names)})",
        )
    if metadata_size > settings.max_metadata_bytes:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            f"metadata: larger than {settings.max_metadata_bytes} bytes as JSON",
        )
