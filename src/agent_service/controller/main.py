"""``agent-service controller``: the kopf operator for this release's config resources.

One active controller per release: the chart runs a single replica with the ``Recreate``
strategy, and kopf runs standalone (no peering objects, so no cluster-wide RBAC). kopf keeps
its bookkeeping in the AgentConfig's status and none on Agents and MCPServers (event handlers),
so the controller needs ``patch`` on the three kinds' ``status`` only, never on the resources.
"""

from __future__ import annotations

import logging

import kopf

from agent_service import __version__
from agent_service.controller.handlers import build_registry
from agent_service.controller.kube import KubeCluster, connect, pod_namespace
from agent_service.controller.ports import Policy
from agent_service.controller.probe import McpProber
from agent_service.controller.renderer import Renderer
from agent_service.observability.exposition import serve_metrics
from agent_service.observability.logging import configure_logging
from agent_service.observability.metrics import Metrics
from agent_service.settings import Settings, metrics_token

log = logging.getLogger(__name__)


def operator_settings() -> kopf.OperatorSettings:
    """kopf settings for a namespaced controller with least privileges."""
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.StatusProgressStorage()
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage()
    settings.scanning.disabled = True  # no cluster-wide CRD/namespace listing
    settings.posting.level = logging.WARNING  # our own events say what happened
    settings.watching.server_timeout = 300
    return settings


def run_controller(settings: Settings) -> int:
    configure_logging(settings.log, component="controller")
    options = settings.controller
    namespace = pod_namespace(options.namespace)
    metrics = Metrics()
    metrics.build_info.labels(__version__).set(1)
    for result in ("applied", "rejected"):
        metrics.config_reloads.labels(result)
    serve_metrics(
        metrics.registry, settings.metrics.port, settings.metrics.host, metrics_token(settings)
    )
    policy = Policy(
        configmap=options.configmap,
        mounted_secrets=frozenset(options.mounted_secrets)
        if options.mounted_secrets is not None
        else None,
        allowed_tool_hosts=tuple(options.allowed_tool_hosts),
        allow_private_networks=options.allow_private_networks,
        agentconfig=options.agentconfig,
        label=options.selector,
    )
    cluster = KubeCluster(namespace, connect())
    renderer = Renderer(cluster, policy, metrics)
    prober = None
    if options.probe_mcp_servers:
        prober = McpProber(
            resolve=cluster.secret_value,
            max_age=options.resync_seconds,
            on_result=renderer.request,
        ).start()
        renderer.prober = prober
    registry = build_registry(options.agentconfig, renderer, options.resync_seconds)
    log.info(
        "controller starting: AgentConfig %s/%s with the Agents and MCPServers labelled %s=%s "
        "-> ConfigMap %s",
        namespace,
        options.agentconfig,
        *policy.label,
        options.configmap,
    )
    try:
        kopf.run(
            registry=registry,
            settings=operator_settings(),
            standalone=True,
            namespaces=[namespace],
            liveness_endpoint=f"http://0.0.0.0:{options.health_port}/healthz",
        )
    finally:
        if prober is not None:
            prober.close()
    return 0
