"""The ``status`` of the config resources: conditions the controller sets, and how they change.

One model per kind (``AgentConfigStatus``, ``AgentStatus``, ``McpServerStatus``): the CRDs'
status schemas are generated from them. Pure: ``condition`` builds one condition, keeping
``lastTransitionTime`` when its status does not change (Kubernetes API conventions);
``conditions_for`` builds the ``Accepted`` and ``Ready`` pair every kind carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ConditionStatus = Literal["True", "False", "Unknown"]


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Condition(_Status):
    """One condition, as in ``metav1.Condition``."""

    type: str = Field(description="Accepted: the spec is valid. Ready: pods have been given it.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase reason, e.g. Applied, InvalidSpec.")
    message: str = Field(description="What happened, precisely (paths and reasons).")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int = Field(description="The metadata.generation it is about.")


class _ResourceStatus(_Status):
    observed_generation: int | None = Field(
        default=None, description="The last metadata.generation the controller processed."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Accepted and Ready.")
    kopf: dict[str, Any] | None = Field(
        default=None, description="The controller framework's own bookkeeping."
    )


class AgentConfigStatus(_ResourceStatus):
    """What the controller observed and did."""

    applied_generation: int | None = Field(
        default=None, description="The generation of this resource now in the ConfigMap."
    )
    config_generation: int | None = Field(
        default=None,
        description="The config generation the pods report (this resource's generation while "
        "no Agent or MCPServer is rendered with it; else a count of rendered changes).",
    )
    config_hash: str | None = Field(
        default=None, description="Hash of the applied config (as pods report it in /readyz)."
    )
    config_map: str | None = Field(default=None, description="The ConfigMap the pods read.")
    agents: list[str] | None = Field(
        default=None, description="The agents the pods serve (this resource's and Agents)."
    )
    mcp_servers: list[str] | None = Field(
        default=None, description="The MCP servers the pods use (this resource's and MCPServers)."
    )


class AgentStatus(_ResourceStatus):
    """An Agent as the controller rendered it."""

    served_generation: int | None = Field(
        default=None,
        description="The generation of this Agent the pods serve: observedGeneration when "
        "Ready, an earlier one (the last good) when the latest was rejected; unset: not served.",
    )
    model: str | None = Field(
        default=None, description="The model of the served agent's runs (inherited included)."
    )
    tools: str | None = Field(default=None, description="The served agent's tools, in short.")


class McpServerStatus(_ResourceStatus):
    """An MCPServer as the controller rendered and probed it."""

    served_generation: int | None = Field(
        default=None,
        description="The generation of this MCPServer the pods use (see Agent's); unset: none.",
    )
    tool_count: int | None = Field(
        default=None,
        description="Tools the server offered the last time the controller listed them "
        "(after include and exclude).",
    )
    tools: list[str] | None = Field(
        default=None, description="Their names, as the server names them."
    )


def condition(
    kind: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int,
    now: str,
    previous: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One condition in its wire (camelCase) form; ``lastTransitionTime`` is kept from the
    previous condition of that type when its status is unchanged."""
    before = next((c for c in previous if isinstance(c, Mapping) and c.get("type") == kind), None)
    since = now
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        since = str(before["lastTransitionTime"])
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    ).model_dump(by_alias=True)


def conditions_for(
    *,
    accepted: bool,
    ready: bool,
    reason: str,
    accepted_message: str,
    ready_message: str,
    generation: int,
    now: str,
    previous: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The ``Accepted`` and ``Ready`` conditions, both with ``reason``."""
    return [
        condition(
            "Accepted", _status(accepted), reason, accepted_message,
            generation=generation, now=now, previous=previous,
        ),
        condition(
            "Ready", _status(ready), reason, ready_message,
            generation=generation, now=now, previous=previous,
        ),
    ]  # fmt: skip


def _status(value: bool) -> ConditionStatus:
    return "True" if value else "False"
