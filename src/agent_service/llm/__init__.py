"""The LLM adapter: the only package that imports litellm.

``LiteLLMClient`` (in ``client``) implements ``agent.ports.LLMPort`` on ``litellm.acompletion``
with our own retries, fallbacks, streaming and cost accounting; ``retry`` and ``cost`` are the
pure decisions it relies on. The API lifespan and the worker's process start-up build one client
per process and close it with ``aclose()``.

``LiteLLMClient`` is imported lazily (PEP 562): importing litellm costs ~3 s and ~160 MB, which
the pure ``retry``/``cost`` modules and their unit tests should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_service.llm.client import LiteLLMClient

__all__ = ["LiteLLMClient"]


def __getattr__(name: str) -> Any:
    if name == "LiteLLMClient":
        from agent_service.llm.client import LiteLLMClient  # noqa: PLC0415 - lazy on purpose

        return LiteLLMClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
