"""Request and response bodies of the HTTP API (what /docs shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent_service.agentconfig.spec import NAME_PATTERN
from agent_service.domain.runs import DEFAULT_TENANT, RunRequest

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class RunBody(BaseModel):
    """A run: ``POST /v1/chat`` and ``POST /v1/tasks``. Strict: ``"stream": 0`` is not a
    boolean. ``/openapi.json`` adds what settings and the config decide (``api.openapi``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(min_length=1, description="The user's message.")
    session_id: str | None = Field(
        default=None,
        pattern=SESSION_ID_PATTERN,
        description="Conversation id: the last turns of the session are sent as memory.",
    )
    model: str | None = Field(
        default=None, description="A configured model name (default: the agent's)."
    )
    agent: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="A configured agent name (default: the config's default agent; see "
        "GET /v1/agents).",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Small free-form metadata.")
    stream: bool = Field(default=False, description="`POST /v1/chat` only: answer as SSE.")

    def to_run_request(self, tenant: str = DEFAULT_TENANT, agent: str | None = None) -> RunRequest:
        """The run of this body for ``tenant``, by ``agent`` (the resolved name)."""
        return RunRequest(
            message=self.message,
            session_id=self.session_id,
            model=self.model,
            agent=agent or self.agent,
            metadata=self.metadata,
            tenant=tenant,
        )


class TaskBody(RunBody):
    """A queued run: ``POST /v1/tasks``."""

    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="Called (POST, signed) when the task ends: https unless the service allows "
        "http; private addresses refused (see docs/api.md#webhooks).",
    )


class TaskAccepted(BaseModel):
    task_id: str
    status: str = "queued"
    queue: str
    idempotent_replay: bool = Field(
        default=False,
        description="True when an earlier request with the same Idempotency-Key made the task.",
    )
    waiting: bool = Field(
        default=False,
        description="True when the task waits for its session's current run to end "
        "(multitask `enqueue`, or `interrupt` of a run that stops at its next step).",
    )
    interrupted: list[str] = Field(
        default_factory=list,
        description="Tasks of the session cancelled by this one (multitask `interrupt`).",
    )


class CancelAnswer(BaseModel):
    task_id: str
    status: str = Field(
        description="`cancelled` (it was queued or waited for an approval: it will never run "
        "again) or `cancelling` (it is running and stops at its next step)."
    )


class ErrorDetail(BaseModel):
    type: str
    message: str
    request_id: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    redis: str
    config: dict[str, Any]


ERROR_DESCRIPTIONS = {
    400: "Invalid JSON",
    401: "Missing or invalid API key",
    404: "Unknown task",
    413: "Body too large",
    415: "Not JSON",
    422: "Invalid input",
    429: "Rate limited or over budget (see Retry-After)",
    503: "A dependency (Redis, every LLM) is unavailable, or the API is at capacity",
}


def error_responses(model: type[BaseModel], **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route's error statuses, with ``model`` as their body
    (``descriptions``: replacements, by ``s<status>``)."""
    texts = {**ERROR_DESCRIPTIONS, **{int(k[1:]): v for k, v in descriptions.items()}}
    return {code: {"model": model, "description": text} for code, text in texts.items()}


ERROR_RESPONSES = error_responses(ErrorBody)


class ModelCard(BaseModel):
    """An agent or a configured model, in OpenAI's ``/v1/models`` shape plus what the service
    knows of it (agents first: ``model`` in ``/v1/chat/completions`` takes either)."""

    id: str = Field(description="An agent name or a configured model name.")
    object: str = "model"
    created: int = Field(description="When this process loaded the config (Unix seconds).")
    owned_by: str = Field(
        description="`agent-service` for an agent; the LiteLLM provider of a model."
    )
    kind: str = Field(description="`agent` or `model`.")
    default: bool = Field(description="Whether requests naming none use it (agent or model).")
    fallbacks: list[str] = Field(
        default_factory=list, description="A model's fallbacks, tried in order when it fails."
    )


class AgentCard(BaseModel):
    """An agent the caller may use (``GET /v1/agents``)."""

    name: str = Field(
        description="What `agent` in a run request (or `model` in /v1/chat/completions) takes."
    )
    description: str
    model: str = Field(description="The configured model its runs use by default.")
    tools: list[str] = Field(description="The tools its runs are offered now.")
    default: bool = Field(description="Whether requests naming no agent use it.")
    structured_output: bool = Field(description="Whether its answers follow a JSON schema.")


class AgentList(BaseModel):
    data: list[AgentCard]
    default_agent: str
    config_generation: int = Field(description="Generation of the agent config in force.")


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]
    config_generation: int = Field(description="Generation of the agent config in force.")
