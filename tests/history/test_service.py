"""History through the real service: an API and a worker process with history on, a real
Postgres and Redis. Tasks and sync runs are archived and read back the same once Redis lets
them go; the list filters and pages; usage adds up to the runs made; feedback; admin and
tenant scopes; a service without history says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import RedisServer, SimFactory
from tests.history.service import (
    ARCHIVED_TTL,
    Service,
    history_stack_env,
    run_chat,
    submit,
    wait_archived,
)
from tests.integration.stack import metric_value, parse_sse, wait_task
from tests.postgres import PostgresServer
from tests.procs import free_port

# Process start-up (three simulators, an API, a worker) counts in the first test's time.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def service(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    sims = {
        "sim": sim_factory("--ttft", "0.005").url,
        "broken": sim_factory("--fail-500", "1.0").url,
        "slow": sim_factory("--ttft", "3.0").url,
    }
    with postgres_server.database() as pg_url:
        env, keys = history_stack_env(
            redis_server.url, sims, pg_url, log_dir, tmp_path_factory.mktemp("history-service")
        )
        metrics_port = free_port()
        api, url = env.start_api(AGENT_METRICS_PORT=str(metrics_port))
        running = Service(url, pg_url, keys, env, metrics_port, [api])
        try:
            running.procs.append(env.start_worker())
            yield running
        finally:
            running.stop()


def test_tasks_and_sync_runs_are_archived_and_read_back_the_same(service: Service) -> None:
    with service.client("acme") as client:
        task_id = submit(client, metadata={"user": "alice"})
        live = wait_task(client, task_id, {"succeeded"})
        sync_id, sync = run_chat(client, metadata={"user": "bob"})
        assert sync.status_code == 200 and sync.json()["run_id"] == sync_id
        with client.stream("POST", "/v1/chat", json={"message": "hi", "stream": True}) as resp:
            stream_id = resp.headers["x-run-id"]
            events = parse_sse(resp.read().decode())
        assert events[-1]["event"] == "done" and events[-1]["data"]["run_id"] == stream_id
        completion = client.post(
            "/v1/chat/completions",
            json={"model": "sim", "messages": [{"role": "user", "content": "what is 2+3?"}]},
        )
        completion_id = completion.headers["x-run-id"]
        assert completion.json()["id"] == f"chatcmpl-{completion_id}"
        assert completion.json()["run_id"] == completion_id
        failed_id, failed = run_chat(client, model="broken")
        assert failed.status_code == 503, failed.text
        wait_archived(service.pg_url, [task_id, sync_id, stream_id, completion_id, failed_id])

        # Archived: the record's TTL is now the short one; reads still come from Redis.
        store = redis.Redis.from_url(service.env.redis_url)
        prefix = service.env.queue + ":"
        ttl = store.ttl(f"{prefix}task:{task_id}")
        assert 0 < ttl <= ARCHIVED_TTL
        assert client.get(f"/v1/tasks/{task_id}").json() == live
        # Once Redis has let it go (as after the TTL), the archive answers the same record.
        store.delete(f"{prefix}task:{task_id}", f"{prefix}task:{task_id}:events")
        assert client.get(f"/v1/tasks/{task_id}").json() == live
        replay = parse_sse(client.get(f"/v1/tasks/{task_id}/events").text)
        assert [e["data"]["name"] for e in replay if e["event"] == "step"] == [
            "sim",
            "calculator",
            "sim",
        ]
        assert replay[-1]["event"] == "done" and replay[-1]["data"]["result"] == live["result"]
        resumed = client.get(
            f"/v1/tasks/{task_id}/events", headers={"Last-Event-ID": replay[1]["id"]}
        )
        assert parse_sse(resumed.text) == replay[2:]
        cancel = client.post(f"/v1/tasks/{task_id}/cancel")
        assert cancel.status_code == 409

        # A sync run reads like a task, by its run id.
        chat = client.get(f"/v1/tasks/{sync_id}").json()
        assert chat["status"] == "succeeded" and chat["queue"] == ""
        assert chat["result"]["answer"] == sync.json()["answer"]
        assert chat["result"]["steps"] == sync.json()["steps"]
        assert chat["request"]["metadata"] == {"user": "bob"}
        assert chat["usage"] == sync.json()["usage"]
        failure = client.get(f"/v1/tasks/{failed_id}").json()
        assert failure["status"] == "failed" and failure["error"]["type"] == "llm_unavailable"

        listed = {item["run_id"]: item for item in client.get("/v1/tasks").json()["items"]}
        assert listed[task_id]["kind"] == "task" and listed[task_id]["user"] == "alice"
        assert listed[sync_id]["kind"] == "sync" and listed[sync_id]["agent"] == "default"
        assert listed[completion_id]["model"] == "sim"
        assert listed[failed_id]["error_type"] == "llm_unavailable"
        assert listed[task_id]["trace_id"] == (live["trace_id"] or live["result"]["trace_id"])


def test_the_list_filters_and_pages(service: Service) -> None:
    with service.client("globex") as client:
        ok = [submit(client) for _ in range(4)]
        bad = [submit(client, model="broken") for _ in range(2)]
        for task_id in ok + bad:
            wait_task(client, task_id, {"succeeded", "failed"})
        sync_id, _ = run_chat(client)
        # A streaming client that leaves mid-run: archived as cancelled, with what it spent.
        with client.stream(
            "POST", "/v1/chat", json={"message": "hi", "model": "slow", "stream": True}
        ) as resp:
            left_id = resp.headers["x-run-id"]
        made = [*ok, *bad, sync_id, left_id]
        wait_archived(service.pg_url, made)

        pages, cursor = [], None
        while True:
            params: dict[str, str | int] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/tasks", params=params).json()
            pages.append([item["run_id"] for item in page["items"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        walked = [run_id for page in pages for run_id in page]
        assert sorted(walked) == sorted(made) and len(pages) == 3
        created = [client.get(f"/v1/tasks/{run_id}").json()["created_at"] for run_id in walked]
        assert created == sorted(created, reverse=True)  # newest first

        def ids(**params: str) -> set[str]:
            answer = client.get("/v1/tasks", params={"limit": 100, **params})
            assert answer.status_code == 200, answer.text
            return {item["run_id"] for item in answer.json()["items"]}

        assert ids(status="failed") == set(bad)
        assert ids(status="succeeded,failed") == {*ok, *bad, sync_id}
        assert ids(status="cancelled") == {left_id}
        assert ids(kind="sync") == {sync_id, left_id}
        assert ids(agent="default") == set(made)
        assert ids(agent="nobody") == set()
        between = (created[3] + created[4]) / 2
        assert ids(**{"from": str(between)}) == set(walked[:4])
        assert ids(to=str(between)) == set(walked[4:])

        left = client.get(f"/v1/tasks/{left_id}").json()
        assert left["status"] == "cancelled" and left["error"]["type"] == "cancelled"
        for params, status in [
            ({"cursor": "not-a-cursor"}, 400),
            ({"status": "running"}, 400),
            ({"limit": "0"}, 422),
            ({"from": "yesterday"}, 422),
            ({"tenant": "acme"}, 403),
        ]:
            answer = client.get("/v1/tasks", params=params)
            assert answer.status_code == status, (params, answer.text)
            assert set(answer.json()["error"]) == {"type", "message", "request_id"}


def test_usage_adds_up_to_the_runs_made(service: Service) -> None:
    started = time.time()
    with service.client("initech") as client:
        tasks = [submit(client, metadata={"user": user}) for user in ("ann", "ann", "cy")]
        results = [wait_task(client, task_id, {"succeeded"})["result"] for task_id in tasks]
        sync_id, sync = run_chat(client, metadata={"user": "cy"})
        results.append(sync.json())
        failed_id, _ = run_chat(client, model="broken")
        wait_archived(service.pg_url, [*tasks, sync_id, failed_id])
        window = {"from": str(started - 1), "to": str(time.time() + 1)}

        totals = client.get("/v1/usage", params=window).json()
        (row,) = totals["rows"]
        assert row["runs"] == 5 and row["errors"] == 1 and row["cancelled"] == 0
        for name in ("input_tokens", "output_tokens", "total_tokens"):
            assert row[name] == sum(r["usage"][name] for r in results), name
        assert row["cost_usd"] == pytest.approx(sum(r["usage"]["cost_usd"] for r in results))
        listed = client.get("/v1/tasks", params=window).json()["items"]
        durations = sorted(item["duration_ms"] for item in listed)
        assert len(durations) == 5
        assert durations[0] <= row["latency_ms_p50"] <= row["latency_ms_p95"]
        assert row["latency_ms_p95"] <= row["latency_ms_p99"] <= durations[-1]
        assert row["latency_ms_p50"] == pytest.approx(durations[2])  # the median of five

        by_user = client.get("/v1/usage", params={**window, "group_by": "user"}).json()["rows"]
        assert {r["group"]["user"]: r["runs"] for r in by_user} == {"ann": 2, "cy": 2, None: 1}
        by_tool = client.get("/v1/usage", params={**window, "group_by": "tool"}).json()["rows"]
        calculator_calls = sum(
            1 for r in results for step in r["steps"] if step["name"] == "calculator"
        )
        assert [(r["group"]["tool"], r["tool_calls"]) for r in by_tool] == [
            ("calculator", calculator_calls)
        ]
        by_model = client.get(
            "/v1/usage", params={**window, "group_by": "model", "order_by": "errors", "limit": 1}
        ).json()["rows"]
        assert [(r["group"]["model"], r["errors"]) for r in by_model] == [("broken", 1)]
        hourly = client.get("/v1/usage", params={**window, "interval": "1h"}).json()
        assert sum(r["runs"] for r in hourly["rows"]) == 5
        assert all(r["bucket"] % 3600 == 0 for r in hourly["rows"])
        assert hourly["interval_seconds"] == 3600

        for params in [{"interval": "1 hour"}, {"group_by": "colour"}, {"to": str(started - 9)}]:
            answer = client.get("/v1/usage", params={**window, **params})
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["type"] == "invalid_request"


def test_feedback_is_kept_counted_and_reported(service: Service) -> None:
    with service.client("umbrella") as client:
        task_id = submit(client)
        wait_task(client, task_id, {"succeeded"})
        sync_id, _ = run_chat(client)
        wait_archived(service.pg_url, [task_id, sync_id])
        before = metric_value(
            service.api_metrics_port, "agent_feedback_total", agent="default", score="1"
        )

        answer = client.post(f"/v1/tasks/{task_id}/feedback", json={"score": 1})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"run_id": task_id, "agent": "default", "score": 1, "comment": None}
        changed = client.post(
            f"/v1/tasks/{task_id}/feedback", json={"score": -1, "comment": "wrong units"}
        )
        assert changed.status_code == 200
        chat = client.post(f"/v1/runs/{sync_id}/feedback", json={"score": 1, "comment": "ok"})
        assert chat.status_code == 200, chat.text
        assert (
            metric_value(
                service.api_metrics_port, "agent_feedback_total", agent="default", score="1"
            )
            == before + 2
        )
        listed = {
            i["run_id"]: i for i in client.get("/v1/tasks", params={"limit": 100}).json()["items"]
        }
        assert listed[task_id]["feedback_score"] == -1 and listed[sync_id]["feedback_score"] == 1
        (row,) = client.get("/v1/usage").json()["rows"]
        assert (row["feedback_up"], row["feedback_down"]) == (1, 1)

        running = submit(client, model="slow")
        not_yet = client.post(f"/v1/tasks/{running}/feedback", json={"score": 1})
        assert not_yet.status_code == 409, not_yet.text
        assert "has not finished" in not_yet.json()["error"]["message"]
        for body in ({"score": 2}, {"score": True}, {"score": 1, "comment": "x" * 2001}, {}):
            refused = client.post(f"/v1/tasks/{task_id}/feedback", json=body)
            assert refused.status_code == 422, (body, refused.text)
        assert client.post(f"/v1/runs/{'f' * 32}/feedback", json={"score": 1}).status_code == 404
        assert client.post("/v1/runs/nope/feedback", json={"score": 1}).status_code == 404
    with service.client("acme") as other:
        assert other.post(f"/v1/tasks/{task_id}/feedback", json={"score": 1}).status_code == 404
    with service.client("admin") as admin:  # an admin reads every tenant, acts on its own
        assert admin.post(f"/v1/tasks/{task_id}/feedback", json={"score": 1}).status_code == 404
        assert admin.get(f"/v1/tasks/{task_id}").status_code == 200


def test_an_admin_key_reads_every_tenant_and_a_tenant_key_its_own(service: Service) -> None:
    made = {}
    for tenant in ("acme", "hooli"):
        with service.client(tenant) as client:
            made[tenant], _ = run_chat(client)
    wait_archived(service.pg_url, made.values())
    with service.client("admin") as admin:
        everyone = {
            i["tenant"] for i in admin.get("/v1/tasks", params={"limit": 100}).json()["items"]
        }
        assert {"acme", "hooli"} <= everyone
        hooli = admin.get("/v1/tasks", params={"tenant": "hooli", "limit": 100}).json()["items"]
        assert {i["tenant"] for i in hooli} == {"hooli"}
        assert made["hooli"] in {i["run_id"] for i in hooli}
        assert admin.get(f"/v1/tasks/{made['acme']}").json()["tenant"] == "acme"
        rows = admin.get("/v1/usage", params={"group_by": "tenant"}).json()["rows"]
        assert {"acme", "hooli"} <= {r["group"]["tenant"] for r in rows}
    with service.client("hooli") as hooli_client:
        mine = hooli_client.get("/v1/tasks", params={"limit": 100}).json()["items"]
        assert {i["tenant"] for i in mine} == {"hooli"}
        assert hooli_client.get(f"/v1/tasks/{made['acme']}").status_code == 404
        rows = hooli_client.get("/v1/usage", params={"group_by": "tenant"}).json()["rows"]
        assert [r["group"]["tenant"] for r in rows] == ["hooli"]
        forbidden = hooli_client.get("/v1/usage", params={"tenant": "acme"})
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["type"] == "forbidden"
        assert hooli_client.get("/v1/usage", params={"tenant": "hooli"}).status_code == 200


def test_feedback_before_the_archive_says_retry(service: Service) -> None:
    # An API on its own key prefix that no worker drains: its sync runs wait on the outbox.
    env = service.env
    proc, url = env.start_api(AGENT_REDIS_KEY_PREFIX=f"undrained-{env.queue}:")
    try:
        headers = {"Authorization": f"Bearer {service.keys['acme']}"}
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            run_id, answer = run_chat(client)
            assert answer.status_code == 200
            deadline = time.monotonic() + 10
            while True:  # the outbox entry is written just after the answer
                waiting = client.post(f"/v1/runs/{run_id}/feedback", json={"score": 1})
                if waiting.status_code == 409 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert waiting.status_code == 409, waiting.text
            assert waiting.headers["retry-after"] == "1"
            assert "not archived yet" in waiting.json()["error"]["message"]
        other = {"Authorization": f"Bearer {service.keys['globex']}"}
        with httpx.Client(base_url=url, timeout=30, headers=other) as client:
            assert client.post(f"/v1/runs/{run_id}/feedback", json={"score": 1}).status_code == 404
    finally:
        proc.stop()


def test_without_history_the_history_routes_say_it_is_off(service: Service) -> None:
    extra = {k: v for k, v in service.env.extra.items() if not k.startswith("AGENT_HISTORY_")}
    env = type(service.env)(service.env.redis_url, service.env.sim_url, service.env.log_dir, extra)
    proc, url = env.start_api()
    try:
        headers = {"Authorization": f"Bearer {service.keys['acme']}"}
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            for method, path in [
                ("GET", "/v1/tasks"),
                ("GET", "/v1/usage"),
                ("POST", f"/v1/tasks/{'a' * 32}/feedback"),
                ("POST", f"/v1/runs/{'a' * 32}/feedback"),
            ]:
                answer = client.request(method, path, json={"score": 1})
                assert answer.status_code == 404, (path, answer.text)
                error = answer.json()["error"]
                assert error["type"] == "history_disabled", error
                assert "AGENT_HISTORY_URL" in error["message"]
            unknown = client.get(f"/v1/tasks/{'a' * 32}")
            assert unknown.status_code == 404
            assert unknown.json()["error"]["type"] == "not_found"
            run_id, answer = run_chat(client)  # runs still get their id
            assert answer.status_code == 200 and answer.json()["run_id"] == run_id
    finally:
        proc.stop()
