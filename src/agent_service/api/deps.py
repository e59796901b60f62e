"""FastAPI dependencies: the process's services from the lifespan state, request checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agent_service.api.errors import ApiError
from agent_service.config import Settings
from agent_service.domain.errors import ErrorType
from agent_service.queue.producer import TaskQueue
from agent_service.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.state.services
    return services


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.services.settings
    return settings


def get_queue(request: Request) -> TaskQueue:
    queue: TaskQueue = request.state.task_queue
    return queue


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(
            415,
            ErrorType.UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with content-type: application/json",
        )


ServicesDep = Annotated[Services, Depends(get_services)]
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
