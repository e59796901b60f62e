"""Building blocks shared by every part of the agent config: the spec base class, name rules
and secret references.

Every spec is a frozen pydantic model with camelCase aliases (Kubernetes style; snake_case is
accepted too) that refuses unknown fields, so a typo is an error rather than a silent default.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

Loc = tuple[str | int, ...]
"""Where in the config: ``("agents", 1, "model")``."""

NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"


class Spec(BaseModel):
    """Base of every part of the agent config."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretKeyRef(Spec):
    """A key of a Kubernetes Secret in the config's namespace, mounted into the pods."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", description="Name of the Secret."
    )
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]{1,253}$", description="Key in the Secret's data.")


class SecretRef(Spec):
    """Where a secret comes from (never the value itself): exactly one of an environment
    variable, a file, or a key of a Kubernetes Secret (read by the pods from the directory the
    chart mounts the Secret in: ``AGENT_CONFIG_SECRETS_DIR/<name>/<key>``)."""

    env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$",
        description="Name of an environment variable holding the secret.",
    )
    file: str | None = Field(
        default=None, min_length=1, max_length=4096, description="Path of a file holding it."
    )
    secret_key_ref: SecretKeyRef | None = Field(
        default=None, description="A key of a Kubernetes Secret mounted into the pods."
    )

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        sources = [self.env, self.file, self.secret_key_ref]
        if sum(source is not None for source in sources) != 1:
            raise ValueError("set exactly one of env, file or secretKeyRef")
        return self


def format_path(loc: Sequence[str | int]) -> str:
    """``("agents", 1, "model")`` as ``agents[1].model`` (the form errors are reported in)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class SpecError(ValueError):
    """Problems found across fields after each field was valid (an unknown model named by an
    agent...), each at its own path. pydantic keeps this exception in the error's context, and
    ``load.validation_errors`` reports each problem at its path."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{format_path(loc)}: {message}" for loc, message in problems))
        self.problems = list(problems)
