"""The agent configuration: models, fallbacks, tools, prompt and limits.

One pydantic model is the single source of truth for the YAML file (``AGENT_CONFIG_FILE``), the
built-in default (the simulator) and, later, the ``AgentConfig`` custom resource. Field names are
camelCase on the wire (Kubernetes style); snake_case is accepted too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
BUILTIN_TOOLS = ("calculator", "current_time")


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretRef(_Spec):
    """Where a secret comes from: an environment variable or a file (never the value itself)."""

    env: str | None = Field(default=None, description="Name of an environment variable.")
    file: str | None = Field(default=None, description="Path of a file holding the secret.")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("set exactly one of env or file")
        return self


class ModelSpec(_Spec):
    """A model the agent may call, by display name."""

    name: str = Field(pattern=NAME_PATTERN, description="Display name used in requests.")
    model: str = Field(
        min_length=1, description="LiteLLM model id, e.g. openai/gpt-4o-mini, anthropic/claude-..."
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
    temperature: float | None = Field(default=None, ge=0, le=2)
    fallbacks: list[str] = Field(
        default_factory=list, description="Models tried in order when this one fails."
    )

    @property
    def provider(self) -> str:
        """The LiteLLM provider prefix (``openai`` for ``openai/gpt-4o``)."""
        return self.model.split("/", 1)[0] if "/" in self.model else "openai"


class RetryPolicy(_Spec):
    """Retries of one model before falling back: exponential backoff with full jitter."""

    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_initial_seconds: float = Field(default=0.5, ge=0, le=60)
    backoff_max_seconds: float = Field(default=8.0, ge=0, le=300)


class HttpToolSpec(_Spec):
    """A tool served by an HTTP endpoint: the arguments are sent as JSON (POST) or query (GET)."""

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$")
    description: str = Field(min_length=1, max_length=2000)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments.",
    )
    url: str = Field(pattern=r"^https?://", description="Endpoint URL (http or https).")
    method: Literal["GET", "POST"] = "POST"
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=0, ge=0, le=5)
    headers: dict[str, str] = Field(default_factory=dict)


class ToolsSpec(_Spec):
    """Built-in tool switches and HTTP tools."""

    calculator: bool = True
    current_time: bool = True
    http: list[HttpToolSpec] = Field(default_factory=list)
    allow_private_networks: bool = Field(
        default=False,
        description="Let HTTP tools reach loopback, link-local and private addresses (SSRF guard).",
    )


class Limits(_Spec):
    """Per-run guardrails."""

    max_iterations: int = Field(default=8, ge=1, le=100, description="LLM calls per run.")
    run_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    max_tokens_per_run: int = Field(default=50_000, ge=1)
    memory_turns: int = Field(default=10, ge=0, le=200, description="Past session turns kept.")
    memory_token_budget: int = Field(default=4000, ge=0, description="Tokens of history sent.")
    tool_output_max_chars: int = Field(default=8000, ge=100, le=1_000_000)


DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the calculator tool for arithmetic and the current_time "
    "tool for the date and time. Answer briefly."
)


class AgentConfig(_Spec):
    """The whole agent configuration."""

    default_model: str
    models: list[ModelSpec] = Field(min_length=1)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    tools: ToolsSpec = Field(default_factory=ToolsSpec)
    limits: Limits = Field(default_factory=Limits)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

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
        names = {m.name for m in self.models}
        if self.default_model not in names:
            raise ValueError(f"defaultModel {self.default_model!r} is not a configured model")
        for spec in self.models:
            for fallback in spec.fallbacks:
                if fallback not in names:
                    raise ValueError(
                        f"model {spec.name!r}: fallback {fallback!r} is not configured"
                    )
                if fallback == spec.name:
                    raise ValueError(f"model {spec.name!r} lists itself as a fallback")
        tool_names = [t.name for t in self.tools.http]
        clashes = sorted({n for n in tool_names if tool_names.count(n) > 1 or n in BUILTIN_TOOLS})
        if clashes:
            raise ValueError(f"duplicate or built-in tool names: {', '.join(clashes)}")
        return self

    def model(self, name: str) -> ModelSpec:
        """The model spec by display name (``KeyError`` if unknown)."""
        for spec in self.models:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def fingerprint(self) -> str:
        """A short stable hash of the config (reported in metrics and status)."""
        raw = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


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
