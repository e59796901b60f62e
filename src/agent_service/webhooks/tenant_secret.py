"""Which secret signs a tenant's webhooks: its ``webhookSecret``, else the service-wide file.

Read at every use (a mounted Secret follows rotation), by the API when a task names a
``webhook_url`` (no secret: 422) and by the worker before each delivery.
"""

from __future__ import annotations

from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.secrets import resolve_secret
from agent_service.agentconfig.spec import SecretRef
from agent_service.settings import Settings


def signing_secret(config: AgentConfig, tenant: str, settings: Settings) -> str | None:
    """The HMAC secret of ``tenant`` in ``config``, or None when neither its ``webhookSecret``
    nor ``AGENT_WEBHOOKS_SECRET_FILE`` gives a non-empty one."""
    spec = config.tenant(tenant)
    ref: SecretRef | None = spec.webhook_secret if spec is not None else None
    if ref is None and settings.webhooks.secret_file is not None:
        ref = SecretRef(file=str(settings.webhooks.secret_file))
    return resolve_secret(ref, settings.config.secrets_dir) or None
