"""Knowledge bases: ingestion throughput and search latency at 1k, 10k and 100k chunks, on
embedded Chroma and on a real ``chroma run`` server, in the same run; and what chromadb costs.

Not a test: it prints figures and asserts nothing. Embeddings come from a simulator process
(``--ttft 0``) through LiteLLM over HTTP, as in the tests; the simulator's CPU is part of the
ingestion figure (about 1 ms per chunk), so the ratio between the two modes is the store's
difference. For each mode and size, a fresh knowledge base is filled with synthetic documents
of 50 sections, one ~200-token chunk each (words drawn with a fixed seed from docs/), ingested
``--concurrency`` documents at a time through ``KnowledgeBase.ingest`` (parse, chunk, embed,
store, commit). Then ``--queries`` sequential searches: ``KnowledgeBase.search`` (embedding the
question, querying, reading versions) and the store's ``query`` alone with a precomputed
vector. Sizes are cumulative within a mode: the 10k base holds its own 10k chunks.

    uv run python bench/retrieval.py                      # 1k, 10k, 100k, both modes
    uv run python bench/retrieval.py --sizes 1000 --modes server --queries 50
    uv run python bench/retrieval.py --footprint-only     # installed size and import RSS
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata as metadata
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, cpu_seconds, footer, header, median, pct, rss_mb
from tests.procs import Proc, base_env, chroma_args, cli, free_port, wait_http

SECTIONS_PER_DOC = 50
WORDS_PER_SECTION = 170


def vocabulary() -> list[str]:
    text = " ".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    return re.findall(r"[A-Za-z]{3,}", text)


def make_doc(rng: random.Random, words: list[str], number: int) -> bytes:
    parts = [f"# Document {number}"]
    for section in range(SECTIONS_PER_DOC):
        body = []
        for start in range(0, WORDS_PER_SECTION, 15):
            sentence = rng.choices(words, k=min(15, WORDS_PER_SECTION - start))
            body.append(" ".join(sentence).capitalize() + ".")
        parts.append(f"## Topic {section}\n\n" + " ".join(body))
    return "\n\n".join(parts).encode()


# --- footprint ---------------------------------------------------------------------------


def _requires(name: str) -> set[str]:
    from packaging.requirements import Requirement

    try:
        requirements = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return set()
    found = set()
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            found.add(requirement.name.lower().replace("_", "-"))
    return found


def _closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_requires(name) - seen)
    return seen


def _installed_mb(name: str) -> float:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return 0.0
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total / 1e6


RSS_PROBE = """
import sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
steps = [("python", rss(), 0.0)]
for label, code in [("+ litellm", "import litellm"), ("+ chromadb", "import chromadb"),
                    ("+ a PersistentClient", "chromadb.PersistentClient(path=sys.argv[1])"),
                    ("+ pypdf", "import pypdf")]:
    started = time.perf_counter()
    exec(code)
    steps.append((label, rss(), time.perf_counter() - started))
print(";".join(f"{label}={mb:.1f}={s:.2f}" for label, mb, s in steps))
print("onnxruntime imported:", "onnxruntime" in sys.modules)
"""


def footprint() -> None:
    ours = {r for r in _requires("agent-service") if r not in {"chromadb", "pypdf"}}
    added = sorted(_closure({"chromadb"}) - _closure(ours))
    sizes = sorted(((_installed_mb(n), n) for n in added), reverse=True)
    print(f"\n## chromadb's footprint: {len(added)} distributions the service did not have")
    print(
        f"installed: {sum(mb for mb, _ in sizes):.0f} MB; largest: "
        + ", ".join(f"{n} {mb:.0f} MB" for mb, n in sizes[:6])
    )
    print(f"pypdf: {_installed_mb('pypdf'):.1f} MB installed")
    with tempfile.TemporaryDirectory() as tmp:
        rounds = []
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", RSS_PROBE, tmp],
                capture_output=True,
                text=True,
                env=base_env(),
                check=True,
            ).stdout.splitlines()
            rounds.append([step.split("=") for step in out[0].split(";")])
            onnx = out[1]
    print("import RSS, median of 3 fresh processes (RSS after each step, delta, wall time):")
    previous = None
    for index, (label, _, _) in enumerate(rounds[0]):
        mb = median([float(r[index][1]) for r in rounds])
        seconds = median([float(r[index][2]) for r in rounds])
        delta = f"+{mb - previous:.1f} MB" if previous is not None else ""
        print(f"  {label:<22} {mb:7.1f} MB  {delta:>10}  {seconds:.2f} s")
        previous = mb
    print(f"  {onnx}")


# --- ingestion and search ------------------------------------------------------------------


async def ingest_all(kb: Any, docs: list[bytes], concurrency: int) -> list[int]:
    """Ingest ``docs``, ``concurrency`` at a time; the chunk count of each."""
    from agent_service.knowledge.base import DocumentUpload

    gate = asyncio.Semaphore(concurrency)

    async def one(number: int, data: bytes) -> int:
        async with gate:
            upload = DocumentUpload(f"doc-{number}", data, filename="d.md")
            result = await kb.ingest(upload, tenant="bench")
            assert result.status == "created", result
            return int(result.chunks)

    return await asyncio.gather(*(one(n, d) for n, d in enumerate(docs)))


async def run_mode(mode: str, sizes: list[int], args: argparse.Namespace, sim_url: str) -> None:
    from agent_service.agentconfig.knowledge import KnowledgeBaseSpec
    from agent_service.agentconfig.model import ModelSpec
    from agent_service.knowledge.base import KnowledgeBase
    from agent_service.knowledge.chroma import ChromaOptions, ChromaStore
    from agent_service.llm.embeddings import LiteLLMEmbedder

    words = vocabulary()
    questions = [" ".join(random.Random(i).choices(words, k=6)) for i in range(args.queries)]
    model = ModelSpec(name="emb", model="openai/sim-embedding", api_base=sim_url)
    embedder = LiteLLMEmbedder(model, batch_size=128, concurrency=4)
    server: Proc | None = None
    with tempfile.TemporaryDirectory() as tmp:
        if mode == "server":
            port = free_port()
            server = Proc("chroma", chroma_args(Path(tmp), port), base_env(), Path(tmp))
            wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", server, timeout=60)
            options = ChromaOptions(url=f"http://127.0.0.1:{port}", timeout_seconds=120)
        else:
            options = ChromaOptions(path=Path(tmp) / "embedded", timeout_seconds=120)
        store = ChromaStore(options)
        try:
            for size in sizes:
                spec = KnowledgeBaseSpec(
                    name=f"bench-{size}-{uuid.uuid4().hex[:6]}",
                    description="bench",
                    embedding_model="emb",
                )
                kb = KnowledgeBase(spec, embedder, store)
                rng = random.Random(size)
                docs = [make_doc(rng, words, n) for n in range(size // SECTIONS_PER_DOC)]
                started = time.perf_counter()
                chunks = sum(await ingest_all(kb, docs, args.concurrency))
                ingest_s = time.perf_counter() - started
                full, raw = [], []
                for question in questions:
                    t0 = time.perf_counter()
                    found = await kb.search(question, tenant="bench", min_score=-1)
                    full.append((time.perf_counter() - t0) * 1000)
                    assert found.hits, question
                vectors = (await embedder.embed(questions)).vectors
                for vector in vectors:
                    t0 = time.perf_counter()
                    await store.query(spec.name, "bench", vector, spec.top_k * 2 + 10)
                    raw.append((time.perf_counter() - t0) * 1000)
                memory = f"bench RSS {rss_mb(os.getpid()):.0f} MB"
                if server is not None:
                    memory += f", chroma server RSS {rss_mb(server.pid):.0f} MB"
                print(
                    f"{mode:<8} {chunks:>7} chunks  ingest {chunks / ingest_s:7.0f} chunks/s "
                    f"({ingest_s:6.1f} s)  search p50 {pct(full, 50):6.2f} ms p99 "
                    f"{pct(full, 99):6.2f} ms  store query p50 {pct(raw, 50):6.2f} ms p99 "
                    f"{pct(raw, 99):6.2f} ms  ({memory})",
                    flush=True,
                )
        finally:
            await store.aclose()
            if server is not None:
                server.stop()


async def warm_up(sim_url: str) -> None:
    """LiteLLM's first call imports most of it (~1.5 s): not part of any figure."""
    from agent_service.agentconfig.model import ModelSpec
    from agent_service.llm.embeddings import LiteLLMEmbedder

    model = ModelSpec(name="emb", model="openai/sim-embedding", api_base=sim_url)
    await LiteLLMEmbedder(model).embed(["warm up"])


async def main_async(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as logs:
        port = free_port()
        flags = ["--port", str(port), "--ttft", "0"]
        sim = Proc("sim", cli("sim-llm", *flags), base_env(), Path(logs))
        try:
            wait_http(f"http://127.0.0.1:{port}/v1/models", sim, timeout=60)
            print(
                f"\n## ingestion and search ({args.queries} sequential searches, topK 5, "
                f"{args.concurrency} documents ingested at a time, 512-dimension vectors)"
            )
            await warm_up(f"http://127.0.0.1:{port}/v1")
            for mode in args.modes.split(","):
                sim_cpu = cpu_seconds(sim.pid)
                await run_mode(mode, sizes, args, f"http://127.0.0.1:{port}/v1")
                print(
                    f"{mode:<8} simulator CPU for the mode: {cpu_seconds(sim.pid) - sim_cpu:.1f} s"
                )
        finally:
            from agent_service.llm.client import close_llm_clients

            await close_llm_clients()  # LiteLLM's sessions, before the loop closes
            sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--modes", default="embedded,server")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--footprint-only", action="store_true")
    args = parser.parse_args()
    header("knowledge bases: ingestion throughput, search latency, chromadb footprint")
    footprint()
    if not args.footprint_only:
        asyncio.run(main_async(args))
    footer()


if __name__ == "__main__":
    main()
