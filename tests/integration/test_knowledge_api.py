"""Knowledge bases through the real stack: an API process and a worker with authentication on,
a real Chroma server (``chroma run``), Redis and the simulator (embeddings over HTTP through
LiteLLM, like a provider).

Ingest over the API (a queued task) → search through the agent's ``search_docs`` tool → an
answer with sources, in the /v1/chat result, the task result, the SSE ``done`` event and the
OpenAI-compatible response; re-ingesting the same bytes is a no-op, changed bytes replace the
document, delete removes it; tenant B never sees tenant A's documents; bad documents get a 4xx
and leave nothing behind. One stack for the module: each test uses its own document ids.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent_service.api.auth import generate_key
from tests.conftest import RedisServer, Sim
from tests.integration.stack import metric_value, parse_sse, secured_env, wait_task
from tests.integration.test_api import assert_error_shape
from tests.pdfs import make_pdf
from tests.procs import Proc, base_env, chroma_args, free_port, wait_http

pytestmark = pytest.mark.integration

KEYS = {"team-a": generate_key(), "team-b": generate_key()}
OPS = """# Operations guide

## Scaling the workers

Workers scale on the depth of the task queue. Install KEDA and set worker.autoscaling.keda
to true: the ScaledObject adds worker pods when agent_queue_depth grows, up to maxReplicas.

## Backups

Redis holds the task records; back up its append-only file every night.
"""
WEBHOOKS = """# Webhooks

A task may name a webhook URL. When the task ends, the worker posts the record to it, signed
with HMAC-SHA256 in the X-Agent-Signature header, and retries with backoff.
"""


def agent_config(sim: Sim) -> str:
    return yaml.safe_dump(
        {
            "defaultModel": "sim",
            "models": [
                {"name": "sim", "model": "openai/sim-agent", "apiBase": sim.url},
                {
                    "name": "embed",
                    "model": "openai/sim-embedding",
                    "apiBase": sim.url,
                    "kind": "embedding",
                    "inputCostPer1K": 0.0001,
                },
            ],
            "knowledgeBases": [
                {
                    "name": "docs",
                    "description": "How to operate the service.",
                    "embeddingModel": "embed",
                    "chunking": {"sizeTokens": 64, "overlapTokens": 8},
                    "minScore": 0.05,
                }
            ],
            "defaultAgent": "helper",
            "agents": [
                {"name": "helper", "description": "Answers from the docs.", "knowledge": ["docs"]},
                {"name": "plain", "description": "No knowledge."},
            ],
        },
        sort_keys=False,
    )


class Stack:
    def __init__(self, url: str, metrics_port: int) -> None:
        self.url, self.metrics_port = url, metrics_port

    def client(self, tenant: str = "team-a") -> httpx.Client:
        headers = {"Authorization": f"Bearer {KEYS[tenant]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def chroma_url(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = Proc(
        f"chroma-{port}", chroma_args(tmp_path_factory.mktemp("chroma"), port), base_env(), log_dir
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/v2/heartbeat", proc, timeout=60)
    yield url
    proc.stop()


@pytest.fixture(scope="module")
def stack(
    redis_server: RedisServer,
    sim: Sim,
    chroma_url: str,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("knowledge")
    config = root / "agent.yaml"
    config.write_text(agent_config(sim))
    env = secured_env(
        redis_server.url,
        sim.url,
        log_dir,
        root,
        KEYS,
        AGENT_CONFIG_FILE=str(config),
        AGENT_KNOWLEDGE_CHROMA_URL=chroma_url,
        AGENT_KNOWLEDGE_MAX_DOCUMENT_BYTES="65536",
        AGENT_KNOWLEDGE_COLLECTION_PREFIX=f"t{free_port()}-",
    )
    metrics_port = free_port()
    api, url = env.start_api(AGENT_METRICS_PORT=str(metrics_port))
    worker = env.start_worker()
    yield Stack(url, metrics_port)
    api.stop()
    worker.stop()


def ingest(client: httpx.Client, doc: str, text: str, **fields: Any) -> dict[str, Any]:
    """POST a document; the finished ingestion task's record (or the 200 no-op answer)."""
    body = {"document_id": doc, "content": text, "content_type": "text/markdown", **fields}
    resp = client.post("/v1/knowledge/docs/documents", json=body)
    assert resp.status_code in (200, 202), resp.text
    answer = resp.json()
    if resp.status_code == 200:
        assert answer["status"] == "unchanged" and answer["task_id"] is None
        return answer
    assert resp.headers["location"] == f"/v1/tasks/{answer['task_id']}"
    return wait_task(client, answer["task_id"], {"succeeded", "failed"})


def documents(client: httpx.Client) -> dict[str, int]:
    resp = client.get("/v1/knowledge/docs/documents")
    assert resp.status_code == 200, resp.text
    return {d["document_id"]: d["chunks"] for d in resp.json()["documents"]}


def test_ingest_search_and_answer_with_sources(stack: Stack) -> None:
    with stack.client("team-a") as a:
        record = ingest(a, "ops", OPS, uri="https://docs.example/ops")
        assert record["status"] == "succeeded", record
        outcome = record["result"]["output"]
        assert outcome["status"] == "created" and outcome["chunks"] >= 2
        assert record["result"]["usage"]["input_tokens"] > 0  # embedding tokens, priced
        assert documents(a)["ops"] == outcome["chunks"]

        resp = a.post("/v1/chat", json={"message": "how do I scale the workers?"})
        assert resp.status_code == 200, resp.text
        result = resp.json()
        retrieval = [s for s in result["steps"] if s["kind"] == "retrieval"]
        assert len(retrieval) == 1 and retrieval[0]["name"] == "search_docs"
        assert retrieval[0]["hits"] >= 1 and retrieval[0]["duration_ms"] > 0
        sources = result["sources"]
        assert sources, result
        first = sources[0]
        assert (first["kb"], first["document_id"]) == ("docs", "ops")
        assert first["uri"] == "https://docs.example/ops" and first["title"] == "Operations guide"
        assert "KEDA" in first["excerpt"] and 0 < first["score"] <= 1
        assert f"[{first['citation']}]" in result["answer"]  # the order the answer used them

        # The same sources in a task's result, the SSE done event and the OpenAI response.
        task = a.post("/v1/tasks", json={"message": "how do I scale the workers?"}).json()
        done = wait_task(a, task["task_id"], {"succeeded"})
        assert done["result"]["sources"] == sources
        events = parse_sse(a.get(f"/v1/tasks/{task['task_id']}/events").text)
        final = next(e for e in events if e["event"] == "done")["data"]
        assert final["result"]["sources"] == sources
        with a.stream(
            "POST", "/v1/chat", json={"message": "how do I scale the workers?", "stream": True}
        ) as streamed:
            body = "".join(streamed.iter_text())
        sse_done = next(e for e in parse_sse(body) if e["event"] == "done")["data"]
        assert sse_done["sources"] == sources
        completion = a.post(
            "/v1/chat/completions",
            json={
                "model": "helper",
                "messages": [{"role": "user", "content": "how do I scale the workers?"}],
            },
        )
        assert completion.status_code == 200, completion.text
        assert completion.json()["sources"] == sources
        response = a.post(
            "/v1/responses", json={"model": "helper", "input": "how do I scale the workers?"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["sources"] == sources
    assert metric_value(stack.metrics_port, "agent_retrieval_hits_count", kb="docs") >= 1


def test_reingesting_is_a_no_op_and_changes_replace(stack: Stack) -> None:
    with stack.client("team-a") as a:
        assert ingest(a, "hooks", WEBHOOKS)["result"]["output"]["status"] == "created"
        again = ingest(a, "hooks", WEBHOOKS)
        assert again["status"] == "unchanged"  # 200, no task queued, nothing embedded
        changed = ingest(a, "hooks", WEBHOOKS + "\nDeliveries time out after 10 seconds.\n")
        assert changed["result"]["output"]["status"] == "replaced"
        assert "hooks" in documents(a)
        gone = a.delete("/v1/knowledge/docs/documents/hooks")
        assert gone.status_code == 200 and gone.json()["deleted"] is True
        assert "hooks" not in documents(a)
        assert_error_shape(a.delete("/v1/knowledge/docs/documents/hooks"), 404, "not_found")
        answer = a.post("/v1/chat", json={"message": "how are webhooks signed?"}).json()
        assert all(s["document_id"] != "hooks" for s in answer["sources"])


def test_tenants_never_see_each_other(stack: Stack) -> None:
    with stack.client("team-a") as a, stack.client("team-b") as b:
        assert ingest(a, "secret-ops", OPS)["status"] == "succeeded"
        assert "secret-ops" not in documents(b)
        answer = b.post("/v1/chat", json={"message": "how do I scale the workers?"}).json()
        assert answer["sources"] == []
        assert [s["hits"] for s in answer["steps"] if s["kind"] == "retrieval"] == [0]
        assert_error_shape(b.delete("/v1/knowledge/docs/documents/secret-ops"), 404, "not_found")
        # B's own document of the same id is another document
        assert ingest(b, "secret-ops", WEBHOOKS)["result"]["output"]["status"] == "created"
        found = b.post("/v1/chat", json={"message": "how are webhooks signed?"}).json()
        assert {s["document_id"] for s in found["sources"]} == {"secret-ops"}
        assert all("KEDA" not in s["excerpt"] for s in found["sources"])


def test_bad_documents_get_a_4xx_and_leave_nothing(stack: Stack) -> None:
    with stack.client("team-a") as a:
        before = documents(a)
        post = "/v1/knowledge/docs/documents"
        cases = [
            ({"document_id": "x", "content": "a", "content_type": "image/png"}, 415,
             "unsupported_media_type"),
            ({"document_id": "x", "content": "a" * 70_000, "content_type": "text/plain"}, 413,
             "payload_too_large"),
            ({"document_id": "x", "content_base64": base64.b64encode(b"%PDF-1.4 broken").decode(),
              "content_type": "application/pdf"}, 422, "invalid_request"),
            ({"document_id": "x", "content_base64": "***", "content_type": "application/pdf"},
             400, "invalid_request"),
            ({"document_id": "x"}, 422, "invalid_request"),
            ({"document_id": "x", "content": "a", "metadata": {"k": {"nested": 1}}}, 422,
             "invalid_request"),
        ]  # fmt: skip
        for body, status, kind in cases:
            assert_error_shape(a.post(post, json=body), status, kind)
        assert_error_shape(
            a.post("/v1/knowledge/nope/documents", json={"document_id": "x", "content": "a"}),
            404,
            "not_found",
        )
        assert_error_shape(a.get("/v1/knowledge/nope/documents"), 404, "not_found")
        assert documents(a) == before
        # a real PDF, by base64
        pdf = make_pdf([["Disaster recovery", "Restore Redis from its append-only file."]])
        record = ingest(
            a, "dr.pdf", "", content=None, content_base64=base64.b64encode(pdf).decode(),
            content_type="application/pdf",
        )  # fmt: skip
        assert record["result"]["output"]["status"] == "created"


def test_an_agent_without_knowledge_has_no_search_tool(stack: Stack) -> None:
    with stack.client("team-a") as a:
        result = a.post(
            "/v1/chat", json={"agent": "plain", "message": "how do I scale the workers?"}
        ).json()
        assert result["sources"] == [] and all(s["kind"] != "retrieval" for s in result["steps"])
