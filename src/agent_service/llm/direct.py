"""The direct transport: OpenAI-compatible servers called through the ``openai`` SDK alone.

LiteLLM costs ~190 MB of RSS and ~2 s at import, and ~4 ms of CPU per call on top of the SDK it
wraps (docs/performance.md: 57 % of a worker's CPU was inside ``litellm.acompletion``, most of it
response metadata, success handlers and cost lookups we do not use: we price calls ourselves).
For a model LiteLLM would hand to that same SDK unchanged, the SDK is called directly:

* **which models** (``is_direct``): provider ``openai`` (``openai/<name>``) with an ``apiBase``,
  i.e. OpenAI-compatible servers (vLLM, Ollama, LM Studio, a gateway, the simulator, or
  ``https://api.openai.com/v1`` written out). LiteLLM sends those the request as given. Models
  without an ``apiBase`` keep going through LiteLLM, which rewrites some parameters for OpenAI's
  reasoning models (``max_tokens`` to ``max_completion_tokens``); so does every other provider.
  ``AGENT_LLM_TRANSPORT=litellm`` sends every model through LiteLLM.
* **what stays the same**: the request (messages, tools, ``tool_choice``, ``response_format``,
  ``max_tokens``, ``temperature``), the answer's fields (read by attribute, as LiteLLM's
  mirrored classes are; a stream is the SDK's own chunk objects), the SDK's exceptions
  (``retry.classify`` names them the same), and everything around the call: our retries,
  fallbacks, deadlines, usage, cost and streaming.
  One difference: a read timeout in the middle of a stream is a ``timeout`` here, where LiteLLM
  reports it as a ``connection_error``.

Clients are cached per event loop, API base and key (an aiohttp session binds its connections
to one loop), on aiohttp like LiteLLM's (``httpx-aiohttp``, the SDK's ``aiohttp`` extra), with
the connection pool raised like LiteLLM's (``POOL_LIMIT``) and the SDK's own retries off.
``close_direct_clients`` closes the current loop's clients at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import TYPE_CHECKING, Any, cast

import httpx
import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from agent_service.agentconfig.model import ModelSpec

if TYPE_CHECKING:
    from openai._types import RequestOptions

POOL_LIMIT = 4096
"""Connections per client (one client per API base and key): above the worker's largest
concurrency (2,000 runs, one LLM call each at a time), so calls never queue for a connection."""
KEEPALIVE_LIMIT = 2048
"""Idle connections kept open per client."""

_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], openai.AsyncOpenAI]
] = weakref.WeakKeyDictionary()


def is_direct(spec: ModelSpec) -> bool:
    """Whether ``spec`` is an OpenAI-compatible server the SDK can call without LiteLLM."""
    return spec.api_base is not None and spec.model.startswith("openai/")


def provider_model(spec: ModelSpec) -> str:
    """The model name the server knows (``openai/sim-agent`` → ``sim-agent``)."""
    return spec.model.split("/", 1)[1]


def client_for(api_base: str, api_key: str) -> openai.AsyncOpenAI:
    """The current loop's SDK client for ``api_base`` and ``api_key`` (built once)."""
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (api_base, api_key)
    client = clients.get(key)
    if client is None:
        client = openai.AsyncOpenAI(
            base_url=api_base,
            api_key=api_key,
            max_retries=0,  # retries are ours, with accounting and fallbacks
            # aiohttp under the SDK (httpx-aiohttp), as LiteLLM does: httpx's own transport
            # cost 1.3x LiteLLM's CPU per call at 100 calls in flight (bench/worker_cpu.py)
            http_client=openai.DefaultAioHttpClient(
                limits=httpx.Limits(
                    max_connections=POOL_LIMIT, max_keepalive_connections=KEEPALIVE_LIMIT
                )
            ),
        )
        clients[key] = client
    return client


class Fields(dict[str, Any]):
    """A JSON object of a response, read by attribute as the SDK's models are read (a field
    the server left out reads None)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends look for dunders
            raise AttributeError(name)
        return self.get(name)


def parse_completion(body: bytes) -> Fields:
    """A ``chat.completion`` body, every object in it a ``Fields``."""
    return cast(Fields, json.loads(body, object_hook=Fields))


async def complete(spec: ModelSpec, api_key: str, request: dict[str, Any]) -> Any:
    """One chat completion (``request``: messages, tools, max_tokens, ``stream``, ...) of
    ``spec``: the answer as ``Fields``, or the SDK's ``AsyncStream`` of chunks.

    Sent with the SDK's ``post`` (its HTTP client, auth, timeouts and error classes), not
    ``chat.completions.create``: that one first walks the request against the SDK's typed
    parameters, and builds its response models by reflection, a third of a worker's CPU per
    call (bench/worker_cpu.py). Our request is already plain JSON, and the answer is read by
    ``client._parse_response`` attribute by attribute, which ``Fields`` serves.
    """
    assert spec.api_base is not None
    client = client_for(spec.api_base, api_key)
    body = {**request, "model": provider_model(spec)}
    options: RequestOptions = {"timeout": spec.timeout_seconds}
    if request.get("stream"):
        return await client.post(
            "/chat/completions",
            cast_to=ChatCompletion,
            body=body,
            options=options,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )
    raw = await client.post("/chat/completions", cast_to=bytes, body=body, options=options)
    return parse_completion(raw)


async def embed(spec: ModelSpec, api_key: str, texts: list[str]) -> Any:
    """One embeddings call of ``spec``: the SDK's response, vectors as base64 strings."""
    assert spec.api_base is not None
    client = client_for(spec.api_base, api_key)
    return await client.embeddings.create(
        model=provider_model(spec),
        input=texts,
        encoding_format="base64",
        timeout=spec.timeout_seconds,
    )


async def close_direct_clients() -> None:
    """Close the current loop's clients; a later call builds new ones."""
    clients = _clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.close()
