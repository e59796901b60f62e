"""Traces end to end: real API and worker processes export OTLP/HTTP to a receiver in the test.

One queued run must be one trace: the API's server span, the producer span, the worker's Celery
span, ``invoke_agent``, a ``chat`` span per LLM call and an ``execute_tool`` span per tool call,
with the GenAI attributes; the trace id is the one the API announced (``X-Trace-Id``) and the
task record's. Without ``OTEL_*`` variables spans still get trace ids and nothing is exported.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.integration.stack import StackEnv, parse_sse, wait_task
from tests.procs import Proc

pytestmark = pytest.mark.integration

CALC = {"message": "what is 12*(3+4)?"}
PROMPT_TEXT = "12*(3+4)"
SERVER, CLIENT, PRODUCER, CONSUMER = (
    SpanProto.SPAN_KIND_SERVER,
    SpanProto.SPAN_KIND_CLIENT,
    SpanProto.SPAN_KIND_PRODUCER,
    SpanProto.SPAN_KIND_CONSUMER,
)
CONTENT_ATTRIBUTES = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
}


# --- an OTLP/HTTP trace receiver -------------------------------------------------------------


@dataclass
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    status: int
    events: list[str]
    start_ns: int
    end_ns: int


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _decode(body: bytes) -> list[ReceivedSpan]:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        service=str(resource.get("service.name")),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=span.kind,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        status=span.status.code,
                        events=[e.name for e in span.events],
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


class Collector:
    """Answers ``POST /v1/traces`` like an OpenTelemetry collector and keeps what it got."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                encoding = self.headers.get("content-encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                ok = self.path == "/v1/traces"
                if ok:
                    collector.add(_decode(body))
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if ok else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self.requests += 1
            self.spans.extend(spans)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_trace(
        self, trace_id: str, done: Callable[[list[ReceivedSpan]], bool], timeout: float = 20
    ) -> list[ReceivedSpan]:
        """The spans of ``trace_id`` once ``done(spans)`` holds (batches arrive every 200 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.trace(trace_id)
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted(f"{s.service}:{s.name}" for s in spans)
                raise TimeoutError(f"trace {trace_id} incomplete after {timeout}s: {names}")
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def named(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = named(spans, name)
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def has_names(*names: str, chats: int = 0) -> Callable[[list[ReceivedSpan]], bool]:
    def done(spans: list[ReceivedSpan]) -> bool:
        got = [s.name for s in spans]
        return all(n in got for n in names) and got.count("chat sim") >= chats

    return done


def log_lines(proc: Proc) -> list[dict[str, Any]]:
    lines = []
    for line in proc.log().splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.close()


def otel_env(collector: Collector, **more: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        **more,
    }


@pytest.fixture(scope="module")
def traced_api(stack_env: StackEnv, collector: Collector) -> Iterator[tuple[Proc, str]]:
    proc, url = stack_env.start_api(**otel_env(collector))
    yield proc, url
    proc.stop()


@pytest.fixture(scope="module")
def traced_worker(stack_env: StackEnv, collector: Collector) -> Iterator[Proc]:
    proc = stack_env.start_worker(**otel_env(collector))
    yield proc
    proc.stop()


@pytest.fixture
def traced(traced_api: tuple[Proc, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=traced_api[1], timeout=30) as http:
        yield http


# --- tests -----------------------------------------------------------------------------------


def test_a_queued_run_is_one_trace_from_request_to_tool_call(
    traced: httpx.Client, traced_api: tuple[Proc, str], traced_worker: Proc, collector: Collector
) -> None:
    resp = traced.post("/v1/tasks", json=CALC)
    assert resp.status_code == 202, resp.text
    trace_id = resp.headers["x-trace-id"]
    assert len(trace_id) == 32 and int(trace_id, 16)
    record = wait_task(traced, resp.json()["task_id"], {"succeeded", "failed"})
    assert record["status"] == "succeeded", record
    assert record["trace_id"] == trace_id
    assert record["result"]["trace_id"] == trace_id

    expected = ("POST /v1/tasks", "send agent_service.run", "run/agent_service.run")
    spans = collector.wait_trace(
        trace_id, has_names(*expected, "invoke_agent default", "execute_tool calculator", chats=2)
    )
    by_id = {s.span_id: s for s in spans}

    server = one(spans, "POST /v1/tasks")
    assert (server.service, server.kind, server.parent_id) == ("agent-service-api", SERVER, "")
    assert server.attributes["http.route"] == "/v1/tasks"
    producer = one(spans, "send agent_service.run")
    assert (producer.service, producer.kind) == ("agent-service-api", PRODUCER)
    assert by_id[producer.parent_id] is server
    assert producer.attributes["messaging.destination.name"] == record["queue"]

    # The worker's Celery instrumentation continued the hand-built message's traceparent.
    task = one(spans, "run/agent_service.run")
    assert (task.service, task.kind, task.parent_id) == (
        "agent-service-worker",
        CONSUMER,
        producer.span_id,
    )
    assert task.attributes["agent.task.id"] == record["task_id"]
    assert task.attributes["agent.task.attempt"] == 1
    assert task.attributes["agent.queue_wait_seconds"] >= 0
    wait = one(spans, "queue_wait")
    assert wait.parent_id == producer.span_id
    assert wait.start_ns == pytest.approx(record["created_at"] * 1e9, abs=1e6)
    assert wait.end_ns == pytest.approx(record["started_at"] * 1e9, abs=1e6)

    agent = one(spans, "invoke_agent default")
    assert agent.parent_id == task.span_id
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "default"
    assert agent.attributes["gen_ai.request.model"] == "sim"
    assert agent.attributes["gen_ai.response.model"] == "sim"
    assert agent.attributes["gen_ai.usage.input_tokens"] == record["usage"]["input_tokens"]
    assert agent.attributes["gen_ai.usage.output_tokens"] == record["usage"]["output_tokens"]
    assert agent.attributes["agent.cost_usd"] == pytest.approx(record["usage"]["cost_usd"])

    chats = named(spans, "chat sim")
    assert len(chats) == 2
    for chat in chats:
        assert (chat.parent_id, chat.kind) == (agent.span_id, CLIENT)
        attributes = chat.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == "sim"
        assert attributes["gen_ai.response.model"] == "sim"
        assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "openai"
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
        assert attributes["agent.cost_usd"] > 0
        assert chat.status != Status.STATUS_CODE_ERROR
    tool = one(spans, "execute_tool calculator")
    assert tool.parent_id == agent.span_id
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    steps = [s.start_ns for s in sorted([*chats, tool], key=lambda s: s.start_ns)]
    assert [by_start.name for by_start in sorted([*chats, tool], key=lambda s: s.start_ns)] == [
        "chat sim",
        "execute_tool calculator",
        "chat sim",
    ], steps

    # Prompt and completion text stay off spans unless AGENT_TRACING_CAPTURE_CONTENT is on.
    for span in spans:
        assert not CONTENT_ATTRIBUTES & set(span.attributes), span
        assert not any(PROMPT_TEXT in str(v) for v in span.attributes.values()), span

    # Log lines of both processes carry the trace.
    api_lines = [line for line in log_lines(traced_api[0]) if line.get("trace_id") == trace_id]
    assert any(line.get("route") == "/v1/tasks" and line.get("span_id") for line in api_lines)
    worker_lines = [line for line in log_lines(traced_worker) if line.get("trace_id") == trace_id]
    assert any(line.get("task_id") == record["task_id"] for line in worker_lines)


def test_an_incoming_traceparent_is_continued_through_the_queue(
    traced: httpx.Client, traced_worker: Proc, collector: Collector
) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    resp = traced.post(
        "/v1/tasks", json=CALC, headers={"traceparent": traceparent(trace_id, parent)}
    )
    assert resp.status_code == 202, resp.text
    assert resp.headers["x-trace-id"] == trace_id
    record = wait_task(traced, resp.json()["task_id"], {"succeeded", "failed"})
    assert record["trace_id"] == record["result"]["trace_id"] == trace_id
    spans = collector.wait_trace(
        trace_id, has_names("POST /v1/tasks", "invoke_agent default", chats=2)
    )
    assert one(spans, "POST /v1/tasks").parent_id == parent


def test_sync_and_streamed_runs_carry_their_trace_id(
    traced: httpx.Client, collector: Collector
) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    resp = traced.post(
        "/v1/chat", json=CALC, headers={"traceparent": traceparent(trace_id, parent)}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-trace-id"] == resp.json()["trace_id"] == trace_id
    spans = collector.wait_trace(
        trace_id, has_names("POST /v1/chat", "invoke_agent default", chats=2)
    )
    assert one(spans, "POST /v1/chat").parent_id == parent
    assert one(spans, "invoke_agent default").attributes["agent.mode"] == "sync"

    resp = traced.post("/v1/chat", json={**CALC, "stream": True})
    assert resp.status_code == 200, resp.text
    done = [e for e in parse_sse(resp.text) if e.get("event") == "done"]
    assert len(done) == 1
    assert done[0]["data"]["trace_id"] == resp.headers["x-trace-id"]
    streamed = collector.wait_trace(resp.headers["x-trace-id"], has_names("invoke_agent default"))
    assert one(streamed, "invoke_agent default").attributes["agent.mode"] == "stream"


def test_failed_llm_calls_are_error_spans(traced: httpx.Client, collector: Collector) -> None:
    resp = traced.post("/v1/chat", json={**CALC, "model": "broken"})
    assert resp.status_code == 503, resp.text
    trace_id = resp.headers["x-trace-id"]
    spans = collector.wait_trace(
        trace_id, has_names("POST /v1/chat", "invoke_agent default", "chat broken")
    )
    for name in ("invoke_agent default", "chat broken"):
        span = one(spans, name)
        assert span.status == Status.STATUS_CODE_ERROR, span
        assert "exception" in span.events, span
        assert span.attributes["error.type"] == "llm_unavailable"


def test_probes_and_metrics_are_not_traced(
    traced: httpx.Client, traced_api: tuple[Proc, str], collector: Collector
) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        resp = traced.get(path)
        assert resp.status_code == 200, path
        assert "x-trace-id" not in resp.headers, path
    time.sleep(0.6)  # three batch intervals
    assert not [
        s
        for s in collector.spans
        if s.attributes.get("http.route") in {"/healthz", "/readyz", "/metrics"}
    ]


def test_capture_content_records_prompt_and_completion(
    stack_env: StackEnv, collector: Collector
) -> None:
    proc, url = stack_env.start_api(**otel_env(collector, AGENT_TRACING_CAPTURE_CONTENT="true"))
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            resp = http.post("/v1/chat", json=CALC)
        assert resp.status_code == 200, resp.text
        trace_id = resp.headers["x-trace-id"]
        spans = collector.wait_trace(
            trace_id, has_names("invoke_agent default", "execute_tool calculator", chats=2)
        )
    finally:
        proc.stop()
    first, second = sorted(named(spans, "chat sim"), key=lambda s: s.start_ns)
    sent = json.loads(first.attributes["gen_ai.input.messages"])
    assert sent[-1]["role"] == "user"
    assert sent[-1]["parts"] == [{"type": "text", "content": CALC["message"]}]
    called = json.loads(first.attributes["gen_ai.output.messages"])[0]["parts"]
    assert [p["name"] for p in called if p["type"] == "tool_call"] == ["calculator"]
    answer = json.loads(second.attributes["gen_ai.output.messages"])[0]["parts"]
    assert "84" in answer[0]["content"]
    tool = one(spans, "execute_tool calculator")
    assert "12" in tool.attributes["gen_ai.tool.call.arguments"]
    assert "84" in tool.attributes["gen_ai.tool.call.result"]


def test_without_otel_variables_runs_get_trace_ids_and_nothing_is_exported(
    client: httpx.Client, api: tuple[Proc, str]
) -> None:
    # `api` (conftest) runs with a clean environment: no OTEL_* variable at all.
    resp = client.post("/v1/chat", json=CALC)
    assert resp.status_code == 200, resp.text
    trace_id = resp.json()["trace_id"]
    assert len(trace_id) == 32 and int(trace_id, 16)
    assert resp.headers["x-trace-id"] == trace_id
    log = api[0].log()
    assert "spans get trace ids but are not exported" in log
    assert "exporting spans" not in log
    assert "Failed to export" not in log
