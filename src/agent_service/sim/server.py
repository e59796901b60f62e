"""The simulator's HTTP server: OpenAI's ``/v1/chat/completions``, ``/v1/embeddings`` and
``/v1/models`` on aiohttp.

``cli.py`` calls ``serve`` for ``agent-service sim-llm``; tests and benchmarks start that command
as a real process. ``create_app`` builds the application, so it can also run in-process. Per
request the work is one ``behaviour.decide`` call, a few ``json.dumps`` and one timer: a single
process keeps up with hundreds of concurrent slow requests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import random
import signal
import struct
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web

from agent_service.sim.behaviour import Reply, decide, last_user_text
from agent_service.sim.conversations import ConversationCounter
from agent_service.sim.embeddings import MAX_DIMENSIONS, embed
from agent_service.sim.options import SimOptions
from agent_service.sim.structured import structured_text, wants_json
from agent_service.sim.tokens import count_tokens, prompt_tokens, split_tokens, tool_call_tokens

log = logging.getLogger(__name__)

MODEL_IDS = ("sim-agent", "sim-agent-backup", "sim-embedding")
SYSTEM_FINGERPRINT = "fp_agent_service_sim"
# Without pacing, text streams in chunks of this many tokens.
UNPACED_CHUNK_TOKENS = 4
# With pacing, chunks are at least this far apart, so a fast pace does not mean a timer per token.
MIN_CHUNK_INTERVAL = 0.02
RETRY_AFTER_SECONDS = "1"
# OpenAI's limits of one embeddings request: inputs per request, tokens per input.
MAX_EMBEDDING_INPUTS = 2048
MAX_EMBEDDING_INPUT_TOKENS = 8192


class SimState:
    """Per-application state: the options and the seeded generator that picks failures."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)  # noqa: S311 - reproducible, not secret
        self.conversations = ConversationCounter()

    def draw_failure(self, model: str) -> str | None:
        """The failure for the next request to ``model``: "429", "500", "hang" or None.

        Draws from the seeded generator only for models failures apply to.
        """
        opts = self.options
        if opts.failure_share <= 0 or (opts.fail_models and model not in opts.fail_models):
            return None
        draw = self.rng.random()
        if draw < opts.fail_429:
            return "429"
        if draw < opts.fail_429 + opts.fail_500:
            return "500"
        if draw < opts.failure_share:
            return "hang"
        return None


STATE = web.AppKey("sim_state", SimState)


@dataclass(frozen=True)
class CompletionRequest:
    """The parts of a chat completion request the simulator uses."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: Any
    stream: bool
    include_usage: bool
    max_tokens: int | None
    response_format: dict[str, Any] | None = None


class BadRequestError(Exception):
    """The request body is not a valid chat completion request; the message says why."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Answer:
    """A reply made ready for the wire: text pieces or tool calls, with token counts."""

    reply: Reply
    pieces: tuple[str, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def text(self) -> str | None:
        return "".join(self.pieces) if self.reply.text is not None else None

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def parse_request(body: Any) -> CompletionRequest:
    """Validate a decoded request body; raises ``BadRequestError``."""
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty array.", "messages")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequestError("Each message must be an object with a 'role'.", "messages")
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise BadRequestError("'tools' must be an array of objects.", "tools")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise BadRequestError("'max_tokens' must be a positive integer.", "max_tokens")
    stream_options = body.get("stream_options")
    response_format = body.get("response_format")
    return CompletionRequest(
        model=str(body.get("model") or MODEL_IDS[0]),
        messages=messages,
        tools=tools,
        tool_choice=body.get("tool_choice"),
        stream=body.get("stream") is True,
        include_usage=isinstance(stream_options, dict)
        and stream_options.get("include_usage") is True,
        max_tokens=max_tokens,
        response_format=response_format if wants_json(response_format) else None,
    )


def make_answer(request: CompletionRequest, seed: int) -> Answer:
    """Decide the reply and count its tokens, truncating text at ``max_tokens``."""
    reply = decide(
        request.messages,
        request.tools,
        model=request.model,
        seed=seed,
        tool_choice=request.tool_choice,
    )
    if reply.text is not None and request.response_format is not None:
        text = structured_text(
            request.response_format, reply.text, request.messages, last_user_text(request.messages)
        )
        reply = Reply(text=text)
    prompt = prompt_tokens(request.messages)
    if reply.text is None:
        completion = sum(tool_call_tokens(c.name, c.arguments) for c in reply.tool_calls)
        return Answer(reply, (), "tool_calls", prompt, completion)
    pieces = split_tokens(reply.text)
    finish = "stop"
    if request.max_tokens is not None and len(pieces) > request.max_tokens:
        pieces, finish = pieces[: request.max_tokens], "length"
    return Answer(reply, tuple(pieces), finish, prompt, count_tokens("".join(pieces)))


def completion_body(answer: Answer, model: str, completion_id: str) -> dict[str, Any]:
    """A ``chat.completion`` object, as OpenAI returns it."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.reply.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": answer.usage(),
    }


@dataclass(frozen=True)
class EmbeddingRequest:
    """The parts of an embeddings request the simulator uses."""

    model: str
    inputs: list[str]
    dimensions: int | None
    base64: bool


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _embedding_inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        return raw
    if isinstance(raw, list) and raw and all(isinstance(item, int | list) for item in raw):
        message = "Token arrays are not supported by the simulator: send text."
        raise BadRequestError(message, "input")
    raise BadRequestError("'input' must be a non-empty string or array of strings.", "input")


def parse_embedding_request(body: Any) -> EmbeddingRequest:
    """Validate a decoded embeddings request body, with OpenAI's limits; raises
    ``BadRequestError``."""
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.")
    inputs = _embedding_inputs(body.get("input"))
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise BadRequestError(
            f"'input' holds {len(inputs)} texts, at most {MAX_EMBEDDING_INPUTS} are allowed.",
            "input",
        )
    for index, text in enumerate(inputs):
        if not text:
            raise BadRequestError(f"'input[{index}]' must not be empty.", "input")
        tokens = count_tokens(text)
        if tokens > MAX_EMBEDDING_INPUT_TOKENS:
            raise BadRequestError(
                f"This model's maximum context length is {MAX_EMBEDDING_INPUT_TOKENS} tokens, "
                f"however you requested {tokens} tokens in 'input[{index}]'.",
                "input",
            )
    dimensions = body.get("dimensions")
    if dimensions is not None and not (_positive_int(dimensions) and dimensions <= MAX_DIMENSIONS):
        raise BadRequestError(
            f"'dimensions' must be an integer within [1, {MAX_DIMENSIONS}].", "dimensions"
        )
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequestError("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return EmbeddingRequest(
        model=str(body.get("model") or "sim-embedding"),
        inputs=inputs,
        dimensions=dimensions,
        base64=encoding == "base64",
    )


def embedding_body(request: EmbeddingRequest, dimensions: int) -> dict[str, Any]:
    """A ``list`` of ``embedding`` objects with ``usage``, as OpenAI returns it; ``base64``
    vectors are the little-endian float32 bytes, as OpenAI encodes them."""
    data: list[dict[str, Any]] = []
    for index, text in enumerate(request.inputs):
        vector = embed(text, dimensions)
        encoded: list[float] | str = vector
        if request.base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count_tokens(text) for text in request.inputs)
    return {
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _groups(pieces: Sequence[str], size: int) -> list[str]:
    return ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]


def stream_deltas(answer: Answer, chunk_tokens: int) -> list[tuple[int, dict[str, Any]]]:
    """The deltas of a streamed answer, each with the number of tokens generated before it is due.

    Tool calls stream like OpenAI's: index, id, type and name first, then the arguments in parts.
    """
    if answer.reply.text is not None:
        deltas: list[tuple[int, dict[str, Any]]] = [(0, {"role": "assistant", "content": ""})]
        done = 0
        for start in range(0, len(answer.pieces), chunk_tokens):
            part = answer.pieces[start : start + chunk_tokens]
            done += len(part)
            deltas.append((done, {"content": "".join(part)}))
        return deltas
    deltas = [(0, {"role": "assistant", "content": None})]
    done = 0
    for index, call in enumerate(answer.reply.tool_calls):
        done += count_tokens(call.name)
        header = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append((done, {"tool_calls": [header]}))
        for arguments in _groups(split_tokens(call.arguments), chunk_tokens):
            done += count_tokens(arguments)
            delta = {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}
            deltas.append((done, delta))
    return deltas


def _sse(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def _error(
    status: int,
    message: str,
    kind: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


async def _failure(kind: str, options: SimOptions) -> web.Response:
    if kind == "429":
        return _error(
            429,
            "Rate limit reached for the simulated model (injected failure).",
            "rate_limit_error",
            code="rate_limit_exceeded",
            headers={"retry-after": RETRY_AFTER_SECONDS},
        )
    if kind == "hang":
        await asyncio.sleep(options.hang_seconds)
    return _error(500, "The simulated server had an error (injected failure).", "server_error")


def _pace(options: SimOptions, tokens: int) -> float:
    """Seconds from the request until ``tokens`` tokens have been generated (first at ttft)."""
    if options.tokens_per_second <= 0:
        return options.ttft_seconds
    return options.ttft_seconds + max(tokens - 1, 0) / options.tokens_per_second


async def _stream(
    http: web.Request,
    request: CompletionRequest,
    answer: Answer,
    options: SimOptions,
    completion_id: str,
) -> web.StreamResponse:
    started = asyncio.get_running_loop().time()
    tps = options.tokens_per_second
    chunk_tokens = max(1, math.ceil(tps * MIN_CHUNK_INTERVAL)) if tps > 0 else UNPACED_CHUNK_TOKENS
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    events = [
        (
            tokens,
            _sse(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                    ],
                }
            ),
        )
        for tokens, delta in stream_deltas(answer, chunk_tokens)
    ]
    final = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": answer.finish_reason}
    tail = [_sse({**base, "choices": [final]})]
    if request.include_usage:
        tail.append(_sse({**base, "choices": [], "usage": answer.usage()}))
    tail.append(b"data: [DONE]\n\n")
    events.append((answer.completion_tokens, b"".join(tail)))

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(http)
    with contextlib.suppress(ConnectionResetError):  # the client left mid-stream
        await _send_paced(response, events, started, options)
    return response


async def _send_paced(
    response: web.StreamResponse,
    events: list[tuple[int, bytes]],
    started: float,
    options: SimOptions,
) -> None:
    pending: list[bytes] = []
    # Events already due go out in one write: without pacing the whole answer is one write.
    for tokens, data in events:
        delay = started + _pace(options, tokens) - asyncio.get_running_loop().time()
        if delay > 0:
            if pending:
                await response.write(b"".join(pending))
                pending.clear()
            await asyncio.sleep(delay)
        pending.append(data)
    await response.write(b"".join(pending))
    await response.write_eof()


class _ModelRequest(Protocol):
    @property
    def model(self) -> str: ...


RequestT = TypeVar("RequestT", bound=_ModelRequest)


async def _admit(http: web.Request, parse: Callable[[Any], RequestT]) -> RequestT | web.Response:
    """The parsed request, or the answer instead of one: a 400 for a bad body, or the failure
    injected for its model."""
    state = http.app[STATE]
    try:
        request = parse(json.loads(await http.read()))
    except ValueError:
        return _error(400, "The request body is not valid JSON.", "invalid_request_error")
    except BadRequestError as exc:
        return _error(400, str(exc), "invalid_request_error", param=exc.param)
    if isinstance(request, CompletionRequest):
        state.conversations.count(request.messages)
    failure = state.draw_failure(request.model)
    if failure is not None:
        return await _failure(failure, state.options)
    return request


async def chat_completions(http: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``: the answer after the simulated delay, or a failure."""
    options = http.app[STATE].options
    request = await _admit(http, parse_request)
    if isinstance(request, web.Response):
        return request
    answer = make_answer(request, options.seed)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if request.stream:
        return await _stream(http, request, answer, options, completion_id)
    delay = options.ttft_seconds
    if options.tokens_per_second > 0:
        delay += answer.completion_tokens / options.tokens_per_second
    await asyncio.sleep(delay)
    return web.json_response(
        completion_body(answer, request.model, completion_id),
        dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
    )


async def embeddings(http: web.Request) -> web.Response:
    """``POST /v1/embeddings``: the vectors after ``--ttft`` seconds, or a failure."""
    options = http.app[STATE].options
    request = await _admit(http, parse_embedding_request)
    if isinstance(request, web.Response):
        return request
    body = embedding_body(request, request.dimensions or options.embedding_dimensions)
    await asyncio.sleep(options.ttft_seconds)
    return web.json_response(body)


async def list_models(_: web.Request) -> web.Response:
    """``GET /v1/models``: a few ids; completions accept any model id anyway."""
    data = [
        {"id": m, "object": "model", "created": 0, "owned_by": "agent-service-sim"}
        for m in MODEL_IDS
    ]
    return web.json_response({"object": "list", "data": data})


async def conversations(http: web.Request) -> web.Response:
    """``GET /admin/conversations``: completion requests per conversation (``DELETE`` clears).

    ``{"conversations": {"<id>": {"first_user", "requests", "distinct", "repeated"}}}``; the id
    is ``conversations.conversation_id(<first user message>)``."""
    counter = http.app[STATE].conversations
    if http.method == "DELETE":
        counter.clear()
    return web.json_response({"conversations": counter.view()})


async def health(_: web.Request) -> web.Response:
    """``GET /health``: the process is serving."""
    return web.json_response({"status": "ok"})


async def _add_request_id(http: web.Request, response: web.StreamResponse) -> None:
    # on_response_prepare runs before headers go out, for streamed responses too.
    response.headers["x-request-id"] = http.headers.get("x-request-id") or uuid.uuid4().hex


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _check_key(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """With ``SimOptions.api_key``: 401 for an API route without that bearer key, in
    OpenAI's shape (probes and the admin routes stay open)."""
    expected = request.app[STATE].options.api_key
    if expected is None or request.path == "/health" or request.path.startswith("/admin/"):
        return await handler(request)
    if request.headers.get("Authorization") != f"Bearer {expected}":
        return _error(
            401,
            "Incorrect API key provided (simulator).",
            "invalid_request_error",
            code="invalid_api_key",
        )
    return await handler(request)


def create_app(options: SimOptions) -> web.Application:
    """The simulator's aiohttp application, with its own seeded failure generator."""
    app = web.Application(middlewares=[_check_key])
    app[STATE] = SimState(options)
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
        app.router.add_get(f"{prefix}/models", list_models)
    app.router.add_get("/health", health)
    app.router.add_get("/admin/conversations", conversations)
    app.router.add_delete("/admin/conversations", conversations)
    app.on_response_prepare.append(_add_request_id)
    return app


async def _run(options: SimOptions) -> None:
    # Hung requests must not hold up shutdown: in-flight handlers get half a second, then cancel.
    runner = web.AppRunner(
        create_app(options), access_log=None, shutdown_timeout=0.5, handler_cancellation=True
    )
    await runner.setup()
    # A deep backlog: benchmarks open hundreds of connections at once, and a dropped SYN costs
    # the client a one-second retransmit.
    site = web.TCPSite(runner, options.host, options.port, backlog=4096)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = runner.addresses[0][:2]
    pace = f"{options.tokens_per_second:g} tokens/s" if options.tokens_per_second else "unpaced"
    log.info(
        "sim-llm listening on http://%s:%s/v1 (ttft %.3fs, %s, 429 %.2f, 500 %.2f, "
        "hang %.2f, failing models %s, seed %d, embeddings of %d dimensions)",
        host,
        port,
        options.ttft_seconds,
        pace,
        options.fail_429,
        options.fail_500,
        options.hang,
        ",".join(options.fail_models) or "all",
        options.seed,
        options.embedding_dimensions,
    )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    log.info("sim-llm stopped")


def serve(options: SimOptions) -> None:
    """Serve until SIGTERM or SIGINT (blocking); the entry point of ``agent-service sim-llm``."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    asyncio.run(_run(options))
