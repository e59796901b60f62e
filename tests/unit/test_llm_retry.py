"""Retry policy, fallback chains and cost of LLM calls: table-driven, no litellm import.

The exception classes are stand-ins named like litellm's (and shaped like them: same bases,
same ``status_code``); ``tests/integration/test_llm_client.py`` checks the real ones.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from agent_service.agentconfig.model import AgentConfig, ModelSpec, RetryPolicy
from agent_service.llm.cost import cost_usd
from agent_service.llm.retry import backoff_delay, classify, fallback_chain, is_retryable


def _exc(name: str, *bases: type[BaseException], status: int | None = None) -> type[Exception]:
    namespace = {} if status is None else {"status_code": status}
    return type(name, bases or (Exception,), namespace)


# litellm's hierarchy, reduced to what classify looks at
OpenAIError = _exc("OpenAIError")
APIError = _exc("APIError", OpenAIError)
APIConnectionError = _exc("APIConnectionError", APIError, status=500)
Timeout = _exc("Timeout", _exc("APITimeoutError", APIConnectionError), status=408)
APIStatusError = _exc("APIStatusError", APIError)
BadRequestError = _exc("BadRequestError", APIStatusError, status=400)
ServiceUnavailableError = _exc("ServiceUnavailableError", APIStatusError, status=503)


def _with_status(cls: type[Exception], status: int | None) -> Exception:
    exc = cls("boom")
    if status is not None:
        exc.status_code = status  # type: ignore[attr-defined]
    return exc


def _mid_stream(original: Exception | None) -> Exception:
    exc = _exc("MidStreamFallbackError", ServiceUnavailableError)("x")
    exc.original_exception = original  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (_exc("RateLimitError", APIStatusError, status=429)("x"), "rate_limited"),
        (_exc("InternalServerError", APIStatusError, status=500)("x"), "server_error"),
        (ServiceUnavailableError("x"), "server_error"),
        (_exc("BadGatewayError", APIStatusError, status=502)("x"), "server_error"),
        (_exc("MidStreamFallbackError", ServiceUnavailableError)("x"), "server_error"),
        (_mid_stream(Timeout("x")), "timeout"),  # what broke the stream, not the 503 wrapper
        (_mid_stream(APIConnectionError("x")), "connection_error"),
        (_mid_stream(None), "server_error"),
        (Timeout("x"), "timeout"),  # status 408 and an APIConnectionError, but a timeout
        (APIConnectionError("x"), "connection_error"),  # carries status 500: not a server error
        (BadRequestError("x"), "bad_request"),
        (_exc("ContextWindowExceededError", BadRequestError)("x"), "bad_request"),
        (_exc("ContentPolicyViolationError", BadRequestError)("x"), "bad_request"),
        (_exc("UnsupportedParamsError", BadRequestError)("x"), "bad_request"),
        (_exc("AuthenticationError", APIStatusError, status=401)("x"), "bad_request"),
        (_exc("PermissionDeniedError", APIStatusError, status=403)("x"), "bad_request"),
        (_exc("NotFoundError", APIStatusError, status=404)("x"), "bad_request"),
        (_exc("UnprocessableEntityError", APIStatusError, status=422)("x"), "bad_request"),
        # litellm.APIError: only the status says what happened
        (_with_status(APIError, 503), "server_error"),
        (_with_status(APIError, 500), "server_error"),
        (_with_status(APIError, 429), "rate_limited"),
        (_with_status(APIError, 408), "timeout"),
        (_with_status(APIError, 400), "bad_request"),
        (_with_status(APIError, 302), "other_error"),
        (_with_status(APIError, None), "other_error"),
        # transport errors escaping LiteLLM's mapping, and our own deadline
        (_exc("ReadTimeout", _exc("TimeoutException"))("x"), "timeout"),
        (_exc("ServerDisconnectedError", _exc("ClientConnectionError"))("x"), "connection_error"),
        (_exc("ConnectError", _exc("NetworkError"))("x"), "connection_error"),
        (TimeoutError(), "timeout"),  # also asyncio.TimeoutError, our own deadline
        (ConnectionRefusedError(), "connection_error"),
        (ConnectionResetError(), "connection_error"),
        # anything else
        (ValueError("x"), "other_error"),
        (RuntimeError("x"), "other_error"),
        (_with_status(ValueError, True), "other_error"),  # a bool is not a status code
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_classify(exc: BaseException, outcome: str) -> None:
    assert classify(exc) == outcome


@pytest.mark.parametrize(
    ("outcome", "retryable"),
    [
        ("rate_limited", True),
        ("server_error", True),
        ("timeout", True),
        ("connection_error", True),
        ("bad_request", False),
        ("other_error", False),
        ("ok", False),
    ],
)
def test_is_retryable(outcome: str, retryable: bool) -> None:
    assert is_retryable(outcome) is retryable


def _policy(initial: float = 0.5, maximum: float = 8.0) -> RetryPolicy:
    return RetryPolicy(max_retries=3, backoff_initial_seconds=initial, backoff_max_seconds=maximum)


@pytest.mark.parametrize(
    ("attempt", "initial", "maximum", "ceiling"),
    [
        (0, 0.5, 8.0, 0.5),
        (1, 0.5, 8.0, 1.0),
        (2, 0.5, 8.0, 2.0),
        (4, 0.5, 8.0, 8.0),
        (5, 0.5, 8.0, 8.0),  # capped
        (10_000, 0.5, 8.0, 8.0),  # no overflow
        (3, 0.0, 8.0, 0.0),  # no backoff configured
        (3, 1.0, 0.0, 0.0),
    ],
)
def test_backoff_delay_is_full_jitter_below_the_ceiling(
    attempt: int, initial: float, maximum: float, ceiling: float
) -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, _policy(initial, maximum), rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)
    if ceiling > 0:
        # full jitter: spread over the whole interval, not bunched near the ceiling
        assert min(delays) < 0.05 * ceiling
        assert max(delays) > 0.95 * ceiling
        assert sum(delays) / len(delays) == pytest.approx(ceiling / 2, rel=0.1)


def test_backoff_delay_is_deterministic_for_a_seeded_rng() -> None:
    first = [backoff_delay(a, _policy(), random.Random(42)) for a in range(5)]
    again = [backoff_delay(a, _policy(), random.Random(42)) for a in range(5)]
    assert first == again


def _config(fallbacks: dict[str, list[str]]) -> AgentConfig:
    names = sorted({*fallbacks, *(f for fs in fallbacks.values() for f in fs)})
    return AgentConfig(
        default_model=names[0],
        models=[
            ModelSpec(name=n, model=f"openai/{n}", fallbacks=fallbacks.get(n, [])) for n in names
        ],
    )


@pytest.mark.parametrize(
    ("fallbacks", "model", "chain"),
    [
        ({"a": []}, "a", ["a"]),
        ({"a": ["b"]}, "a", ["a", "b"]),
        ({"a": ["b", "c"]}, "a", ["a", "b", "c"]),
        ({"a": ["b", "c", "b"]}, "a", ["a", "b", "c"]),  # deduplicated, first position kept
        ({"a": ["b"], "b": ["c"]}, "a", ["a", "b"]),  # fallbacks of fallbacks not followed
        ({"a": ["b"], "b": ["a"]}, "b", ["b", "a"]),  # cycles cannot loop
        ({"a": ["b"], "b": []}, "b", ["b"]),
    ],
)
def test_fallback_chain(fallbacks: dict[str, list[str]], model: str, chain: list[str]) -> None:
    models = {m.name: m for m in _config(fallbacks).models}
    assert fallback_chain(models, model) == chain


def test_fallback_chain_of_an_unknown_model_raises_key_error() -> None:
    with pytest.raises(KeyError):
        fallback_chain({m.name: m for m in _config({"a": []}).models}, "nope")


@pytest.mark.parametrize(
    ("input_price", "output_price", "input_tokens", "output_tokens", "cost"),
    [
        (0.0, 0.0, 1000, 1000, 0.0),
        (1.0, 2.0, 1000, 1000, 3.0),
        (0.00015, 0.0006, 1000, 500, 0.00045),
        (0.00015, 0.0006, 0, 0, 0.0),
        (3.0, 15.0, 1, 1, 0.018),
        (0.1, 0.2, 3, 7, 0.0017),  # no float noise: 0.0003 + 0.0014
    ],
)
def test_cost_usd(
    input_price: float, output_price: float, input_tokens: int, output_tokens: int, cost: float
) -> None:
    spec = ModelSpec(
        name="m", model="openai/m", input_cost_per_1k=input_price, output_cost_per_1k=output_price
    )
    assert cost_usd(spec, input_tokens, output_tokens) == cost


def test_pure_modules_do_not_import_litellm() -> None:
    # Importing agent_service.llm and its pure modules must not pay LiteLLM's ~3 s import; a
    # fresh interpreter, since another test may have imported litellm into this one.
    code = (
        "import sys, agent_service.llm, agent_service.llm.retry, agent_service.llm.cost; "
        "sys.exit('litellm' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
