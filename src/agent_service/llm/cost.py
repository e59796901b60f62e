"""The price of an LLM call, from the per-1K token prices of the agent config.

Called by ``LiteLLMClient`` for every completion. LiteLLM's bundled price map is never used: it
lags behind providers, knows nothing of self-hosted models, and the operator's config is the
one price list that budgets and metrics must agree on.
"""

from __future__ import annotations

from agent_service.agentconfig.model import ModelSpec


def cost_usd(spec: ModelSpec, input_tokens: int, output_tokens: int) -> float:
    """USD spent on ``input_tokens`` + ``output_tokens`` at ``spec``'s configured prices."""
    cost = (
        input_tokens * spec.input_cost_per_1k + output_tokens * spec.output_cost_per_1k
    ) / 1000.0
    # rounded like TokenUsage sums, so float noise does not show up in records and metrics
    return round(cost, 10)
