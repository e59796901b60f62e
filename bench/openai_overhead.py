"""OpenAI faces: ``POST /v1/responses`` next to ``POST /v1/chat/completions`` for the same
one-call chat, in the same run.

Not a test: it prints figures. "hello there" needs no tool, so each request is one LLM call;
the simulator answers after ``--ttft`` seconds. Each round sends ``--requests`` sequential
requests (c=1, one keep-alive connection) to each of: ``/v1/chat`` (the service's own face),
``/v1/chat/completions``, ``/v1/responses`` (stored, the default) and ``/v1/responses`` with
``store: false``, interleaved request by request (one to each face, then the next), so the
faces share the machine's load even when other work comes and goes. Figures are latencies minus
the simulated time, medians of ``--rounds`` rounds; the Responses overhead is also given paired:
the median of (Responses - Chat Completions) over neighbouring requests.

    uv run python bench/openai_overhead.py --requests 200 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, pct, spread, stack

MESSAGE = "hello there"


def _faces() -> dict[str, Face]:
    """name: (route, body, check of the answer)."""
    return {
        "/v1/chat": ("/v1/chat", {"message": MESSAGE}, lambda a: bool(a["answer"])),
        "/v1/chat/completions": (
            "/v1/chat/completions",
            {"model": "default", "messages": [{"role": "user", "content": MESSAGE}]},
            lambda a: bool(a["choices"][0]["message"]["content"]),
        ),
        "/v1/responses": (
            "/v1/responses",
            {"model": "default", "input": MESSAGE},
            lambda a: a["status"] == "completed",
        ),
        "/v1/responses store=false": (
            "/v1/responses",
            {"model": "default", "input": MESSAGE, "store": False},
            lambda a: a["status"] == "completed",
        ),
    }


Face = tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]


def one(client: httpx.Client, face: Face) -> float:
    route, body, ok = face
    started = time.perf_counter()
    resp = client.post(route, json=body)
    elapsed = (time.perf_counter() - started) * 1000
    assert resp.status_code == 200 and ok(resp.json()), resp.text
    return elapsed


def interleaved(client: httpx.Client, faces: dict[str, Face], count: int) -> dict[str, list[float]]:
    """``count`` requests to each face, one to each in turn."""
    measured: dict[str, list[float]] = {name: [] for name in faces}
    for _ in range(count):
        for name, face in faces.items():
            measured[name].append(one(client, face))
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="requests per face per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ttft", type=float, default=0.02, help="simulated seconds per call")
    args = parser.parse_args()
    simulated = args.ttft * 1000
    header(
        f"OpenAI faces: {MESSAGE!r} (1 LLM call), {args.requests} sequential x {args.rounds} "
        f"rounds per face, simulated LLM time {simulated:.0f} ms"
    )
    faces = _faces()
    p50: dict[str, list[float]] = {name: [] for name in faces}
    p99: dict[str, list[float]] = {name: [] for name in faces}
    paired: dict[str, list[float]] = {name: [] for name in faces}
    with stack("openai") as s:
        redis_url = s.redis()
        sim_url = s.sim("--ttft", str(args.ttft))
        url = s.api({"AGENT_REDIS_URL": redis_url, "AGENT_SIM_URL": sim_url})
        with httpx.Client(base_url=url, timeout=30) as client:
            interleaved(client, faces, 20)  # warm-up
            for _ in range(args.rounds):
                measured = interleaved(client, faces, args.requests)
                base = measured["/v1/chat/completions"]
                for name, values in measured.items():
                    p50[name].append(pct(values, 50) - simulated)
                    p99[name].append(pct(values, 99) - simulated)
                    diffs = [v - b for v, b in zip(values, base, strict=True)]
                    paired[name].append(pct(diffs, 50))
    print(f"{'overhead (latency - simulated)':34s} {'p50 ms':>8s} {'p99 ms':>8s}   p50 spread")
    for name in faces:
        print(f"{name:34s} {median(p50[name]):8.2f} {median(p99[name]):8.2f}   {spread(p50[name])}")
    base = median(p50["/v1/chat/completions"])
    for name in ("/v1/chat", "/v1/responses", "/v1/responses store=false"):
        ratio = median(p50[name]) / base if base > 0 else float("nan")
        print(
            f"{name} - chat/completions: paired median {median(paired[name]):+.2f} ms "
            f"(rounds {spread(paired[name])}); p50 overhead x{ratio:.2f}"
        )
    footer()


if __name__ == "__main__":
    main()
