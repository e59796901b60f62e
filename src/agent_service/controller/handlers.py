"""The kopf handlers: thin wrappers that have the ``Renderer`` reconcile.

``build_registry`` registers them on a fresh ``kopf.OperatorRegistry`` (no global state):

* the release's AgentConfig (by name; others in the namespace belong to other releases): on
  create, update and resume, with kopf's retries when the Kubernetes API fails, and on a timer
  so a Secret created later, a ConfigMap edited by hand or a stale MCP probe is caught up;
* Agents and MCPServers: every watch event (added, modified, deleted) of one that carries the
  release's label or was rendered before. These are plain event handlers: kopf keeps no state
  on them and adds no finalizer, so the controller needs no write access to the resources
  themselves, only to their status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from agent_service.agentconfig.crd import AGENT, GROUP, MCP_SERVER, PLURAL, VERSION
from agent_service.controller.ports import ApiUnavailableError
from agent_service.controller.renderer import Renderer

log = logging.getLogger(__name__)


def build_registry(
    agentconfig: str, renderer: Renderer, resync_seconds: float
) -> kopf.OperatorRegistry:
    """Handlers for the AgentConfig named ``agentconfig`` and the Agents and MCPServers that
    join it."""
    registry = kopf.OperatorRegistry()

    def selected(name: str, **_: Any) -> bool:
        return name == agentconfig

    def agentconfig_changed(**_: Any) -> None:
        try:
            renderer.request()
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
        decorate(agentconfig_changed)

    def joined_changed(*, type: str, body: Mapping[str, Any], param: Any = None, **_: Any) -> None:
        if not renderer.concerns(param, type, body):
            return
        try:
            renderer.request()
        except ApiUnavailableError as exc:  # events are not retried: the resync catches up
            log.warning("%s change not rendered yet (again at the next resync): %s", param, exc)

    for kind in (AGENT, MCP_SERVER):
        kopf.on.event(
            GROUP,
            VERSION,
            kind.plural,
            registry=registry,
            id=f"{kind.singular}-event",
            param=kind.kind,
        )(joined_changed)
    return registry
