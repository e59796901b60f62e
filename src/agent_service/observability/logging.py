"""Structured logs: JSON lines on stdout, one format for our code, uvicorn, gunicorn and Celery.

``configure_logging`` is called once by each entry point. Context (``request_id``, ``task_id``)
comes from structlog contextvars bound by the API middleware and the worker; ``trace_id`` and
``span_id`` come from the active OpenTelemetry span. Secrets never reach
a line: values of sensitive keys and bearer tokens inside messages are redacted. With
``AGENT_LOG_MASK_PII`` e-mail addresses and phone numbers are masked too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from agent_service.settings import LogSettings

_SENSITIVE_KEYS = frozenset(
    {"authorization", "api_key", "apikey", "x-api-key", "password", "token", "secret", "cookie"}
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_KEYLIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Digit groups joined by spaces, dashes or parentheses, optionally after a "+country" prefix:
# "+1-415-555-0123", "(415) 555 0123", "+44 20 7946 0958". Dots are not separators (IP
# addresses, versions), a match may not run into a time ("04:14") or decimal, and it must
# have 9 to 15 digits (E.164): dates, times, durations and ids are left alone.
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d{1,4}\)?(?:[ -]?\(?\d{2,4}\)?){2,5}(?![\w-]|[:.]\d)")
_PHONE_DIGITS = range(9, 16)


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    has_separator = any(c in " -()" for c in text) or text.startswith("+")
    return "[phone]" if digits in _PHONE_DIGITS and has_separator else text


def mask_pii_text(text: str) -> str:
    """Replace e-mail addresses with ``[email]`` and phone numbers with ``[phone]``."""
    return _PHONE.sub(_mask_phone, _EMAIL.sub("[email]", text))


def mask_pii(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor (``AGENT_LOG_MASK_PII``): mask PII in every string value."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str) and key not in ("timestamp", "trace_id", "span_id"):
            event_dict[key] = mask_pii_text(value)
    return event_dict


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


def add_trace_context(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the active span, when there is one."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(span_context.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(span_context.span_id))
    return event_dict


def configure_logging(settings: LogSettings, component: str, stream: TextIO | None = None) -> None:
    """Route stdlib and structlog logging to stdout (or ``stream``: a command whose stdout is
    its answer logs to stderr) as JSON (or console) lines."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_extra,
        add_trace_context,
        redact,
    ]
    if settings.mask_pii:
        shared.append(mask_pii)
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
    handler = logging.StreamHandler(stream or sys.stdout)
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
