"""Named agents in the agent config: each with its prompt, model, tools, limits and tenants.

``agents:`` lists them; a config without the list serves one agent named ``default`` built from
the top-level fields (``AgentConfig.profiles``), so every older config keeps working. An
``AgentProfile`` is an agent with everything inherited filled in: what the runtime builds an
agent from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from agent_service.agentconfig.approvals import ApprovalsSpec, Multitask
from agent_service.agentconfig.knowledge import KB_NAME_PATTERN
from agent_service.agentconfig.mcp import SERVER_NAME_PATTERN
from agent_service.agentconfig.spec import NAME_PATTERN, Spec

if TYPE_CHECKING:
    from agent_service.agentconfig.model import Limits

DEFAULT_AGENT = "default"
"""The name of the one agent of a config without ``agents:``."""


class McpToolsRef(Spec):
    """The tools of one MCP server an agent uses."""

    server: str = Field(pattern=SERVER_NAME_PATTERN, description="An mcpServers entry's name.")
    include: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Tool names (as the server names them) this agent uses; empty: all the "
        "server offers.",
    )
    exclude: list[str] = Field(
        default_factory=list, max_length=500, description="Tool names this agent never uses."
    )


class AgentToolsSpec(Spec):
    """The tools of one agent: built-ins by switch, HTTP tools and MCP servers by name."""

    calculator: bool = Field(default=False, description="The built-in calculator tool.")
    current_time: bool = Field(default=False, description="The built-in clock tool.")
    http: list[str] = Field(
        default_factory=list, max_length=64, description="Names of tools.http entries."
    )
    mcp: list[McpToolsRef] = Field(
        default_factory=list, max_length=32, description="MCP servers whose tools it uses."
    )


class LimitOverrides(Spec):
    """An agent's own limits: each field set here replaces the config's ``limits`` field."""

    max_iterations: int | None = Field(default=None, ge=1, le=100, description="LLM calls per run.")
    run_timeout_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="Longest a run may take."
    )
    max_tokens_per_run: int | None = Field(default=None, ge=1, description="LLM tokens per run.")
    memory_turns: int | None = Field(
        default=None, ge=0, le=200, description="Past session turns kept (memory)."
    )
    memory_token_budget: int | None = Field(
        default=None, ge=0, description="Tokens of session history sent (memory)."
    )
    tool_output_max_chars: int | None = Field(
        default=None, ge=100, le=1_000_000, description="Tool output kept in the conversation."
    )
    max_cost_usd_per_run: float | None = Field(
        default=None, gt=0, description="USD a run may spend before it stops."
    )
    max_consecutive_tool_failures: int | None = Field(
        default=None, ge=1, le=100, description="Failed tool calls in a row before degrading."
    )

    def applied(self) -> dict[str, Any]:
        """The fields set, by name (what replaces the config's limits)."""
        return self.model_dump(exclude_none=True)


class AgentSpec(Spec):
    """One named agent."""

    name: str = Field(pattern=NAME_PATTERN, description="Agent name, as requests name it.")
    description: str = Field(
        default="", max_length=2000, description="What the agent is for (shown in GET /v1/agents)."
    )
    system_prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=100_000,
        description="System prompt of its runs (unset: the config's systemPrompt).",
    )
    model: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Model of its runs, a configured name (unset: the config's defaultModel).",
    )
    tools: AgentToolsSpec = Field(default_factory=AgentToolsSpec, description="Its tools.")
    knowledge: list[Annotated[str, Field(pattern=KB_NAME_PATTERN)]] = Field(
        default_factory=list,
        max_length=50,
        description="Knowledge bases it may search (knowledgeBases names); it gets a "
        "search_<name> tool for each and its answers carry sources.",
    )
    limits: LimitOverrides = Field(
        default_factory=LimitOverrides,
        description="Limits replacing the config's, field by field (memory settings included).",
    )
    tenants: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = Field(
        default=None,
        max_length=1000,
        description="Tenants allowed to use it (unset: every tenant). Others see it as not found.",
    )
    response_format: dict[str, Any] | None = Field(
        default=None,
        description="A JSON schema the final answer must satisfy: the answer is JSON, validated "
        "against it, with one repair call when it is not (then error invalid_output).",
    )
    approvals: ApprovalsSpec = Field(
        default_factory=ApprovalsSpec,
        description="Tool calls that wait for a person's approval (queued runs pause, holding "
        "no worker), and for how long.",
    )
    multitask: Multitask = Field(
        default="reject",
        description="A message for a session whose run is still going: `reject` (409), "
        "`enqueue` (it runs after the current run) or `interrupt` (the current run is "
        "cancelled at its next step, then it runs).",
    )


@dataclass(frozen=True)
class AgentProfile:
    """An agent with its inherited fields filled in (built by ``AgentConfig.profiles``)."""

    name: str
    description: str
    system_prompt: str
    model: str
    tools: AgentToolsSpec
    limits: Limits
    tenants: frozenset[str] | None
    response_format: dict[str, Any] | None
    approvals: ApprovalsSpec = field(default_factory=ApprovalsSpec)
    multitask: Multitask = "reject"
    knowledge: tuple[str, ...] = ()
    """Knowledge bases it searches, one ``search_<name>`` tool each."""

    def allows(self, tenant: str) -> bool:
        """Whether ``tenant`` may use this agent."""
        return self.tenants is None or tenant in self.tenants
