"""The agent config of the local stack (``agent-service up``): the built-in simulator models,
the demo MCP server, and the agents a newcomer can try at once.

``launcher.run_local_stack`` writes it to the stack's work directory when no
``AGENT_CONFIG_FILE`` is given, and the API and the worker load it like any config file (so it
also hot-reloads when edited there). Agents:

* ``assistant`` (the default): the calculator, the clock, and ``search_docs`` over the
  ``docs`` knowledge base, which ``up`` fills with the project's own ``docs/`` (answers to
  "how do I scale the workers?" come with their sources);
* ``orders``: a customer-service agent whose tools come from the demo MCP server
  (``orders__lookup_order`` and the rest);
* ``refunds`` (``approval_agents``): refunds orders with the demo server's ``refund_order``,
  a call that waits for a person's approval (try the approval flow with curl).
"""

from __future__ import annotations

from typing import Any

import yaml

from agent_service.agentconfig.model import AgentConfig, default_agent_config

ORDERS_PROMPT = (
    "You are the customer-service agent of an online shop. Look orders up with your tools "
    "before you answer, and answer briefly with the order's status, carrier and dates."
)


DOCS_KB = "docs"
EMBEDDING_MODEL = "sim-embedding"


def local_knowledge(sim_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The local stack's embedding model (the simulator's deterministic lexical vectors) and
    its ``docs`` knowledge base (wire form)."""
    model = {
        "name": EMBEDDING_MODEL,
        "model": "openai/sim-embedding",
        "kind": "embedding",
        "apiBase": sim_url,
        "inputCostPer1K": 0.00002,
        "timeoutSeconds": 30,
    }
    kb = {
        "name": DOCS_KB,
        "description": "The documentation of agent-service: running it locally and on "
        "Kubernetes, configuration, agents, the API, scaling, operations, observability.",
        "embeddingModel": EMBEDDING_MODEL,
    }
    return [model], [kb]


def local_agents() -> list[dict[str, Any]]:
    """The agents of the local stack (wire form: camelCase, as in a config file)."""
    return [
        {
            "name": "assistant",
            "description": "A general assistant: arithmetic with the calculator, dates and "
            "times with the clock, questions about agent-service from its documentation.",
            "tools": {"calculator": True, "currentTime": True},
            "knowledge": [DOCS_KB],
        },
        {
            "name": "orders",
            "description": "Customer service: where an order is, recent orders, shipments "
            "(tools from the demo MCP server).",
            "systemPrompt": ORDERS_PROMPT,
            "tools": {"mcp": [{"server": "orders"}]},
        },
    ]


REFUNDS_PROMPT = (
    "You handle refund requests of an online shop. Refund the order the customer names with "
    "your refund tool (a person approves each refund before it is made), then say what happened."
)


def approval_agents() -> list[dict[str, Any]]:
    """The local stack's agent with an approval-gated tool (durable runs, docs/durability.md):
    every ``orders__refund_order`` call waits for ``POST /v1/tasks/{id}/approvals/{id}``."""
    return [
        {
            "name": "refunds",
            "description": "Refunds an order; each refund waits for a person's approval "
            "(GET /v1/approvals?status=pending).",
            "systemPrompt": REFUNDS_PROMPT,
            "tools": {"mcp": [{"server": "orders", "include": ["lookup_order", "refund_order"]}]},
            "approvals": {
                "timeoutSeconds": 3600,
                "onTimeout": "reject",
                "tools": [{"tool": "orders__refund_order"}],
            },
            "multitask": "enqueue",
        }
    ]


def all_local_agents() -> list[dict[str, Any]]:
    """Every agent of the local stack, in the order ``GET /v1/agents`` lists them."""
    return [*local_agents(), *approval_agents()]


def local_config(sim_url: str, mcp_url: str) -> AgentConfig:
    """The local stack's config: the simulator models (an embedding one too), the ``docs``
    knowledge base, the demo MCP server as ``orders``, and ``all_local_agents()`` with
    ``assistant`` as the default."""
    base = default_agent_config(sim_url).model_dump(mode="json", by_alias=True)
    models, bases = local_knowledge(sim_url)
    document = {
        **base,
        "models": [*base["models"], *models],
        "knowledgeBases": bases,
        "mcpServers": [
            # The demo server runs on loopback next to the stack: allow that address.
            {"name": "orders", "url": mcp_url, "allowPrivateNetworks": True, "timeoutSeconds": 10}
        ],
        "agents": all_local_agents(),
        "defaultAgent": "assistant",
    }
    return AgentConfig.model_validate(document)


def local_config_yaml(sim_url: str, mcp_url: str) -> str:
    """``local_config`` as the YAML file the stack's processes read."""
    header = (
        "# The agent config of `agent-service up` (written at each start; edit it here to\n"
        "# try hot reload, or pass your own with AGENT_CONFIG_FILE).\n"
    )
    data = local_config(sim_url, mcp_url).model_dump(mode="json", by_alias=True, exclude_none=True)
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
