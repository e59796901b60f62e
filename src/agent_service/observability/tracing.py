"""OpenTelemetry traces: the process's tracer provider, its exporter, and context helpers.

``configure_tracing`` is called once per process by the entry points: ``api.server`` (before
uvicorn starts, or in each gunicorn worker after fork) and ``worker.main`` (before the loop
thread starts). Export is driven only by the standard ``OTEL_*`` variables (read through
``settings.otel_environment``): with no endpoint set, spans still get real trace ids (so results
and ``X-Trace-Id`` carry them) but nothing is exported and nothing touches the network.
The instrumentations themselves live with the frameworks they wrap (``api.app`` instruments
FastAPI, ``worker.main`` instruments Celery); the agent loop's own spans are in ``agent.spans``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from agent_service import __version__
from agent_service.settings import TracingSettings, otel_environment

log = logging.getLogger(__name__)

API_SERVICE_NAME = "agent-service-api"
WORKER_SERVICE_NAME = "agent-service-worker"

HTTP_PROTOBUF = "http/protobuf"
GRPC = "grpc"
_DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_GRPC_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"

_tracer = trace.get_tracer(__name__)

TRACE_HEADERS = ("traceparent", "tracestate")
"""The W3C trace context headers a task message carries."""


@dataclass(frozen=True)
class ExportPlan:
    """Where spans go, decided from the ``OTEL_*`` variables alone (no I/O).

    ``exporters`` holds ``otlp`` and/or ``console``; ``protocol`` is the OTLP protocol;
    ``problems`` are settings that were ignored, to be logged.
    """

    exporters: tuple[str, ...]
    protocol: str = HTTP_PROTOBUF
    endpoint: str = ""
    problems: tuple[str, ...] = ()


def sdk_disabled(env: Mapping[str, str]) -> bool:
    """``OTEL_SDK_DISABLED=true``: no provider, no spans, no trace ids."""
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _traces_endpoint(env: Mapping[str, str], protocol: str) -> str:
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if protocol == GRPC:
        return base or "http://localhost:4317"
    # The HTTP exporter appends the signal path to the generic endpoint (OTLP spec).
    return f"{(base or _DEFAULT_HTTP_ENDPOINT).rstrip('/')}/v1/traces"


def export_plan(env: Mapping[str, str]) -> ExportPlan:
    """Decide the exporters from ``OTEL_TRACES_EXPORTER``, the OTLP endpoints and protocol.

    Unlike the SDK's auto-configuration, OTLP is used only when asked for (an endpoint, or
    ``OTEL_TRACES_EXPORTER=otlp``): a process with no ``OTEL_*`` variable sends nothing.
    """
    problems: list[str] = []
    named = [v.strip().lower() for v in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [v for v in named if v]
    if named:
        exporters = [v for v in named if v in ("otlp", "console")]
        problems += [
            f"OTEL_TRACES_EXPORTER={v!r} is not supported (otlp, console, none)"
            for v in named
            if v not in ("otlp", "console", "none")
        ]
    else:
        exporters = ["otlp"] if any(env.get(var) for var in _ENDPOINT_VARS) else []
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or HTTP_PROTOBUF
    ).strip()
    endpoint = ""
    if "otlp" in exporters:
        if protocol not in (HTTP_PROTOBUF, GRPC):
            problems.append(
                f"OTLP protocol {protocol!r} is not supported ({HTTP_PROTOBUF}, {GRPC}): "
                "spans are not exported over OTLP"
            )
            exporters.remove("otlp")
        else:
            endpoint = _traces_endpoint(env, protocol)
    return ExportPlan(tuple(dict.fromkeys(exporters)), protocol, endpoint, tuple(problems))


def _otlp_exporter(protocol: str) -> SpanExporter | None:
    """The OTLP exporter for ``protocol``; it reads its endpoint, headers, timeout from env."""
    if protocol == GRPC:
        try:
            module: Any = importlib.import_module(_GRPC_EXPORTER)
        except ImportError:
            log.error(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc, "
                "which is not installed: spans are not exported (use http/protobuf)"
            )
            return None
        exporter: SpanExporter = module.OTLPSpanExporter()
        return exporter
    # Imported only when exporting: it pulls in requests and protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()


def build_resource(service_name: str) -> Resource:
    """The process's resource: ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` win;
    the service name defaults to ``service_name`` and the version to the package's."""
    detected = Resource.create()
    attributes = dict(detected.attributes)
    if str(attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        attributes[SERVICE_NAME] = service_name
    attributes.setdefault(SERVICE_VERSION, __version__)
    return Resource(attributes, detected.schema_url)


def build_tracer_provider(
    service_name: str, env: Mapping[str, str]
) -> tuple[TracerProvider | None, ExportPlan]:
    """A tracer provider for ``env`` (None when the SDK is disabled) and its export plan.

    The sampler comes from ``OTEL_TRACES_SAMPLER``/``_ARG`` and batching from ``OTEL_BSP_*``
    (the SDK reads them itself).
    """
    plan = export_plan(env)
    if sdk_disabled(env):
        return None, plan
    provider = TracerProvider(resource=build_resource(service_name))
    for name in plan.exporters:
        exporter = _otlp_exporter(plan.protocol) if name == "otlp" else ConsoleSpanExporter()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, plan


def configure_tracing(
    service_name: str, settings: TracingSettings, env: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """Install this process's tracer provider as the global one; returns it (None if disabled).

    Call once per process, after any fork (a batch processor owns a thread). A second call
    returns the provider already installed.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    env = otel_environment() if env is None else env
    provider, plan = build_tracer_provider(service_name, env)
    for problem in plan.problems:
        log.warning("tracing: %s", problem)
    if provider is None:
        log.info("tracing: off (OTEL_SDK_DISABLED=true)")
        return None
    trace.set_tracer_provider(provider)
    if "otlp" in plan.exporters:
        log.info("tracing: exporting spans over OTLP %s to %s", plan.protocol, plan.endpoint)
    elif not plan.exporters:
        log.info(
            "tracing: spans get trace ids but are not exported "
            "(set OTEL_EXPORTER_OTLP_ENDPOINT to export them)"
        )
    if settings.capture_content:
        log.warning("tracing: prompt and completion text is recorded on spans")
    return provider


def flush_traces(provider: TracerProvider | None, timeout_millis: int = 5000) -> None:
    """Export the spans still buffered (on shutdown; the SDK also does it at exit)."""
    if provider is not None:
        provider.force_flush(timeout_millis)


def current_trace_id() -> str | None:
    """The active span's trace id (32 hex digits), or None without one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return trace.format_trace_id(span_context.trace_id)


def tag_current_span(key: str, value: str) -> None:
    """Set one attribute on the active span (no-op without one)."""
    trace.get_current_span().set_attribute(key, value)


def inject_context(carrier: MutableMapping[str, str]) -> None:
    """Write the active context into ``carrier`` (W3C ``traceparent``/``tracestate``)."""
    propagate.inject(carrier)


def extract_context(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context a message's headers carry (empty when they carry none)."""
    return propagate.extract(carrier)


@contextmanager
def attached(context: otel_context.Context | None) -> Iterator[None]:
    """Make ``context`` the active one inside the block (no-op for None).

    The worker hands the Celery task's context to its coroutine on the loop thread with it:
    the run must not depend on contextvars following ``run_coroutine_threadsafe``.
    """
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def _unix_ns(seconds: float) -> int:
    # Via whole microseconds: a float holds those exactly, not nanoseconds of today's epoch.
    return round(seconds * 1_000_000) * 1000


def record_queue_wait(
    *,
    queue: str,
    task_id: str,
    attempt: int,
    created_at: float,
    started_at: float | None,
    sent_from: otel_context.Context | None = None,
    tracer: trace.Tracer | None = None,
) -> None:
    """Make a task's time in the queue visible in its trace.

    The active (task) span gets ``agent.task.id``, ``agent.task.attempt`` and, on the first
    delivery, ``agent.queue_wait_seconds``; then a ``queue_wait`` span also covers
    ``created_at`` .. ``started_at``, beside the task span, under the producer's span
    (``sent_from``; none when the message carried no trace context).
    """
    wait = max(0.0, (started_at or created_at) - created_at)
    span = trace.get_current_span()
    span.set_attribute("agent.task.id", task_id)
    span.set_attribute("agent.task.attempt", attempt)
    span.set_attribute("messaging.destination.name", queue)
    if attempt != 1 or started_at is None:
        return
    span.set_attribute("agent.queue_wait_seconds", round(wait, 6))
    if sent_from is None or not trace.get_current_span(sent_from).get_span_context().is_valid:
        return
    start_ns = _unix_ns(created_at)
    # Clocks of the API and worker hosts may disagree: never end before the start.
    end_ns = max(start_ns, _unix_ns(started_at))
    waited = (tracer or _tracer).start_span(
        "queue_wait",
        context=sent_from,
        kind=trace.SpanKind.INTERNAL,
        start_time=start_ns,
        attributes={
            "messaging.destination.name": queue,
            "agent.task.id": task_id,
            "agent.queue_wait_seconds": round(wait, 6),
        },
    )
    waited.end(end_time=end_ns)
