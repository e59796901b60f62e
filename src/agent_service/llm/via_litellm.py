"""LiteLLM, imported and configured on first use: every model the direct transport does not take.

``LiteLLMClient`` and ``LiteLLMEmbedder`` import this module the first time a model needs
LiteLLM (``direct.is_direct`` is false, or ``AGENT_LLM_TRANSPORT=litellm``): a process whose
models are all OpenAI-compatible servers never pays LiteLLM's ~190 MB and ~2 s of import.
Importing it configures LiteLLM for the whole process: quiet, no callbacks, no prompt logging,
connection pools sized for ~2,000 concurrent calls per host.
"""

from __future__ import annotations

import logging
from typing import Any

from agent_service.settings import prepare_litellm_environment

# LiteLLM reads its environment at import (offline price map, telemetry): prepare it first.
prepare_litellm_environment()

import litellm  # noqa: E402
from litellm.llms.custom_httpx import http_handler as _litellm_http  # noqa: E402
from litellm.llms.custom_httpx.async_client_cleanup import (  # noqa: E402
    close_litellm_async_clients,
)

from agent_service.llm.direct import POOL_LIMIT  # noqa: E402  # both transports: one pool size

log = logging.getLogger(__name__)

POOL_LIMIT_PER_HOST = 2048
"""aiohttp connections per host (LiteLLM's default: 500; older releases 50). Above the worker's
largest concurrency (2,000 runs, one LLM call each at a time), so calls never queue for a
connection. Needs a file-descriptor limit above it (containers usually have 1M; shells 1,024)."""


def _configure_litellm() -> None:
    """Process-wide LiteLLM settings, applied once at import."""
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    # A parameter the provider does not support is a config error to surface (bad_request),
    # not something to drop silently (a dropped `tools` would make the agent quietly dumb).
    litellm.drop_params = False
    # Retries are ours. LiteLLM's embedding path reads `max_retries or DEFAULT_MAX_RETRIES`, so
    # the max_retries=0 we pass becomes 2 hidden OpenAI SDK retries (litellm 1.106); with the
    # default at 0 too, every attempt is one request that our accounting sees.
    litellm.DEFAULT_MAX_RETRIES = 0  # type: ignore[attr-defined]  # re-exported, unlisted
    # No logging/observability callbacks (metrics and traces are ours), and should one be added,
    # it must not see prompts or completions.
    litellm.callbacks = []
    litellm.success_callback = []
    litellm.failure_callback = []
    litellm.turn_off_message_logging = True
    # LiteLLM logs request bodies (prompts) at DEBUG: keep its loggers above that whatever the
    # service's log level.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _raise_pool_limits(POOL_LIMIT, POOL_LIMIT_PER_HOST)


def _raise_pool_limits(total: int, per_host: int) -> None:
    """Raise the aiohttp connection-pool limits of every session LiteLLM creates.

    LiteLLM builds each aiohttp ``TCPConnector`` from two module globals of its HTTP handler,
    read at every session creation and initialised at import from ``AIOHTTP_CONNECTOR_LIMIT``
    and ``AIOHTTP_CONNECTOR_LIMIT_PER_HOST``. There is no other knob: a per-call
    ``shared_session`` is ignored once LiteLLM has cached a provider client, and the cached
    transports rebuild their sessions from these globals. A limit set higher in the environment
    is kept. 0 is not "unlimited" there: LiteLLM then leaves aiohttp's default of 100.
    """
    for name, wanted in (
        ("AIOHTTP_CONNECTOR_LIMIT", total),
        ("AIOHTTP_CONNECTOR_LIMIT_PER_HOST", per_host),
    ):
        current = getattr(_litellm_http, name, None)
        if not isinstance(current, int):
            log.warning(
                "litellm has no %s: cannot raise its connection pool limits, "
                "concurrent LLM calls above LiteLLM's defaults will queue",
                name,
            )
            continue
        setattr(_litellm_http, name, max(current, wanted))


_configure_litellm()


async def acompletion(**kwargs: Any) -> Any:
    """``litellm.acompletion``: a ``ModelResponse``, or a stream of chunks with ``stream``."""
    return await litellm.acompletion(**kwargs)


async def aembedding(**kwargs: Any) -> Any:
    """``litellm.aembedding``: an ``EmbeddingResponse``."""
    return await litellm.aembedding(**kwargs)


async def close_litellm_clients() -> None:
    """Close the HTTP sessions LiteLLM holds for this process (its cached provider clients).

    LiteLLM keeps its clients in a process-global cache (one per provider settings and event
    loop), so this closes them for the whole process. The cache is flushed too, or the closed
    clients would fail every later call; a later call builds new ones.
    """
    await close_litellm_async_clients()  # type: ignore[no-untyped-call]
    litellm.in_memory_llm_clients_cache.flush_cache()  # type: ignore[no-untyped-call]
