"""Secret references of the agent config, resolved to their values at the moment of use.

Called by the LLM client (provider keys), the webhook signer (tenant secrets) and the MCP
client (header values). A value is read at every use rather than cached: a mounted Kubernetes
Secret follows rotation, so a rotated key is used at the next call without a restart.
"""

from __future__ import annotations

from pathlib import Path

from agent_service.agentconfig.spec import SecretRef
from agent_service.settings import environment_variable


def resolve_secret(ref: SecretRef | None, secrets_dir: Path) -> str | None:
    """The value of a secret reference, or None if unset or absent.

    ``secretKeyRef`` is read from ``secrets_dir/<name>/<key>``, where the chart mounts the
    Secret; ``file`` from its path; ``env`` from the process environment.
    """
    if ref is None:
        return None
    if ref.env is not None:
        return environment_variable(ref.env)
    if ref.secret_key_ref is not None:
        path = secrets_dir / ref.secret_key_ref.name / ref.secret_key_ref.key
    else:
        assert ref.file is not None
        path = Path(ref.file)
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
