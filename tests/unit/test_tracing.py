"""Tracing set-up and context helpers: the export plan, the provider, the resource, logs."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_service.observability import tracing
from agent_service.observability.logging import add_trace_context
from agent_service.observability.tracing import ExportPlan, export_plan
from agent_service.settings import TracingSettings

EP = "http://collector:4318"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ExportPlan(())),
        ({"OTEL_SERVICE_NAME": "x"}, ExportPlan(())),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": EP},
            ExportPlan(("otlp",), "http/protobuf", f"{EP}/v1/traces"),
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": f"{EP}/"},
            ExportPlan(("otlp",), "http/protobuf", f"{EP}/v1/traces"),
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{EP}/custom",
                "OTEL_EXPORTER_OTLP_ENDPOINT": EP,
            },
            ExportPlan(("otlp",), "http/protobuf", f"{EP}/custom"),
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp"},
            ExportPlan(("otlp",), "http/protobuf", "http://localhost:4318/v1/traces"),
        ),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": EP}, ExportPlan(())),
        ({"OTEL_TRACES_EXPORTER": "console"}, ExportPlan(("console",))),
        (
            {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_ENDPOINT": EP},
            ExportPlan(("otlp", "console"), "http/protobuf", f"{EP}/v1/traces"),
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ExportPlan(("otlp",), "grpc", "http://c:4317"),
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": EP,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ExportPlan(("otlp",), "http/protobuf", f"{EP}/v1/traces"),
        ),
    ],
)
def test_export_plan(env: dict[str, str], expected: ExportPlan) -> None:
    assert export_plan(env) == expected


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": EP, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "'http/json' is not supported",
        ),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "'zipkin' is not supported"),
    ],
)
def test_unsupported_settings_are_reported_not_used(env: dict[str, str], problem: str) -> None:
    plan = export_plan(env)
    assert plan.exporters == ()
    assert any(problem in p for p in plan.problems)


def _processors(provider: TracerProvider) -> tuple[Any, ...]:
    return tuple(provider._active_span_processor._span_processors)


def test_no_otel_variables_give_trace_ids_and_no_exporter() -> None:
    provider, plan = tracing.build_tracer_provider("svc", {})
    assert provider is not None and plan.exporters == ()
    assert _processors(provider) == ()  # nothing to export to: no thread, no network
    with provider.get_tracer("t").start_as_current_span("s") as span:
        assert span.get_span_context().is_valid
        assert tracing.current_trace_id() == trace.format_trace_id(span.get_span_context().trace_id)
    assert tracing.current_trace_id() is None
    provider.shutdown()


def test_an_endpoint_adds_one_batching_otlp_http_exporter() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider, _ = tracing.build_tracer_provider("svc", {"OTEL_EXPORTER_OTLP_ENDPOINT": EP})
    assert provider is not None
    (processor,) = _processors(provider)
    assert isinstance(processor, BatchSpanProcessor)
    assert isinstance(processor._batch_processor._exporter, OTLPSpanExporter)
    provider.shutdown()  # no span was made: nothing is sent


def test_grpc_without_its_package_exports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": EP, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    try:
        import opentelemetry.exporter.otlp.proto.grpc  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the gRPC exporter is installed here")
    provider, _ = tracing.build_tracer_provider("svc", env)
    assert provider is not None and _processors(provider) == ()
    assert "opentelemetry-exporter-otlp-proto-grpc" in caplog.text
    provider.shutdown()


def test_sdk_disabled_means_no_provider() -> None:
    env = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": EP}
    assert tracing.build_tracer_provider("svc", env)[0] is None
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        assert tracing.configure_tracing("svc", TracingSettings(), env) is None
        assert not isinstance(trace.get_tracer_provider(), TracerProvider)


def test_resource_defaults_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    attributes = tracing.build_resource("agent-service-api").attributes
    assert attributes["service.name"] == "agent-service-api"
    assert attributes["service.version"]
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,k8s.pod.name=p-1")
    attributes = tracing.build_resource("agent-service-api").attributes
    assert (attributes["service.name"], attributes["k8s.pod.name"]) == ("from-attrs", "p-1")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-name")
    assert tracing.build_resource("agent-service-api").attributes["service.name"] == "from-name"


@pytest.fixture
def recorded() -> tuple[InMemorySpanExporter, trace.Tracer]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider.get_tracer("test")


def test_context_round_trips_through_message_headers(
    recorded: tuple[InMemorySpanExporter, trace.Tracer],
) -> None:
    _, tracer = recorded
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span("send") as span:
        tracing.inject_context(carrier)
    assert set(carrier) >= {"traceparent"}
    remote = trace.get_current_span(tracing.extract_context(carrier)).get_span_context()
    assert (remote.trace_id, remote.span_id) == (
        span.get_span_context().trace_id,
        span.get_span_context().span_id,
    )
    assert not trace.get_current_span(tracing.extract_context({})).get_span_context().is_valid


def test_attached_makes_a_context_current_and_restores_the_previous_one(
    recorded: tuple[InMemorySpanExporter, trace.Tracer],
) -> None:
    _, tracer = recorded
    span = tracer.start_span("task")
    with tracing.attached(trace.set_span_in_context(span)):
        assert trace.get_current_span() is span
    assert trace.get_current_span() is not span
    with tracing.attached(None):
        assert not trace.get_current_span().get_span_context().is_valid


def _remote_parent() -> tuple[otel_context.Context, trace.SpanContext]:
    parent = trace.SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent)), parent


def _by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_queue_wait_is_a_span_under_the_producer_and_an_attribute_of_the_task(
    recorded: tuple[InMemorySpanExporter, trace.Tracer],
) -> None:
    exporter, tracer = recorded
    sent_from, producer = _remote_parent()
    with tracer.start_as_current_span("run/agent_service.run", context=sent_from):
        tracing.record_queue_wait(
            queue="agent",
            task_id="t1",
            attempt=1,
            created_at=1_700_000_000.25,
            started_at=1_700_000_002.75,
            sent_from=sent_from,
            tracer=tracer,
        )
    spans = _by_name(exporter)
    wait, task = spans["queue_wait"], spans["run/agent_service.run"]
    assert wait.parent is not None and wait.parent.span_id == producer.span_id
    assert wait.context.trace_id == task.context.trace_id == producer.trace_id
    assert wait.start_time == 1_700_000_000_250_000_000
    assert wait.end_time == 1_700_000_002_750_000_000
    assert task.attributes is not None
    assert task.attributes["agent.queue_wait_seconds"] == pytest.approx(2.5)
    assert (task.attributes["agent.task.id"], task.attributes["agent.task.attempt"]) == ("t1", 1)


@pytest.mark.parametrize(
    ("attempt", "started_at", "with_parent"),
    [(2, 1.0, True), (1, None, True), (1, 1.0, False)],
)
def test_no_queue_wait_span_for_redeliveries_or_without_a_producer(
    recorded: tuple[InMemorySpanExporter, trace.Tracer],
    attempt: int,
    started_at: float | None,
    with_parent: bool,
) -> None:
    exporter, tracer = recorded
    sent_from = _remote_parent()[0] if with_parent else otel_context.Context()
    with tracer.start_as_current_span("task"):
        tracing.record_queue_wait(
            queue="agent",
            task_id="t1",
            attempt=attempt,
            created_at=0.5,
            started_at=started_at,
            sent_from=sent_from,
            tracer=tracer,
        )
    assert list(_by_name(exporter)) == ["task"]


def test_queue_wait_never_ends_before_it_starts(
    recorded: tuple[InMemorySpanExporter, trace.Tracer],
) -> None:
    exporter, tracer = recorded
    sent_from, _ = _remote_parent()
    tracing.record_queue_wait(
        queue="agent",
        task_id="t1",
        attempt=1,
        created_at=10.0,
        started_at=9.0,  # the worker's clock is behind the API's
        sent_from=sent_from,
        tracer=tracer,
    )
    wait = _by_name(exporter)["queue_wait"]
    assert wait.start_time == wait.end_time


def test_log_lines_carry_the_active_span(
    recorded: tuple[InMemorySpanExporter, trace.Tracer],
) -> None:
    _, tracer = recorded
    assert add_trace_context(None, "info", {"event": "x"}) == {"event": "x"}
    with tracer.start_as_current_span("s") as span:
        line = dict(add_trace_context(None, "info", {"event": "x"}))
    context = span.get_span_context()
    assert line == {
        "event": "x",
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
    }
