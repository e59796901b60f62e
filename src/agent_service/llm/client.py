"""``LiteLLMClient``: the ``LLMPort`` on LiteLLM and the ``openai`` SDK, with our retries and
fallbacks.

Built per config snapshot by the runtime (``LiteLLMClient.for_config``): it knows that
snapshot's models and retry policy, so a run only names a model. One ``complete``
walks the model's fallback chain; each model gets ``1 + retry.max_retries`` attempts with full
jitter backoff (``retry``); LiteLLM's own retries are off so the accounting stays in one place.
Each attempt is recorded as an ``LLMAttempt`` on the completion, or on the raised error's
``attempts`` for metrics.

Each attempt goes through one of two transports: OpenAI-compatible servers (``openai/<name>``
with an ``apiBase``) straight through the ``openai`` SDK (``direct``), every other model through
LiteLLM (``via_litellm``, imported on first use). ``transport="litellm"``
(``AGENT_LLM_TRANSPORT``) sends every model through LiteLLM. Both hand back the SDK's response
and chunk shapes, so parsing, streaming, usage and cost below are one code path.
This is the hot path: it adds only plain dict building and attribute reads around the call.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent_service.agent.ports import DeltaCallback
from agent_service.agentconfig.model import (
    AgentConfig,
    ModelSpec,
    RetryPolicy,
)
from agent_service.agentconfig.secrets import resolve_secret
from agent_service.domain.errors import LLMBadRequestError, LLMUnavailableError
from agent_service.domain.messages import (
    ChatMessage,
    LLMAttempt,
    LLMCompletion,
    TokenUsage,
    ToolCall,
    ToolSpec,
)
from agent_service.llm import direct
from agent_service.llm.cost import cost_usd
from agent_service.llm.retry import (
    FailureOutcome,
    backoff_delay,
    classify,
    fallback_chain,
    is_retryable,
)
from agent_service.settings import DEFAULT_SECRETS_DIR

if TYPE_CHECKING:
    from types import ModuleType

log = logging.getLogger(__name__)

Transport = Literal["auto", "litellm"]
"""``auto``: OpenAI-compatible servers through the ``openai`` SDK, the rest through LiteLLM;
``litellm``: every model through LiteLLM."""

DEADLINE_MARGIN_SECONDS = 1.0
"""Added to a model's ``timeout_seconds`` for our own deadline around an attempt: LiteLLM's
timeout fires first in normal cases, ours only catches hangs it misses (a server dripping bytes
keeps an idle-read timeout from ever firing)."""

NO_KEY = "not-needed"
"""API key sent to an ``api_base`` with no configured key: OpenAI-compatible local servers
ignore it, but the OpenAI client refuses to send a request without one."""

_ERROR_TEXT_MAX = 300


@dataclass(slots=True)
class _Answer:
    """One successful attempt, in our terms."""

    content: str | None
    tool_calls: list[ToolCall]
    input_tokens: int | None
    output_tokens: int | None
    response_model: str | None
    finish_reason: str | None
    time_to_first_token_ms: float | None = None


@dataclass(slots=True)
class _Progress:
    """What a streamed attempt has already handed to the caller."""

    emitted: bool = False
    callback_failed: bool = False


@dataclass(slots=True)
class _ToolCallParts:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChainExhaustedError(LLMUnavailableError):
    """``LLMUnavailableError`` carrying every attempt made (for failure metrics)."""

    def __init__(self, message: str, attempts: list[LLMAttempt]) -> None:
        super().__init__(message)
        self.attempts = attempts


class RequestRejectedError(LLMBadRequestError):
    """``LLMBadRequestError`` carrying every attempt made (for failure metrics)."""

    def __init__(self, message: str, attempts: list[LLMAttempt]) -> None:
        super().__init__(message)
        self.attempts = attempts


class LiteLLMClient:
    """``LLMPort`` on LiteLLM for one set of configured ``models`` and their ``retry`` policy.

    ``rng`` and ``sleep`` are injectable for deterministic tests; ``secrets_dir`` is where
    Secrets named by ``secretKeyRef`` are mounted. Cheap to build: LiteLLM's HTTP clients are
    process-wide (``close_llm_clients`` closes them at shutdown).
    """

    def __init__(
        self,
        models: Sequence[ModelSpec],
        retry: RetryPolicy,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        secrets_dir: Path = DEFAULT_SECRETS_DIR,
        transport: Transport = "auto",
    ) -> None:
        self._models = {spec.name: spec for spec in models}
        self._retry = retry
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto
        self._sleep = sleep
        self._secrets_dir = secrets_dir
        self._direct = {
            spec.name: transport == "auto" and direct.is_direct(spec) for spec in models
        }

    @classmethod
    def for_config(
        cls,
        config: AgentConfig,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        secrets_dir: Path = DEFAULT_SECRETS_DIR,
        transport: Transport = "auto",
    ) -> LiteLLMClient:
        """The client of a config snapshot: its models and retry policy."""
        return cls(
            config.models,
            config.retry,
            rng=rng,
            sleep=sleep,
            secrets_dir=secrets_dir,
            transport=transport,
        )

    async def complete(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        response_format: dict[str, Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> LLMCompletion:
        """One logical call on configured model ``model``, with retries and fallbacks.

        Streams when ``on_delta`` is given. Known limitation: once a fragment has been handed to
        ``on_delta``, a failure is neither retried nor passed to a fallback model (the caller
        would see the answer start over); it raises ``LLMUnavailableError`` at once.
        """
        attempts: list[LLMAttempt] = []
        retry = self._retry
        try:
            chain = fallback_chain(self._models, model)
        except KeyError:
            raise RequestRejectedError(f"model {model!r} is not configured", attempts) from None
        request = _request(messages, tools, response_format, tool_choice)
        progress = _Progress()
        for name in chain:
            spec = self._models[name]
            for attempt in range(1 + retry.max_retries):
                await retry_pause(attempt, retry, self._rng, self._sleep)
                started = time.perf_counter()
                try:
                    answer = await self._attempt(spec, request, max_tokens, on_delta, progress)
                except Exception as exc:
                    if progress.callback_failed:
                        raise  # the caller's own error, not the model's
                    outcome = classify(exc)
                    attempts.append(failed_attempt(spec, outcome, started, exc))
                    if outcome == "bad_request":
                        raise RequestRejectedError(
                            f"model {spec.name!r} rejected the request ({type(exc).__name__})",
                            attempts,
                        ) from exc
                    if progress.emitted:
                        raise ChainExhaustedError(
                            f"model {spec.name!r} failed mid-stream ({outcome}) after part of "
                            "the answer was sent; not retried",
                            attempts,
                        ) from exc
                    if is_retryable(outcome):
                        continue
                    break  # other_error: not worth repeating here, maybe on the next model
                duration_ms = (time.perf_counter() - started) * 1000.0
                attempts.append(
                    LLMAttempt(
                        model=spec.name,
                        provider=spec.provider,
                        outcome="ok",
                        duration_ms=duration_ms,
                    )
                )
                return _completion(
                    spec=spec,
                    requested=model,
                    messages=messages,
                    answer=answer,
                    duration_ms=duration_ms,
                    attempts=attempts,
                )
        raise ChainExhaustedError(f"no model answered: {attempt_summary(attempts)}", attempts)

    async def _attempt(
        self,
        spec: ModelSpec,
        request: dict[str, Any],
        max_tokens: int | None,
        on_delta: DeltaCallback | None,
        progress: _Progress,
    ) -> _Answer:
        deadline = spec.timeout_seconds + DEADLINE_MARGIN_SECONDS
        call = {**request, "max_tokens": min(max_tokens or spec.max_tokens, spec.max_tokens)}
        if spec.temperature is not None:
            call["temperature"] = spec.temperature
        if on_delta is None:
            async with asyncio.timeout(deadline):
                response = await self._send(spec, call)
            return _parse_response(response)
        call |= {"stream": True, "stream_options": {"include_usage": True}}
        return await _stream(self._send(spec, call), deadline, on_delta, progress)

    async def _send(self, spec: ModelSpec, call: dict[str, Any]) -> Any:
        """``call`` on ``spec``'s transport: a response, or a stream of chunks when ``call``
        asks for one (the same shapes on both)."""
        api_key = provider_api_key(spec, self._secrets_dir)
        if self._direct[spec.name]:
            assert api_key is not None  # a keyless apiBase gets NO_KEY
            return await direct.complete(spec, api_key, call)
        return await litellm_transport().acompletion(
            **call,
            model=spec.model,
            api_base=spec.api_base,
            api_key=api_key,
            timeout=spec.timeout_seconds,
            # retries are ours (with accounting and fallbacks): none in LiteLLM or the SDK
            num_retries=0,
            max_retries=0,
            # Any call with `tools` otherwise runs LiteLLM's MCP-gateway check, which imports
            # the `mcp` package's proxy extras: we never pass MCP tools to it.
            _skip_mcp_handler=True,
        )


def litellm_transport() -> ModuleType:
    """``via_litellm``, imported (and LiteLLM configured) on first use."""
    from agent_service.llm import via_litellm  # noqa: PLC0415 - lazy on purpose: ~190 MB

    return via_litellm


def _request(
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSpec],
    response_format: dict[str, Any] | None,
    tool_choice: str | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provider-independent part of every attempt's request."""
    request: dict[str, Any] = {"messages": [m.to_openai() for m in messages]}
    if tools:
        request["tools"] = [t.to_openai() for t in tools]
        if tool_choice is not None:
            request["tool_choice"] = tool_choice
    if response_format is not None:
        request["response_format"] = response_format
    return request


async def _stream(
    opened: Awaitable[Any],
    idle_deadline: float,
    on_delta: DeltaCallback,
    progress: _Progress,
) -> _Answer:
    """One streamed attempt. The deadline applies to the first chunk, then between chunks: a
    long answer may take longer than ``timeout_seconds`` in total, a stalled one may not."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    ttft_ms: float | None = None
    parts: list[str] = []
    calls: dict[int, _ToolCallParts] = {}
    usage: Any = None
    response_model: str | None = None
    finish_reason: str | None = None
    async with asyncio.timeout(idle_deadline) as deadline:
        stream = await opened
        try:
            async for chunk in stream:
                deadline.reschedule(loop.time() + idle_deadline)
                response_model = chunk.model or response_model
                usage = getattr(chunk, "usage", None) or usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish_reason = choice.finish_reason or finish_reason
                delta = choice.delta
                text = delta.content
                tool_deltas = delta.tool_calls
                if ttft_ms is None and (text or tool_deltas):
                    ttft_ms = (time.perf_counter() - started) * 1000.0
                if tool_deltas:
                    _merge_tool_deltas(calls, tool_deltas)
                if text:
                    parts.append(text)
                    progress.emitted = True
                    try:
                        await on_delta(text)
                    except Exception:
                        progress.callback_failed = True
                        raise
        finally:
            # releases the connection when we stop early (deadline, callback error); LiteLLM's
            # stream has aclose, the SDK's close
            close = getattr(stream, "aclose", None) or stream.close
            await close()
    return _Answer(
        content="".join(parts) or None,
        tool_calls=[_tool_call(parts_) for _, parts_ in sorted(calls.items())],
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        response_model=response_model,
        finish_reason=finish_reason,
        time_to_first_token_ms=ttft_ms,
    )


def _merge_tool_deltas(calls: dict[int, _ToolCallParts], deltas: Sequence[Any]) -> None:
    """Fold streamed tool-call fragments into per-index accumulators."""
    for position, delta in enumerate(deltas):
        function = getattr(delta, "function", None)
        if function is None:  # a custom (non-function) tool call: we offer none
            continue
        index = getattr(delta, "index", None)
        slot = calls.setdefault(index if isinstance(index, int) else position, _ToolCallParts())
        if delta.id:
            slot.id = delta.id
        if function.name:
            slot.name += function.name
        if function.arguments:
            slot.arguments.append(function.arguments)


def _tool_call(parts: _ToolCallParts) -> ToolCall:
    return ToolCall(
        id=parts.id or _call_id(),
        name=parts.name,
        arguments="".join(parts.arguments) or "{}",
    )


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _parse_response(response: Any) -> _Answer:
    choice = response.choices[0]
    message = choice.message
    calls = [
        ToolCall(
            id=call.id or _call_id(),
            name=call.function.name or "",
            arguments=call.function.arguments or "{}",
        )
        for call in (message.tool_calls or ())
        if getattr(call, "function", None) is not None
    ]
    usage = getattr(response, "usage", None)
    return _Answer(
        content=message.content or None,
        tool_calls=calls,
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        response_model=response.model,
        finish_reason=choice.finish_reason,
    )


def _estimate_tokens(chars: int) -> int:
    """Four characters a token: used only when the provider reports no usage."""
    return (chars + 3) // 4


def _completion(
    *,
    spec: ModelSpec,
    requested: str,
    messages: Sequence[ChatMessage],
    answer: _Answer,
    duration_ms: float,
    attempts: list[LLMAttempt],
) -> LLMCompletion:
    input_tokens = answer.input_tokens
    if input_tokens is None:
        input_tokens = _estimate_tokens(
            sum(
                len(m.content or "") + sum(len(c.arguments) for c in m.tool_calls) for m in messages
            )
        )
    output_tokens = answer.output_tokens
    if output_tokens is None:
        output_tokens = _estimate_tokens(
            len(answer.content or "")
            + sum(len(c.name) + len(c.arguments) for c in answer.tool_calls)
        )
    return LLMCompletion(
        content=answer.content,
        tool_calls=answer.tool_calls,
        usage=TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(spec, input_tokens, output_tokens),
        ),
        model=spec.name,
        requested_model=requested,
        provider=spec.provider,
        response_model=answer.response_model,
        finish_reason=answer.finish_reason,
        duration_ms=duration_ms,
        time_to_first_token_ms=answer.time_to_first_token_ms,
        attempts=attempts,
    )


async def retry_pause(
    attempt: int,
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Before attempt number ``attempt`` (0: the first, no wait) of one model, the backoff."""
    if attempt:
        delay = backoff_delay(attempt - 1, policy, rng)
        if delay > 0:
            await sleep(delay)


def provider_api_key(spec: ModelSpec, secrets_dir: Path) -> str | None:
    """The API key to send for ``spec``: its secret, or a placeholder for a keyless
    ``api_base`` (the OpenAI client refuses to send a request without one)."""
    api_key = resolve_secret(spec.api_key, secrets_dir)
    if api_key is None and spec.api_base is not None:
        return NO_KEY
    return api_key


def failed_attempt(
    spec: ModelSpec, outcome: FailureOutcome, started: float, exc: BaseException
) -> LLMAttempt:
    text = str(exc)
    if len(text) > _ERROR_TEXT_MAX:
        text = text[:_ERROR_TEXT_MAX] + "..."
    return LLMAttempt(
        model=spec.name,
        provider=spec.provider,
        outcome=outcome,
        duration_ms=(time.perf_counter() - started) * 1000.0,
        error=f"{type(exc).__name__}: {text}",
    )


def attempt_summary(attempts: Sequence[LLMAttempt]) -> str:
    """``sim→rate_limited x3, sim-backup→timeout``: consecutive repeats folded."""
    runs: list[list[Any]] = []
    for attempt in attempts:
        if runs and runs[-1][0] == attempt.model and runs[-1][1] == attempt.outcome:
            runs[-1][2] += 1
        else:
            runs.append([attempt.model, attempt.outcome, 1])
    return ", ".join(f"{m}→{o}" + (f" x{n}" if n > 1 else "") for m, o, n in runs) or "no attempt"


async def close_llm_clients() -> None:
    """Close the HTTP clients of this process's LLM calls: the direct transport's of the
    current loop, and LiteLLM's process-wide cache if LiteLLM was used.

    The runtime calls it once at shutdown, on the event loop that made the calls. A later call
    builds new clients.
    """
    await direct.close_direct_clients()
    if "agent_service.llm.via_litellm" in sys.modules:
        await litellm_transport().close_litellm_clients()
