"""The controller's imperative shell: read the release's resources, reconcile, write the results.

The kopf handlers (``handlers``) call ``Renderer.request`` for every change of the AgentConfig,
an Agent or an MCPServer, and on the resync timer; the prober calls it when a probe ends. Each
call reads everything (the AgentConfig, the labelled Agents and MCPServers, the ConfigMap),
lets ``reconcile.reconcile`` decide, then writes the ConfigMap (first: a status never claims
what the pods do not have), patches each status that changed, posts an Event for each news,
counts reloads and hands the served MCP servers to the prober.

Calls come from kopf's worker threads and the prober's: one reconcile runs at a time, and a
caller whose change was read by a reconcile that started after it asked returns at once, so a
burst of events costs a few reconciles, not one each.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from agent_service.agentconfig.crd import AGENT_KIND, KIND, MCP_SERVER_KIND
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.controller.ports import Cluster, Policy, ProbeResult, Resource
from agent_service.controller.reconcile import Decision, StatusUpdate, World, reconcile
from agent_service.observability.metrics import Metrics

log = logging.getLogger(__name__)


class Prober(Protocol):
    """``probe.McpProber``, as the renderer uses it."""

    def result(self, spec: McpServerSpec) -> ProbeResult | None: ...

    def request(self, specs: Sequence[McpServerSpec]) -> None: ...


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Renderer:
    """Renders the release's config resources into the pods' ConfigMap."""

    def __init__(
        self,
        cluster: Cluster,
        policy: Policy,
        metrics: Metrics,
        prober: Prober | None = None,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self._cluster = cluster
        self._policy = policy
        self._metrics = metrics
        self.prober = prober
        self._clock = clock
        self._lock = threading.Lock()
        self._tickets = threading.Lock()
        self._requested = 0
        self._completed = 0
        self._seen: dict[tuple[str, str], tuple[str, int]] = {}

    def request(self) -> Decision | None:
        """Reconcile, unless a reconcile that started after this call already finished (then
        None). ``ApiUnavailableError`` when the Kubernetes API fails (kopf retries)."""
        with self._tickets:
            self._requested += 1
            ticket = self._requested
        with self._lock:
            if self._completed >= ticket:
                return None
            with self._tickets:
                started = self._requested
            decision = self.reconcile_once()
            self._completed = started
            return decision

    def concerns(self, kind: str, event: str | None, body: Mapping[str, Any]) -> bool:
        """Whether a watch event of an Agent or MCPServer can change the rendering: it carries
        the release's label or was rendered before (a removed label, a deletion), and is not
        just the status this controller wrote."""
        meta = body.get("metadata") or {}
        key = (kind, str(meta.get("name") or ""))
        key_label, value = self._policy.label
        if event == "DELETED" or (meta.get("labels") or {}).get(key_label) != value:
            return key in self._seen
        return self._seen.get(key) != (str(meta.get("uid") or ""), int(meta.get("generation") or 1))

    def reconcile_once(self) -> Decision:
        cluster, policy = self._cluster, self._policy
        world = World(
            agentconfig=cluster.read_resource(KIND, policy.agentconfig),
            agents=cluster.list_resources(AGENT_KIND, policy.label),
            servers=cluster.list_resources(MCP_SERVER_KIND, policy.label),
            configmap=cluster.read_configmap(policy.configmap),
        )
        prober = self.prober
        decision = reconcile(
            world,
            cluster=cluster,
            policy=policy,
            probes=prober.result if prober is not None else None,
            now=self._clock(),
        )
        if decision.write is not None:
            cluster.write_configmap(
                policy.configmap, decision.write.data, decision.write.annotations
            )
        if decision.new_config:
            self._metrics.config_reload("applied")
            log.info(
                "ConfigMap %s: config generation %s (hash %s): agents %s; MCP servers %s",
                policy.configmap,
                decision.generation,
                decision.hash,
                ", ".join(a.name for a in decision.config.agents) if decision.config else "-",
                ", ".join(s.name for s in decision.config.mcp_servers) if decision.config else "-",
            )
        if decision.generation is not None and decision.hash is not None:
            self._metrics.set_config(decision.generation, decision.hash)
        for update in decision.statuses:
            self._report(update)
        if prober is not None:
            prober.request(decision.probe)
        self._seen = {
            (r.kind, r.name): (r.uid, r.generation) for r in [*world.agents, *world.servers]
        }
        return decision

    def _report(self, update: StatusUpdate) -> None:
        resource = update.resource
        patch = update.patch
        if patch:
            self._cluster.patch_status(resource.ref, patch)
        if not update.news:
            return
        ready = update.ready
        state, reason, message = (
            ready.get("status"),
            str(ready.get("reason")),
            str(ready.get("message")),
        )
        if update.rejected:
            self._metrics.config_reload("rejected")
        if state == "True":
            self._cluster.event(resource.ref, "Normal", reason, message)
            log.info("%s %s: %s", resource.kind, _name(resource), message)
        elif state == "False":
            self._cluster.event(resource.ref, "Warning", reason, message)
            log.warning("%s %s not ready (%s): %s", resource.kind, _name(resource), reason, message)


def _name(resource: Resource) -> str:
    return f"{resource.namespace}/{resource.name}"
