"""Knowledge bases on a real Chroma, in both modes, with the simulator's embeddings over HTTP.

Every test runs twice: on an embedded ``PersistentClient`` in a temporary directory, and on a
real ``chroma run`` server process on a free port. Embeddings come from the simulator process
through LiteLLM (``LiteLLMEmbedder``), exactly as a provider's would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from agent_service.agentconfig.knowledge import ChunkingSpec, KnowledgeBaseSpec
from agent_service.agentconfig.model import ModelSpec, RetryPolicy
from agent_service.domain.errors import LLMUnavailableError
from agent_service.knowledge.base import DocumentUpload, KnowledgeBase
from agent_service.knowledge.chroma import ChromaOptions, ChromaStore
from agent_service.knowledge.documents import DocumentLimits
from agent_service.knowledge.errors import (
    DocumentNotFoundError,
    DocumentTooLargeError,
    InvalidSearchError,
    KnowledgeError,
    KnowledgeStoreUnavailableError,
    UnparsableDocumentError,
    UnsupportedDocumentError,
)
from agent_service.knowledge.store import DocumentVersion
from agent_service.llm.embeddings import LiteLLMEmbedder
from agent_service.observability.knowledge import KnowledgeMetricsObserver
from agent_service.observability.metrics import Metrics
from agent_service.runtime.knowledge import MissingStore
from agent_service.worker.knowledge_counter import KnowledgeCounter
from tests.conftest import Sim, SimFactory
from tests.pdfs import make_pdf
from tests.procs import Proc, base_env, chroma_args, free_port, wait_http

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Item .* is using the .ReadOnly. qualifier:UserWarning"),
]

OPS = b"""# Operations guide

## Scaling the workers

Workers scale on queue depth with KEDA: set worker.autoscaling.mode=keda and the chart adds a
ScaledObject that watches the length of the queue list.

## Backups

Redis holds the task records. Take an AOF snapshot every night and keep a week of them.
"""
WEBHOOKS = b"""<html><head><title>Webhooks</title></head><body>
<h1>Webhooks</h1><p>Every delivery is signed with an HMAC-SHA256 of the body and a timestamp.
Receivers verify the signature header before trusting the payload.</p></body></html>"""


class ChromaServer:
    def __init__(self, proc: Proc, url: str) -> None:
        self.proc = proc
        self.url = url


@pytest.fixture(scope="module")
def chroma_server(
    log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChromaServer]:
    port = free_port()
    args = chroma_args(tmp_path_factory.mktemp("chroma-server"), port)
    proc = Proc(f"chroma-{port}", args, base_env(), log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/v2/heartbeat", proc, timeout=60)
    yield ChromaServer(proc, url)
    proc.stop()


@pytest.fixture(params=["embedded", "server"])
def options(
    request: pytest.FixtureRequest, tmp_path: Path, chroma_server: ChromaServer
) -> ChromaOptions:
    if request.param == "embedded":
        return ChromaOptions(path=tmp_path / "chroma", timeout_seconds=20)
    return ChromaOptions(url=chroma_server.url, timeout_seconds=20)


@pytest.fixture
async def store(options: ChromaOptions) -> AsyncIterator[ChromaStore]:
    store = ChromaStore(options)
    yield store
    await store.aclose()


def embedding_model(url: str) -> ModelSpec:
    return ModelSpec(name="emb", model="openai/sim-embedding", api_base=url, timeout_seconds=10)


@pytest.fixture
def embedder(sim: Sim) -> LiteLLMEmbedder:
    return LiteLLMEmbedder(embedding_model(sim.url), RetryPolicy(max_retries=0))


def make_kb(
    store: ChromaStore,
    embedder: LiteLLMEmbedder,
    *,
    metrics: Metrics | None = None,
    size: int = 64,
    limits: DocumentLimits | None = None,
) -> KnowledgeBase:
    spec = KnowledgeBaseSpec(
        name=f"kb-{uuid.uuid4().hex[:8]}",  # one per test: the server outlives tests
        description="Test documents.",
        embedding_model="emb",
        chunking=ChunkingSpec(size_tokens=size, overlap_tokens=8),
        top_k=5,
        min_score=0.05,
    )
    observer = KnowledgeMetricsObserver(metrics) if metrics is not None else None
    return KnowledgeBase(spec, embedder, store, observer=observer, limits=limits)


def upload(doc_id: str, data: bytes, filename: str, **extra: object) -> DocumentUpload:
    return DocumentUpload(doc_id=doc_id, data=data, filename=filename, **extra)  # type: ignore[arg-type]


async def test_ingest_then_search_answers_with_sources(
    store: ChromaStore, embedder: LiteLLMEmbedder
) -> None:
    metrics = Metrics(CollectorRegistry())
    kb = make_kb(store, embedder, metrics=metrics)
    progress: list[tuple[str, int, int]] = []
    ops = await kb.ingest(
        upload("ops", OPS, "ops.md", uri="https://wiki/ops", metadata={"team": "sre"}),
        tenant="acme",
        on_progress=lambda p: progress.append((p.stage, p.done, p.total)),
    )
    assert ops.status == "created"
    assert ops.chunks >= 2
    assert ops.usage.input_tokens > 0
    assert progress[0] == ("parsing", 0, 1)
    assert ("embedding", ops.chunks, ops.chunks) in progress
    assert progress[-1] == ("done", ops.chunks, ops.chunks)
    await kb.ingest(upload("hooks", WEBHOOKS, "hooks.html"), tenant="acme")
    pdf = make_pdf([["Release notes", "Version 2 adds knowledge bases."]], title="Releases")
    await kb.ingest(upload("notes", pdf, "notes.pdf"), tenant="acme")

    result = await kb.search("how do I scale the workers?", tenant="acme")
    top = result.hits[0]
    assert (top.kb, top.doc_id, top.title, top.uri) == (
        kb.name,
        "ops",
        "Operations guide",
        "https://wiki/ops",
    )
    assert "KEDA" in top.excerpt and not top.excerpt.startswith("Operations guide >")
    assert top.text.startswith("Operations guide > Scaling the workers\n\n")
    assert 0 < top.score <= 1
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    signed = await kb.search("how are webhook deliveries signed?", tenant="acme")
    assert signed.hits[0].doc_id == "hooks" and signed.hits[0].title == "Webhooks"
    news = await kb.search("what is new in version 2?", tenant="acme")
    assert news.hits[0].doc_id == "notes"

    listed = {d.doc_id: d for d in await kb.documents(tenant="acme")}
    assert sorted(listed) == ["hooks", "notes", "ops"]
    assert listed["ops"].chunks == ops.chunks
    assert listed["ops"].metadata == {"team": "sre"}
    assert listed["notes"].content_type == "application/pdf"
    total = sum(d.chunks for d in listed.values())
    assert await store.count_chunks(kb.name) == total
    value = metrics.registry.get_sample_value
    assert value("agent_knowledge_chunks", {"kb": kb.name}) == total
    assert value("agent_retrieval_duration_seconds_count", {"kb": kb.name}) == 3
    hits = sum(len(r.hits) for r in (result, signed, news))
    assert value("agent_retrieval_hits_sum", {"kb": kb.name}) == hits


async def test_reingesting_identical_content_is_a_noop(
    store: ChromaStore, embedder: LiteLLMEmbedder
) -> None:
    kb = make_kb(store, embedder)
    first = await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
    again = await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
    assert again.status == "unchanged"
    assert (again.version, again.chunks) == (first.version, first.chunks)
    assert again.usage.input_tokens == 0  # nothing embedded
    assert await store.count_chunks(kb.name) == first.chunks
    assert [r.version for r in await store.versions(kb.name, "acme")] == [first.version]


def _version(marker: str, sections: int = 4) -> bytes:
    parts = ["# Orchard guide"]
    for i in range(sections):
        parts.append(
            f"## Part {i}\n\nThe orchard by the river grows apples and pears in row {i}. "
            f"This text belongs to the {marker} edition of the guide, part {i}."
        )
    return "\n\n".join(parts).encode()


async def test_changed_content_replaces_the_old_chunks(
    store: ChromaStore, embedder: LiteLLMEmbedder
) -> None:
    kb = make_kb(store, embedder)
    old = await kb.ingest(upload("guide", _version("alphaedition"), "g.md"), tenant="acme")
    new = await kb.ingest(upload("guide", _version("bravoedition", 3), "g.md"), tenant="acme")
    assert new.status == "replaced" and new.version > old.version
    assert await store.count_chunks(kb.name) == new.chunks
    found = await kb.search("orchard river apples pears", tenant="acme", top_k=10, min_score=-1)
    assert found.hits and all("bravoedition" in h.text for h in found.hits)
    [listed] = await kb.documents(tenant="acme")
    assert (listed.version, listed.chunks) == (new.version, new.chunks)
    # the record of the replaced version stays until the next change (versions docstring)
    assert sorted(r.version for r in await store.versions(kb.name, "acme")) == [
        old.version,
        new.version,
    ]
    third = await kb.ingest(upload("guide", _version("charlieedition"), "g.md"), tenant="acme")
    assert sorted(r.version for r in await store.versions(kb.name, "acme")) == [
        new.version,
        third.version,
    ]


async def test_a_concurrent_reader_sees_one_version_never_both_never_none(
    store: ChromaStore, embedder: LiteLLMEmbedder
) -> None:
    kb = make_kb(store, embedder, size=48)
    editions = ["alphaedition", "bravoedition"]
    await kb.ingest(upload("other", OPS, "ops.md"), tenant="acme")
    await kb.ingest(upload("guide", _version(editions[0]), "g.md"), tenant="acme")
    seen: list[set[str]] = []

    async def read() -> None:
        found = await kb.search("orchard river apples pears", tenant="acme", top_k=12)
        texts = [h.text for h in found.hits if h.doc_id == "guide"]
        seen.append({e for e in editions for t in texts if e in t})

    async def write() -> None:
        for swap in range(1, 7):
            marker = editions[swap % 2]
            result = await kb.ingest(upload("guide", _version(marker), "g.md"), tenant="acme")
            assert result.status == "replaced"

    await read()
    writer = asyncio.create_task(write())
    while not writer.done():
        await read()
    await writer
    await read()
    assert len(seen) >= 3
    assert all(len(editions_seen) == 1 for editions_seen in seen), seen
    assert seen[0] == {"alphaedition"} and seen[-1] == {"alphaedition"}
    assert await store.count_chunks(kb.name) == sum(
        d.chunks for d in await kb.documents(tenant="acme")
    )


async def test_delete_removes_a_document(store: ChromaStore, embedder: LiteLLMEmbedder) -> None:
    metrics = Metrics(CollectorRegistry())
    kb = make_kb(store, embedder, metrics=metrics)
    ops = await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
    hooks = await kb.ingest(upload("hooks", WEBHOOKS, "hooks.html"), tenant="acme")
    await kb.delete("ops", tenant="acme")
    assert [d.doc_id for d in await kb.documents(tenant="acme")] == ["hooks"]
    found = await kb.search("how do I scale the workers?", tenant="acme", min_score=-1)
    assert {h.doc_id for h in found.hits} == {"hooks"}
    assert await store.count_chunks(kb.name) == hooks.chunks
    value = metrics.registry.get_sample_value("agent_knowledge_chunks", {"kb": kb.name})
    assert value == hooks.chunks
    with pytest.raises(DocumentNotFoundError) as missing:
        await kb.delete("ops", tenant="acme")
    assert missing.value.status == 404
    # the tombstone keeps an older submission from resurrecting it ...
    late = await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme", version=ops.version + 1)
    assert late.status == "superseded"
    assert [d.doc_id for d in await kb.documents(tenant="acme")] == ["hooks"]
    # ... while a new one brings it back
    again = await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
    assert again.status == "created"
    assert sorted(d.doc_id for d in await kb.documents(tenant="acme")) == ["hooks", "ops"]


async def test_the_worker_counter_reports_what_another_process_stored(
    store: ChromaStore, embedder: LiteLLMEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    # The ingesting process (the CLI, another worker) has its own metrics; this process learns
    # the count only from its counter, and reports 0 for a base nobody filled yet.
    writer = make_kb(store, embedder, metrics=Metrics(CollectorRegistry()))
    empty = make_kb(store, embedder)
    metrics = Metrics(CollectorRegistry())
    observer = KnowledgeMetricsObserver(metrics)
    mine = {
        kb.name: KnowledgeBase(kb.spec, embedder, store, observer=observer)
        for kb in (writer, empty)
    }
    counter = KnowledgeCounter(lambda: mine)
    stored = await writer.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
    assert await counter.count() == {writer.name: stored.chunks, empty.name: 0}
    value = metrics.registry.get_sample_value
    assert value("agent_knowledge_chunks", {"kb": writer.name}) == stored.chunks
    assert value("agent_knowledge_chunks", {"kb": empty.name}) == 0
    # A process without a store: one warning per outage, no counts, the gauges untouched.
    missing = {writer.name: KnowledgeBase(writer.spec, embedder, MissingStore(), observer=observer)}
    down = KnowledgeCounter(lambda: missing)
    with caplog.at_level("WARNING", logger="agent_service.worker.knowledge_counter"):
        assert await down.count() == {}
        assert await down.count() == {}
    assert len(caplog.records) == 1 and "AGENT_KNOWLEDGE_CHROMA_URL" in caplog.text
    assert value("agent_knowledge_chunks", {"kb": writer.name}) == stored.chunks


async def test_tenants_never_see_each_other(store: ChromaStore, embedder: LiteLLMEmbedder) -> None:
    kb = make_kb(store, embedder)
    await kb.ingest(upload("guide", OPS, "ops.md"), tenant="tenant-a")
    await kb.ingest(upload("guide", WEBHOOKS, "hooks.html"), tenant="tenant-b")
    found_b = await kb.search(
        "how do I scale the workers with KEDA?", tenant="tenant-b", min_score=-1
    )
    assert found_b.hits and all("KEDA" not in h.text for h in found_b.hits)
    assert {h.title for h in found_b.hits} == {"Webhooks"}
    assert (await kb.search("KEDA", tenant="tenant-c", min_score=-1)).hits == []
    with pytest.raises(InvalidSearchError):
        await kb.search("  ", tenant="tenant-a")
    assert [d.title for d in await kb.documents(tenant="tenant-a")] == ["Operations guide"]
    assert [d.title for d in await kb.documents(tenant="tenant-b")] == ["Webhooks"]
    await kb.delete("guide", tenant="tenant-b")
    assert await kb.documents(tenant="tenant-b") == []
    found_a = await kb.search("how do I scale the workers?", tenant="tenant-a")
    assert found_a.hits[0].title == "Operations guide"
    with pytest.raises(DocumentNotFoundError):
        await kb.delete("guide", tenant="tenant-c")


async def test_a_small_tenant_is_found_among_a_big_tenants_chunks(
    store: ChromaStore, embedder: LiteLLMEmbedder
) -> None:
    # The store first queries without a filter and keeps the tenant's rows; when fewer than it
    # needs come back (a small tenant among a big one), it queries again with the filter.
    kb = make_kb(store, embedder)
    big = "\n\n".join(f"## Part {i}\n\nScaling workers with KEDA, part {i}." for i in range(40))
    result = await kb.ingest(upload("big", f"# Big\n\n{big}".encode(), "b.md"), tenant="big")
    assert result.chunks >= 40
    await kb.ingest(upload("small", OPS, "ops.md"), tenant="small")
    found = await kb.search("scaling workers with KEDA", tenant="small", top_k=5, min_score=-1)
    assert found.hits and {h.doc_id for h in found.hits} == {"small"}
    crowded = await kb.search("scaling workers with KEDA", tenant="big", top_k=5)
    assert len(crowded.hits) == 5 and {h.doc_id for h in crowded.hits} == {"big"}


async def _assert_empty(store: ChromaStore, kb: KnowledgeBase) -> None:
    assert await store.count_chunks(kb.name) == 0
    assert await store.versions(kb.name, "acme") == []
    assert await kb.documents(tenant="acme") == []


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "error", "status"),
    [
        (b"PK\x03\x04 a word file", "spec.docx", None, UnsupportedDocumentError, 415),
        (b"x" * 2000, "big.md", None, DocumentTooLargeError, 413),
        (b"%PDF-1.7\n1 0 obj broken", "bad.pdf", None, UnparsableDocumentError, 422),
        (b"fine text", "notes", "image/png", UnsupportedDocumentError, 415),
    ],
)
async def test_bad_input_leaves_nothing_behind(
    store: ChromaStore,
    embedder: LiteLLMEmbedder,
    data: bytes,
    filename: str,
    content_type: str | None,
    error: type[KnowledgeError],
    status: int,
) -> None:
    kb = make_kb(store, embedder, limits=DocumentLimits(max_bytes=1000))
    with pytest.raises(error) as caught:
        await kb.ingest(
            DocumentUpload("doc", data, content_type=content_type, filename=filename),
            tenant="acme",
        )
    assert caught.value.status == status
    await _assert_empty(store, kb)


async def test_an_embedding_failure_leaves_nothing_behind(
    store: ChromaStore, sim_factory: SimFactory
) -> None:
    broken = sim_factory("--ttft", "0", "--fail-500", "1.0")
    embedder = LiteLLMEmbedder(embedding_model(broken.url), RetryPolicy(max_retries=0))
    kb = make_kb(store, embedder)
    with pytest.raises(LLMUnavailableError):
        await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
    await _assert_empty(store, kb)


class _FailingCommit:
    """The real store, except that the commit (the registry write) fails."""

    def __init__(self, store: ChromaStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def put_version(self, kb: str, record: DocumentVersion) -> None:
        await self._store.put_version(kb, record)  # it lands, but the caller sees a failure
        raise KnowledgeStoreUnavailableError("the store went away during the commit")


async def test_a_failed_commit_withdraws_the_new_version(
    store: ChromaStore, embedder: LiteLLMEmbedder
) -> None:
    kb = make_kb(store, embedder)
    first = await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
    failing = KnowledgeBase(kb.spec, embedder, _FailingCommit(store))  # type: ignore[arg-type]
    with pytest.raises(KnowledgeStoreUnavailableError):
        await failing.ingest(upload("ops", _version("alphaedition"), "ops.md"), tenant="acme")
    assert [r.version for r in await store.versions(kb.name, "acme")] == [first.version]
    assert await store.count_chunks(kb.name) == first.chunks
    found = await kb.search("how do I scale the workers?", tenant="acme")
    assert found.hits[0].doc_id == "ops" and "KEDA" in found.hits[0].text


async def test_an_unreachable_store_is_a_503(embedder: LiteLLMEmbedder) -> None:
    store = ChromaStore(ChromaOptions(url=f"http://127.0.0.1:{free_port()}", timeout_seconds=5))
    kb = make_kb(store, embedder)
    with pytest.raises(KnowledgeStoreUnavailableError) as caught:
        await kb.search("anything", tenant="acme")
    assert caught.value.status == 503
    await store.aclose()


async def _token_proxy(target: str, header: str, value: str) -> tuple[web.AppRunner, str]:
    """A reverse proxy in front of Chroma that refuses requests without the token."""
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        if request.headers.get(header) != value:
            return web.json_response({"error": "Unauthorized"}, status=401)
        skip = {"host", "content-length", header.lower()}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        async with session.request(
            request.method, target + request.path_qs, data=await request.read(), headers=headers
        ) as upstream:
            body = await upstream.read()
            return web.Response(
                status=upstream.status, body=body, content_type=upstream.content_type
            )

    async def close(_: web.Application) -> None:
        await session.close()

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", forward)
    app.on_cleanup.append(close)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("header", "sent"), [("Authorization", "Bearer s3cret"), ("X-Chroma-Token", "s3cret")]
)
async def test_the_token_reaches_a_server_behind_an_authenticating_proxy(
    chroma_server: ChromaServer, embedder: LiteLLMEmbedder, header: str, sent: str
) -> None:
    runner, url = await _token_proxy(chroma_server.url, header, sent)
    try:
        with_token = ChromaStore(
            ChromaOptions(url=url, token="s3cret", token_header=header, timeout_seconds=10)
        )
        kb = make_kb(with_token, embedder)
        await kb.ingest(upload("ops", OPS, "ops.md"), tenant="acme")
        assert (await kb.search("scale the workers", tenant="acme")).hits[0].doc_id == "ops"
        await with_token.aclose()
        without = ChromaStore(ChromaOptions(url=url, timeout_seconds=10))
        with pytest.raises(KnowledgeStoreUnavailableError):
            await make_kb(without, embedder).search("scale the workers", tenant="acme")
        await without.aclose()
    finally:
        await runner.cleanup()
