"""The LLM adapter: the only package that imports litellm.

``LiteLLMClient`` (in ``client``) implements ``agent.ports.LLMPort`` on ``litellm.acompletion``
with our own retries, fallbacks, streaming and cost accounting; ``retry`` and ``cost`` are the
pure decisions it relies on. The runtime builds one client per config snapshot and calls
``close_llm_clients()`` once at shutdown (LiteLLM's HTTP clients are process-wide).

``LiteLLMClient`` is imported lazily (PEP 562): importing litellm costs ~3 s and ~160 MB, which
the pure ``retry``/``cost`` modules and their unit tests should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_service.llm.client import LiteLLMClient, close_llm_clients

__all__ = ["LiteLLMClient", "close_llm_clients"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from agent_service.llm import client  # noqa: PLC0415 - lazy on purpose

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
