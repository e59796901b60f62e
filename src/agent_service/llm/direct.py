"""The direct transport: OpenAI-compatible servers called without LiteLLM.

LiteLLM costs ~190 MB of RSS and ~2 s at import, and ~4 ms of CPU per call on top of the SDK it
wraps (docs/performance.md: 57 % of a worker's CPU was inside ``litellm.acompletion``, most of it
response metadata, success handlers and cost lookups we do not use: we price calls ourselves).
For a model LiteLLM would hand to the ``openai`` SDK unchanged, the call is made here:

* **which models** (``is_direct``): provider ``openai`` (``openai/<name>``) with an ``apiBase``,
  i.e. OpenAI-compatible servers (vLLM, Ollama, LM Studio, a gateway, the simulator, or
  ``https://api.openai.com/v1`` written out). LiteLLM sends those the request as given. Models
  without an ``apiBase`` keep going through LiteLLM, which rewrites some parameters for OpenAI's
  reasoning models (``max_tokens`` to ``max_completion_tokens``); so does every other provider.
  ``AGENT_LLM_TRANSPORT=litellm`` sends every model through LiteLLM.
* **how**: a plain answer is one aiohttp POST of the request's JSON, read with ``json.loads``
  (``complete``); a stream and embeddings go through the SDK (its SSE decoding and chunk
  objects, its base64 vectors), on aiohttp too (``httpx-aiohttp``, the SDK's ``aiohttp``
  extra), with the SDK's own retries off.
* **what stays the same**: the request (messages, tools, ``tool_choice``, ``response_format``,
  ``max_tokens``, ``temperature``), the answer's fields (read by attribute, as LiteLLM's
  mirrored classes are), errors (``retry.classify`` names a status the same whoever raised
  it), TLS verification and proxies, and everything around the call: our retries, fallbacks,
  deadlines, usage, cost and streaming. The same tests run on both transports
  (tests/integration/test_llm_client.py). One difference: a read timeout in the middle of a
  stream is a ``timeout`` here, where LiteLLM reports it as a ``connection_error``.

Sessions and clients are cached per event loop (an aiohttp session binds its connections to one
loop), with the connection pool raised like LiteLLM's (``POOL_LIMIT``);
``close_direct_clients`` closes the current loop's at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import httpx
import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from agent_service import __version__
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
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


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


_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def status_error(url: str, status: int, raw: bytes) -> openai.APIStatusError:
    """The SDK's exception for an error status, as its own client raises it: the class by
    status (``retry.classify`` names them), its message and its parsed body."""
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    error = body.get("error", body) if isinstance(body, dict) else body
    response = httpx.Response(status, content=raw, request=httpx.Request("POST", url))
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls(f"Error code: {status} - {body}", response=response, body=error)


def parse_completion(body: bytes) -> Fields:
    """A ``chat.completion`` body, every object in it a ``Fields``."""
    return cast(Fields, json.loads(body, object_hook=Fields))


def _session() -> aiohttp.ClientSession:
    """The current loop's session for non-streamed completions (built once; a closed one
    is replaced)."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=POOL_LIMIT,
                # the SDK's TLS verification: certifi, or SSL_CERT_FILE / SSL_CERT_DIR
                ssl=httpx.create_ssl_context(),
            ),
            trust_env=True,  # HTTP(S)_PROXY and NO_PROXY, as the SDK's client honours them
            headers={"User-Agent": f"agent-service/{__version__}"},
        )
        _sessions[loop] = session
    return session


async def complete(spec: ModelSpec, api_key: str, request: dict[str, Any]) -> Any:
    """One chat completion (``request``: messages, tools, max_tokens, ``stream``, ...) of
    ``spec``: the answer as ``Fields``, or the SDK's ``AsyncStream`` of chunks.

    A stream goes through the SDK (its SSE decoding and chunk objects), sent with its ``post``
    rather than ``chat.completions.create``, which first walks the request against the SDK's
    typed parameters (our request is plain JSON already). A plain answer is one aiohttp POST
    and ``json.loads``: the SDK around that same aiohttp call (httpx request and response
    objects, response models built by reflection) cost ~40 % of a worker's CPU per run
    (bench/worker_cpu.py, py-spy). The request is the same JSON and header, the timeout
    applies to connecting and to each read as the SDK's does, and an error status raises the
    SDK's own exception for it (``status_error``).
    """
    assert spec.api_base is not None
    body = {**request, "model": provider_model(spec)}
    if request.get("stream"):
        client = client_for(spec.api_base, api_key)
        options: RequestOptions = {"timeout": spec.timeout_seconds}
        return await client.post(
            "/chat/completions",
            cast_to=ChatCompletion,
            body=body,
            options=options,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )
    timeout = spec.timeout_seconds
    url = f"{spec.api_base.rstrip('/')}/chat/completions"
    async with _session().post(
        url,
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout, connect=timeout),
        allow_redirects=False,
    ) as response:
        raw = await response.read()
        if response.status >= 400:
            raise status_error(url, response.status, raw)
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
    """Close the current loop's clients and session; a later call builds new ones."""
    loop = asyncio.get_running_loop()
    clients = _clients.pop(loop, {})
    for client in clients.values():
        await client.close()
    session = _sessions.pop(loop, None)
    if session is not None:
        await session.close()
