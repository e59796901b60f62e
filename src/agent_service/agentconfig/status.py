"""The ``status`` of an AgentConfig: conditions the controller sets, and how they change.

Pure: ``conditions_for`` builds the ``Accepted`` and ``Ready`` conditions of an outcome, keeping
``lastTransitionTime`` when a condition's status does not change (Kubernetes API conventions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Condition(_Status):
    """One condition, as in ``metav1.Condition``."""

    type: str = Field(description="Accepted: the spec is valid. Ready: pods have been given it.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase reason, e.g. Applied, InvalidSpec.")
    message: str = Field(description="What happened, precisely (paths and reasons).")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int = Field(description="The metadata.generation it is about.")


class AgentConfigStatus(_Status):
    """What the controller observed and did."""

    observed_generation: int | None = Field(
        default=None, description="The last metadata.generation the controller processed."
    )
    applied_generation: int | None = Field(
        default=None, description="The generation now in the ConfigMap the pods read."
    )
    config_hash: str | None = Field(
        default=None, description="Hash of the applied config (as pods report it in /readyz)."
    )
    config_map: str | None = Field(default=None, description="The ConfigMap the pods read.")
    conditions: list[Condition] = Field(default_factory=list, description="Accepted and Ready.")
    kopf: dict[str, Any] | None = Field(
        default=None, description="The controller framework's own bookkeeping."
    )


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
    """The ``Accepted`` and ``Ready`` conditions, in their wire (camelCase) form."""
    before = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}

    def condition(kind: str, value: bool, message: str) -> dict[str, Any]:
        status = "True" if value else "False"
        old = before.get(kind)
        since = now
        if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
            since = str(old["lastTransitionTime"])
        return Condition(
            type=kind,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=since,
            observed_generation=generation,
        ).model_dump(by_alias=True)

    return [
        condition("Accepted", accepted, accepted_message),
        condition("Ready", ready, ready_message),
    ]
