"""The agent configuration: models, fallbacks, tools, agents, MCP servers, limits and tenants.

One pydantic model is the single source of truth for the YAML file (``AGENT_CONFIG_FILE``), the
built-in default (the simulator) and the ``AgentConfig`` custom resource, whose OpenAPI schema is
generated from it (``agentconfig.crd``). Field names are camelCase on the wire (Kubernetes style);
snake_case is accepted too. Every field carries a description and its bounds: they become the
CRD's documentation (``kubectl explain agentconfig.spec``) and its server-side validation.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agent_service.agentconfig.agents import (
    DEFAULT_AGENT,
    AgentProfile,
    AgentSpec,
    AgentToolsSpec,
    McpToolsRef,
)
from agent_service.agentconfig.knowledge import KnowledgeBaseSpec
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.references import reference_problems
from agent_service.agentconfig.spec import NAME_PATTERN, SecretRef, Spec, SpecError

BUILTIN_TOOLS = ("calculator", "current_time")


class ModelSpec(Spec):
    """A model the agent may call, by display name."""

    name: str = Field(pattern=NAME_PATTERN, description="Display name used in requests.")
    model: str = Field(
        min_length=1, description="LiteLLM model id, e.g. openai/gpt-4o-mini, anthropic/claude-..."
    )
    kind: Literal["chat", "embedding"] = Field(
        default="chat",
        description="chat: agents call it; embedding: knowledge bases embed with it "
        "(litellm.aembedding, priced at inputCostPer1K).",
    )
    api_base: str | None = Field(
        default=None, description="Provider base URL (OpenAI-compatible servers)."
    )
    api_key: SecretRef | None = Field(default=None, description="Where the provider API key is.")
    input_cost_per_1k: float = Field(default=0.0, ge=0, description="USD per 1,000 input tokens.")
    output_cost_per_1k: float = Field(default=0.0, ge=0, description="USD per 1,000 output tokens.")
    max_tokens: int = Field(
        default=1024, ge=1, le=1_000_000, description="Max output tokens per call."
    )
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600, description="Timeout of one call.")
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature (unset: the provider's)."
    )
    fallbacks: list[str] = Field(
        default_factory=list, description="Models tried in order when this one fails."
    )

    @property
    def provider(self) -> str:
        """The LiteLLM provider prefix (``openai`` for ``openai/gpt-4o``)."""
        return self.model.split("/", 1)[0] if "/" in self.model else "openai"


class RetryPolicy(Spec):
    """Retries of one model before falling back: exponential backoff with full jitter."""

    max_retries: int = Field(default=2, ge=0, le=10, description="Retries of one model.")
    backoff_initial_seconds: float = Field(
        default=0.5, ge=0, le=60, description="Backoff before the first retry (the cap grows x2)."
    )
    backoff_max_seconds: float = Field(
        default=8.0, ge=0, le=300, description="Largest backoff between two retries."
    )


class HttpToolSpec(Spec):
    """A tool served by an HTTP endpoint: the arguments are sent as JSON (POST) or query (GET)."""

    name: str = Field(
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$", description="Tool name the model calls."
    )
    description: str = Field(
        min_length=1, max_length=2000, description="What the tool does (the model reads it)."
    )
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments.",
    )
    url: str = Field(
        pattern=r"^https?://", max_length=2048, description="Endpoint URL (http or https)."
    )
    method: Literal["GET", "POST"] = Field(
        default="POST", description="POST sends the arguments as JSON, GET as the query."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=300, description="Timeout of a call.")
    retries: int = Field(default=0, ge=0, le=5, description="Retries after a failed call.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers (no secrets: they are shown)."
    )


class ToolsSpec(Spec):
    """Built-in tool switches and HTTP tools."""

    calculator: bool = Field(default=True, description="The built-in calculator tool.")
    current_time: bool = Field(default=True, description="The built-in clock tool.")
    http: list[HttpToolSpec] = Field(
        default_factory=list, max_length=64, description="Tools served over HTTP."
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Let HTTP tools reach loopback, link-local and private addresses (SSRF guard).",
    )


class Limits(Spec):
    """Per-run guardrails."""

    max_iterations: int = Field(default=8, ge=1, le=100, description="LLM calls per run.")
    run_timeout_seconds: float = Field(
        default=120.0, gt=0, le=3600, description="Longest a run may take."
    )
    max_tokens_per_run: int = Field(default=50_000, ge=1, description="LLM tokens per run.")
    memory_turns: int = Field(default=10, ge=0, le=200, description="Past session turns kept.")
    memory_token_budget: int = Field(default=4000, ge=0, description="Tokens of history sent.")
    tool_output_max_chars: int = Field(
        default=8000, ge=100, le=1_000_000, description="Tool output kept in the conversation."
    )
    max_cost_usd_per_run: float | None = Field(
        default=None, gt=0, description="USD a run may spend before it stops (unset: no cap)."
    )
    max_consecutive_tool_failures: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Failed tool calls in a row after which the agent answers without tools "
        "(the answer is marked degraded).",
    )


class RateLimits(Spec):
    """Per API key request and token rates, per tenant daily budgets (unset: unlimited).

    Enforced by the API in Redis, shared by every replica; a tenant entry of ``tenants``
    overrides these defaults for one tenant.
    """

    requests_per_minute: int | None = Field(
        default=None, ge=1, description="Requests one API key may make per minute."
    )
    tokens_per_minute: int | None = Field(
        default=None, ge=1, description="LLM tokens one API key's runs may use per minute."
    )
    daily_tokens: int | None = Field(
        default=None, ge=1, description="LLM tokens one tenant may use per UTC day."
    )
    daily_cost_usd: float | None = Field(
        default=None, gt=0, description="USD one tenant may spend per UTC day."
    )


class TenantSpec(Spec):
    """One tenant: limits overriding ``rateLimits`` field by field, and its webhook secret."""

    name: str = Field(pattern=NAME_PATTERN, description="Tenant name, as API keys map to it.")
    rate_limits: RateLimits = Field(
        default_factory=RateLimits, description="This tenant's limits (unset fields inherit)."
    )
    webhook_secret: SecretRef | None = Field(
        default=None,
        description="Where the HMAC secret signing this tenant's webhooks is (unset: the "
        "service-wide AGENT_WEBHOOKS_SECRET_FILE).",
    )


class ApiKeySpec(Spec):
    """A client API key, by its SHA-256 (the key itself never appears in the config)."""

    tenant: str = Field(pattern=NAME_PATTERN, description="The tenant the key acts for.")
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the key (`sha256sum` of it)."
    )
    name: str | None = Field(
        default=None, max_length=128, description="A label for the key (shown in logs)."
    )
    role: Literal["tenant", "admin"] = Field(
        default="tenant",
        description="`tenant`: the key sees its tenant's runs only. `admin`: it also reads every "
        "tenant's history and usage (`GET /v1/tasks`, `GET /v1/usage`, a run by id).",
    )


class CacheSpec(Spec):
    """Exact-match response cache for stateless runs (no ``session_id``), per tenant."""

    enabled: bool = Field(default=False, description="Serve repeated identical runs from cache.")
    ttl_seconds: int = Field(
        default=300, ge=1, le=7 * 24 * 3600, description="How long an answer is reused."
    )


DEFAULT_TOOL_HINTS = (
    r"\d\s*[-+*/%^]\s*\d",  # arithmetic
    r"(?i)\b(time|date|day|today|tomorrow|yesterday|clock|hour|timezone)\b",
)


class RouterSpec(Spec):
    """Sends short requests that need no tool to a cheaper model (when no model is named)."""

    enabled: bool = Field(default=False, description="Route short, tool-free requests.")
    model: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="The cheaper model (a configured name)."
    )
    max_chars: int = Field(
        default=200, ge=1, le=100_000, description="Longest message routed to the cheap model."
    )
    tool_hints: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TOOL_HINTS),
        max_length=50,
        description="Regular expressions: a message matching one may need a tool, so it is "
        "not routed (defaults: arithmetic, dates and times).",
    )

    @field_validator("tool_hints")
    @classmethod
    def _compiles(cls, hints: list[str]) -> list[str]:
        for hint in hints:
            try:
                re.compile(hint)
            except re.error as exc:
                raise ValueError(f"tool hint {hint!r} is not a valid regex: {exc}") from None
        return hints


DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the calculator tool for arithmetic and the current_time "
    "tool for the date and time. Answer briefly."
)


class AgentConfig(Spec):
    """The whole agent configuration."""

    default_model: str = Field(
        pattern=NAME_PATTERN, description="Model used when a request names none."
    )
    models: list[ModelSpec] = Field(
        min_length=1, max_length=100, description="Models the agent may call."
    )
    system_prompt: str = Field(
        default=DEFAULT_SYSTEM_PROMPT,
        min_length=1,
        max_length=100_000,
        description="System prompt of every run.",
    )
    tools: ToolsSpec = Field(default_factory=ToolsSpec, description="Tools the agent may call.")
    limits: Limits = Field(default_factory=Limits, description="Per-run guardrails.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retries per model.")
    rate_limits: RateLimits = Field(
        default_factory=RateLimits, description="Request and token rates, daily budgets."
    )
    tenants: list[TenantSpec] = Field(
        default_factory=list, max_length=1000, description="Per-tenant limit overrides."
    )
    api_keys: list[ApiKeySpec] = Field(
        default_factory=list,
        max_length=10_000,
        description="Client API keys by SHA-256, each mapped to a tenant (more can come from "
        "the keys file, AGENT_AUTH_KEYS_FILE).",
    )
    cache: CacheSpec = Field(default_factory=CacheSpec, description="Response cache.")
    router: RouterSpec = Field(default_factory=RouterSpec, description="Cheap-model router.")
    mcp_servers: list[McpServerSpec] = Field(
        default_factory=list, max_length=100, description="MCP tool servers agents may use."
    )
    knowledge_bases: list[KnowledgeBaseSpec] = Field(
        default_factory=list,
        max_length=100,
        description="Knowledge bases agents may search (agents[].knowledge; the implicit "
        "default agent searches all).",
    )
    agents: list[AgentSpec] = Field(
        default_factory=list,
        max_length=500,
        description="Named agents. Unset: one agent named 'default' from the top-level "
        "systemPrompt, defaultModel, tools and limits.",
    )
    default_agent: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Agent used when a request names none (unset: the first of agents, or "
        "'default').",
    )

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate model names: {', '.join(dupes)}")
        return models

    @model_validator(mode="after")
    def _references(self) -> AgentConfig:
        problems = reference_problems(self)
        if problems:
            raise SpecError(problems)
        return self

    def profiles(self) -> dict[str, AgentProfile]:
        """Every agent with its inherited fields filled in, by name (``default`` alone when the
        config lists no agents)."""
        if not self.agents:
            return {DEFAULT_AGENT: self._implicit_agent()}
        return {spec.name: self._profile(spec) for spec in self.agents}

    @property
    def default_agent_name(self) -> str:
        """The agent of requests that name none."""
        if self.default_agent is not None:
            return self.default_agent
        return self.agents[0].name if self.agents else DEFAULT_AGENT

    def implicit_agent_spec(self) -> AgentSpec:
        """The agent a config without ``agents:`` serves, as an ``agents`` entry: ``default``,
        with the top-level prompt, model and limits (inherited), the built-in switches, every
        HTTP tool, every MCP server and every knowledge base. The controller writes it out when
        Agent or MCPServer resources join such a config, so they never change what this agent
        does."""
        tools = AgentToolsSpec(
            calculator=self.tools.calculator,
            current_time=self.tools.current_time,
            http=[tool.name for tool in self.tools.http],
            mcp=[McpToolsRef(server=server.name) for server in self.mcp_servers],
        )
        return AgentSpec(
            name=DEFAULT_AGENT,
            description="The default agent.",
            tools=tools,
            knowledge=[kb.name for kb in self.knowledge_bases],
        )

    def _implicit_agent(self) -> AgentProfile:
        return self._profile(self.implicit_agent_spec())

    def _profile(self, spec: AgentSpec) -> AgentProfile:
        return AgentProfile(
            name=spec.name,
            description=spec.description,
            system_prompt=spec.system_prompt or self.system_prompt,
            model=spec.model or self.default_model,
            tools=spec.tools,
            limits=self.limits.model_copy(update=spec.limits.applied()),
            tenants=frozenset(spec.tenants) if spec.tenants is not None else None,
            response_format=spec.response_format,
            approvals=spec.approvals,
            multitask=spec.multitask,
            knowledge=tuple(spec.knowledge),
        )

    def model(self, name: str) -> ModelSpec:
        """The model spec by display name (``KeyError`` if unknown)."""
        for spec in self.models:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def knowledge_base(self, name: str) -> KnowledgeBaseSpec:
        """The knowledge base by name (``KeyError`` if unknown)."""
        for spec in self.knowledge_bases:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def tenant(self, name: str) -> TenantSpec | None:
        for spec in self.tenants:
            if spec.name == name:
                return spec
        return None

    def limits_for(self, tenant: str) -> RateLimits:
        """The rate limits of ``tenant``: its own fields over the defaults."""
        spec = self.tenant(tenant)
        if spec is None:
            return self.rate_limits
        own = spec.rate_limits.model_dump(exclude_none=True)
        return self.rate_limits.model_copy(update=own)

    def fingerprint(self) -> str:
        """A short stable hash of the config (reported in metrics and status)."""
        raw = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ConfigVersion:
    """An agent config as a process holds it: with its generation and hash.

    ``generation`` is the ``AgentConfig`` resource's ``metadata.generation`` when the file was
    rendered by the controller, else a per-process count of applied configs (1 at start).
    """

    config: AgentConfig
    generation: int
    hash: str

    @classmethod
    def of(cls, config: AgentConfig, generation: int) -> ConfigVersion:
        return cls(config=config, generation=generation, hash=config.fingerprint())


def default_agent_config(sim_base_url: str) -> AgentConfig:
    """The built-in config: two simulator models, one the fallback of the other; no keys."""
    return AgentConfig(
        default_model="sim",
        models=[
            ModelSpec(
                name="sim",
                model="openai/sim-agent",
                api_base=sim_base_url,
                input_cost_per_1k=0.00015,
                output_cost_per_1k=0.0006,
                timeout_seconds=30,
                fallbacks=["sim-backup"],
            ),
            ModelSpec(
                name="sim-backup",
                model="openai/sim-agent-backup",
                api_base=sim_base_url,
                input_cost_per_1k=0.0003,
                output_cost_per_1k=0.0012,
                timeout_seconds=30,
            ),
        ],
    )
