"""Settings of the LLM simulator and the ``agent-service sim-llm`` flags that fill them.

``cli.py`` calls ``add_arguments`` on the ``sim-llm`` subparser, then ``options_from_args`` on the
parsed namespace, and hands the result to ``server.serve``. Tests build ``SimOptions`` directly.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from agent_service.sim.embeddings import DEFAULT_DIMENSIONS, MAX_DIMENSIONS


@dataclass(frozen=True)
class SimOptions:
    """How the simulator listens, how fast it answers and which failures it injects.

    Shares (``fail_429``, ``fail_500``, ``hang``) are fractions of requests in [0, 1] whose sum
    is at most 1; they apply only to requests whose ``model`` is in ``fail_models`` (empty: all).
    Invalid values raise ``ValueError``.
    """

    host: str = "127.0.0.1"
    port: int = 8100
    ttft_seconds: float = 0.05
    """Delay before the first token (streaming) or the start of the answer."""
    tokens_per_second: float = 0.0
    """Output pace after the first token; 0 sends the rest of the answer at once."""
    fail_429: float = 0.0
    fail_500: float = 0.0
    hang: float = 0.0
    hang_seconds: float = 600.0
    """How long a hanging request waits before it answers 500 (a client timeout should win)."""
    fail_models: tuple[str, ...] = ()
    seed: int = 0
    """Seeds failure injection and the wording of text answers: same seed, same sequence."""
    embedding_dimensions: int = DEFAULT_DIMENSIONS
    """Dimensions of ``/v1/embeddings`` vectors when a request does not ask for others."""
    api_key: str | None = None
    """When set, the API routes answer 401 ``invalid_api_key`` unless the request carries
    ``Authorization: Bearer <api_key>``, as OpenAI does (None: no key is checked)."""

    def __post_init__(self) -> None:
        for name in ("fail_429", "fail_500", "hang"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {share}")
        if self.fail_429 + self.fail_500 + self.hang > 1.0 + 1e-9:
            raise ValueError(
                f"the failure shares fail_429 + fail_500 + hang add up to "
                f"{self.failure_share:g}, more than 1"
            )
        for name in ("ttft_seconds", "tokens_per_second", "hang_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 1 <= self.embedding_dimensions <= MAX_DIMENSIONS:
            raise ValueError(
                f"embedding_dimensions must be within [1, {MAX_DIMENSIONS}], "
                f"got {self.embedding_dimensions}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within [0, 65535], got {self.port}")

    @property
    def failure_share(self) -> float:
        """The share of matching requests that fail in some way (0: injection is off)."""
        return self.fail_429 + self.fail_500 + self.hang


def _share(text: str) -> float:
    """An argparse type for a share of requests: a float in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _non_negative(text: str) -> float:
    """An argparse type for a duration or rate: a float >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags to ``parser`` (the ``sim-llm`` subparser of the CLI)."""
    d = SimOptions()
    parser.add_argument("--host", default=d.host, help=f"bind address (default {d.host})")
    parser.add_argument(
        "--port", type=int, default=d.port, help=f"port, 0 for a free one (default {d.port})"
    )
    parser.add_argument(
        "--ttft",
        type=_non_negative,
        default=d.ttft_seconds,
        metavar="SECONDS",
        help=f"time to first token in seconds (default {d.ttft_seconds})",
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_non_negative,
        default=d.tokens_per_second,
        metavar="RATE",
        help="output pace after the first token, also for non-stream answers "
        "(default 0: the rest of the answer at once)",
    )
    parser.add_argument(
        "--fail-429",
        type=_share,
        default=d.fail_429,
        metavar="SHARE",
        help="share of requests answered 429 rate_limit_exceeded (0..1, default 0)",
    )
    parser.add_argument(
        "--fail-500",
        type=_share,
        default=d.fail_500,
        metavar="SHARE",
        help="share of requests answered 500 server_error (0..1, default 0)",
    )
    parser.add_argument(
        "--hang",
        type=_share,
        default=d.hang,
        metavar="SHARE",
        help="share of requests that hang for --hang-seconds, then answer 500 (0..1, default 0)",
    )
    parser.add_argument(
        "--hang-seconds",
        type=_non_negative,
        default=d.hang_seconds,
        metavar="SECONDS",
        help=f"how long a hanging request waits (default {d.hang_seconds})",
    )
    parser.add_argument(
        "--fail-model",
        action="append",
        default=None,
        metavar="MODEL",
        dest="fail_models",
        help="inject failures only into requests for this model (repeatable; default: all)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="seed of failure injection and answer wording (default 0)",
    )
    parser.add_argument(
        "--embedding-dimensions",
        type=int,
        default=d.embedding_dimensions,
        metavar="N",
        help=f"dimensions of /v1/embeddings vectors when a request names none "
        f"(1..{MAX_DIMENSIONS}, default {d.embedding_dimensions})",
    )

    parser.add_argument(
        "--api-key",
        default=d.api_key,
        metavar="KEY",
        help="require 'Authorization: Bearer KEY' on the API routes, else 401 (default: none)",
    )


def options_from_args(ns: argparse.Namespace) -> SimOptions:
    """Build ``SimOptions`` from the parsed flags; exits with a usage error when they conflict."""
    try:
        return SimOptions(
            host=ns.host,
            port=ns.port,
            ttft_seconds=ns.ttft,
            tokens_per_second=ns.tokens_per_second,
            fail_429=ns.fail_429,
            fail_500=ns.fail_500,
            hang=ns.hang,
            hang_seconds=ns.hang_seconds,
            fail_models=tuple(ns.fail_models or ()),
            seed=ns.seed,
            embedding_dimensions=ns.embedding_dimensions,
            api_key=ns.api_key,
        )
    except ValueError as exc:
        # SystemExit with a message prints it to stderr and exits 1, like argparse's errors.
        raise SystemExit(f"agent-service sim-llm: error: {exc}") from None
