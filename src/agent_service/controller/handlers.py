"""The kopf handlers: thin wrappers that call ``reconcile`` and write what it decided.

``build_registry`` registers them on a fresh ``kopf.OperatorRegistry`` (no global state), for
the one AgentConfig this controller renders: on create, update and resume, and on a timer so a
Secret created later or a ConfigMap edited by hand is caught up. ``handle`` is what they call;
tests call it directly with a fake ``Cluster``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

import kopf

from agent_service.agentconfig.crd import GROUP, PLURAL, VERSION
from agent_service.controller.reconcile import (
    ApiUnavailableError,
    Cluster,
    ObjectRef,
    Outcome,
    Policy,
    changed,
    reconcile,
    transition,
)
from agent_service.observability.metrics import Metrics

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def handle(
    *,
    name: str,
    namespace: str,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    patch_status: MutableMapping[str, Any],
    cluster: Cluster,
    policy: Policy,
    metrics: Metrics,
    now: str | None = None,
) -> Outcome:
    """Reconcile one AgentConfig; put the status changes in ``patch_status``."""
    obj = ObjectRef(
        name=name,
        namespace=namespace,
        generation=int(meta.get("generation") or 1),
        uid=str(meta.get("uid") or ""),
    )
    outcome = reconcile(
        obj, spec, previous_status=status, cluster=cluster, policy=policy, now=now or _now()
    )
    news = transition(status, outcome)
    patch_status.update(changed(status, outcome.status))
    if outcome.accepted:
        assert outcome.config is not None
        metrics.set_config(obj.generation, outcome.config.fingerprint())
    if news:
        metrics.config_reload("applied" if outcome.accepted else "rejected")
        if outcome.accepted:
            cluster.event(obj, "Normal", "Applied", outcome.message)
            log.info("AgentConfig %s/%s: %s", namespace, name, outcome.message)
        else:
            cluster.event(obj, "Warning", outcome.reason, outcome.message)
            log.warning(
                "AgentConfig %s/%s rejected (%s): %s",
                namespace,
                name,
                outcome.reason,
                outcome.message,
            )
    return outcome


def build_registry(
    agentconfig: str,
    cluster: Cluster,
    policy: Policy,
    metrics: Metrics,
    resync_seconds: float,
) -> kopf.OperatorRegistry:
    """Handlers for the AgentConfig named ``agentconfig`` (others in the namespace belong to
    other releases and are left alone)."""
    registry = kopf.OperatorRegistry()

    def selected(name: str, **_: Any) -> bool:
        return name == agentconfig

    def reconcile_handler(
        *,
        name: str,
        namespace: str | None,
        meta: Mapping[str, Any],
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        patch: kopf.Patch,
        **_: Any,
    ) -> None:
        try:
            handle(
                name=name,
                namespace=namespace or "",
                meta=meta,
                spec=spec,
                status=status,
                patch_status=patch.status,
                cluster=cluster,
                policy=policy,
                metrics=metrics,
            )
        except ApiUnavailableError as exc:
            raise kopf.TemporaryError(str(exc), delay=10) from exc

    resource = (GROUP, VERSION, PLURAL)
    for decorate in (
        kopf.on.resume(*resource, registry=registry, when=selected, id="resume"),
        kopf.on.create(*resource, registry=registry, when=selected, id="create"),
        kopf.on.update(*resource, registry=registry, when=selected, id="update"),
        kopf.timer(
            *resource,
            registry=registry,
            when=selected,
            id="resync",
            interval=resync_seconds,
            initial_delay=resync_seconds,
        ),
    ):
        decorate(reconcile_handler)
    return registry
