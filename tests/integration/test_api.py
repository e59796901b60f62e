"""The API over HTTP against a real server process, the simulator and Redis."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.integration.stack import parse_sse


def assert_error_shape(resp: httpx.Response, status: int, error_type: str) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["type"] == error_type
    assert error["message"]
    assert error["request_id"] == resp.headers["x-request-id"]
    return error  # type: ignore[no-any-return]


def test_sync_chat_uses_the_calculator(client: httpx.Client) -> None:
    resp = client.post("/v1/chat", json={"message": "what is 12*(3+4)?"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert "84" in body["answer"]
    assert [(s["kind"], s["name"]) for s in body["steps"]] == [
        ("llm", "sim"),
        ("tool", "calculator"),
        ("llm", "sim"),
    ]
    assert body["steps"][1]["output"] == "84"
    assert all(s["duration_ms"] >= 0 for s in body["steps"])
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert usage["cost_usd"] > 0
    assert body["model"] == "sim"
    assert body["duration_ms"] > 0


def test_streamed_chat_is_server_sent_events(client: httpx.Client) -> None:
    with client.stream(
        "POST", "/v1/chat", json={"message": "what is 6*7?", "stream": True}
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = resp.read().decode()
    events = parse_sse(text)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "step" and kinds[-1] == "done"
    assert "delta" in kinds
    streamed = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
    assert streamed == events[-1]["data"]["answer"]
    assert "42" in streamed


def test_chinese_text_round_trips(client: httpx.Client) -> None:
    message = "你好，世界！请介绍一下你自己。"
    resp = client.post("/v1/chat", json={"message": message, "metadata": {"标签": "测试"}})
    assert resp.status_code == 200
    assert "你好，世界" in resp.json()["answer"]
    assert "charset" not in resp.headers["content-type"] or "utf-8" in resp.headers["content-type"]


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    resp = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    for bad in ("x" * 200, "semi;colon", "spa ce"):
        echoed = client.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert echoed != bad and len(echoed) == 32


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "hi", "unknown": 1}, "unknown"),
        ({"message": "hi", "session_id": "has spaces"}, "session_id"),
        ({"message": "hi", "model": "no-such-model"}, "model"),
        ({"message": "x" * 40_000}, "message"),
        ({"message": 5}, "message"),
    ],
)
def test_bad_input_is_422_in_the_error_shape(
    client: httpx.Client, body: dict[str, object], where: str
) -> None:
    for path in ("/v1/chat", "/v1/tasks"):
        error = assert_error_shape(client.post(path, json=body), 422, "invalid_request")
        assert where in error["message"]


def test_invalid_json_is_400_and_wrong_content_type_is_415(client: httpx.Client) -> None:
    assert_error_shape(
        client.post("/v1/chat", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_request",
    )
    assert_error_shape(
        client.post("/v1/chat", content=b"message=hi", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    big = b'{"message": "' + b"x" * 2_000_000 + b'"}'
    assert_error_shape(
        client.post("/v1/chat", content=big, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )

    def chunks() -> object:
        yield b'{"message": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    chunked = client.post(
        "/v1/tasks", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error_shape(chunked, 413, "payload_too_large")


@pytest.mark.parametrize("task_id", ["0" * 32, "not-a-task", "../../etc"])
def test_unknown_task_is_404(client: httpx.Client, task_id: str) -> None:
    assert_error_shape(client.get(f"/v1/tasks/{task_id}"), 404, "not_found")
    assert_error_shape(client.get(f"/v1/tasks/{task_id}/events"), 404, "not_found")


def test_unknown_route_and_method_use_the_error_shape(client: httpx.Client) -> None:
    assert_error_shape(client.get("/v1/nothing"), 404, "not_found")
    assert_error_shape(client.get("/v1/chat"), 405, "invalid_request")


def test_readyz_reports_redis_and_config(client: httpx.Client) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ready" and body["redis"] == "ok"
    assert len(body["config"]["hash"]) == 12


def test_openapi_docs_are_served(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/chat", "/v1/tasks", "/v1/tasks/{task_id}", "/v1/tasks/{task_id}/events"} <= set(
        paths
    )


def test_healthz_answers_while_a_slow_sync_run_is_in_progress(client: httpx.Client) -> None:
    result: dict[str, object] = {}

    def slow_run() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as other:
            resp = other.post("/v1/chat", json={"message": "tell me a story", "model": "slow"})
            result["status"] = resp.status_code
            result["elapsed"] = resp.elapsed.total_seconds()

    thread = threading.Thread(target=slow_run)
    thread.start()
    time.sleep(0.3)
    latencies = []
    for _ in range(10):
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        latencies.append(time.perf_counter() - started)
    assert thread.is_alive(), "the slow run should still be in flight"
    thread.join()
    assert result["status"] == 200
    assert float(result["elapsed"]) >= 1.9  # type: ignore[arg-type]
    # Each probe came back while the 2-second run was in flight (not queued behind it).
    assert max(latencies) < 1.0


def test_sync_run_whose_models_all_fail_is_503_llm_unavailable(client: httpx.Client) -> None:
    resp = client.post("/v1/chat", json={"message": "hello", "model": "broken"})
    error = assert_error_shape(resp, 503, "llm_unavailable")
    assert "broken" in error["message"]
    assert resp.headers["retry-after"]
