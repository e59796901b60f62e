"""Structured logs: JSON lines on stdout, one format for our code, uvicorn, gunicorn and Celery.

``configure_logging`` is called once by each entry point. Context (``request_id``, ``task_id``)
comes from structlog contextvars bound by the API middleware and the worker. Secrets never reach
a line: values of sensitive keys and bearer tokens inside messages are redacted.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from agent_service.config import LogSettings

_SENSITIVE_KEYS = frozenset(
    {"authorization", "api_key", "apikey", "x-api-key", "password", "token", "secret", "cookie"}
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_KEYLIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}")


def _redact_text(text: str) -> str:
    return _KEYLIKE.sub(r"\1-***", _BEARER.sub(r"\1 ***", text))


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask sensitive keys and token-like strings."""
    for key, value in list(event_dict.items()):
        if key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = "***"
        elif isinstance(value, str):
            event_dict[key] = _redact_text(value)
    return event_dict


def _add_extra(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Copy ``extra={...}`` fields of stdlib records (e.g. ``task_id``) into the line."""
    record = event_dict.get("_record")
    if record is not None:
        for key in ("task_id", "request_id", "attempt", "duration_ms", "error_type"):
            value = getattr(record, key, None)
            if value is not None:
                event_dict.setdefault(key, value)
    return event_dict


def configure_logging(settings: LogSettings, component: str) -> None:
    """Route stdlib and structlog logging to stdout as JSON (or console) lines."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_extra,
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if settings.json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "celery"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The access log is written by our middleware (one line per request, with request_id).
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(component=component)
