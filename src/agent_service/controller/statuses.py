"""The status the controller writes on each resource, from what ``reconcile`` decided.

Every kind carries ``observedGeneration`` and the conditions ``Accepted`` (the spec of that
generation passes every check) and ``Ready`` (the pods serve it), each with a CamelCase reason
and a precise message; an Agent adds the model and tools it is served with, an MCPServer the
tools the controller listed on it. Fields that no longer apply are written as None, which a
merge patch removes. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_service.agentconfig.crd import AGENT_KIND
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.status import ConditionStatus, condition
from agent_service.controller.compose import Verdict
from agent_service.controller.ports import ProbeResult, Probes, Problem, Resource, describe
from agent_service.controller.served import Entry


@dataclass(frozen=True)
class Rendering:
    """What the ConfigMap serves after this reconcile (for the messages)."""

    configmap: str
    generation: int
    hash: str
    default_model: str


def _pair(
    resource: Resource,
    accepted: tuple[ConditionStatus, str, str],
    ready: tuple[ConditionStatus, str, str],
    now: str,
) -> list[dict[str, Any]]:
    previous = resource.status.get("conditions") or []
    return [
        condition(
            "Accepted", *accepted, generation=resource.generation, now=now, previous=previous
        ),
        condition("Ready", *ready, generation=resource.generation, now=now, previous=previous),
    ]


def _served_note(verdict: Verdict) -> str:
    if verdict.served is not None:
        return (
            f"The pods keep serving its generation {verdict.served.origin.generation} "
            "(the last good one)."
        )
    if verdict.kept_problems:
        return f"Its last good generation is not served either: {describe(verdict.kept_problems)}."
    return "Nothing of it is served."


def tools_summary(entry: Mapping[str, Any]) -> str:
    """An agent's tools in short, as the model sees their names: ``calculator,orders__*``."""
    tools = entry.get("tools") or {}
    names = [name for key, name in (("calculator", "calculator"), ("currentTime", "current_time"))
             if tools.get(key)]  # fmt: skip
    names += tools.get("http") or []
    for ref in tools.get("mcp") or []:
        included = ref.get("include") or ["*"]
        names += [f"{ref['server']}__{tool}" for tool in included]
    return ",".join(names) or "none"


def _agent_fields(entry: Entry | None, rendering: Rendering | None) -> dict[str, Any]:
    if entry is None or rendering is None:
        return {"servedGeneration": None, "model": None, "tools": None}
    return {
        "servedGeneration": entry.origin.generation,
        "model": entry.spec.get("model") or rendering.default_model,
        "tools": tools_summary(entry.spec),
    }


def _probe_fields(result: ProbeResult | None) -> dict[str, Any]:
    if result is None or result.reachable is not True:
        return {"toolCount": None, "tools": None}
    return {"toolCount": len(result.tools), "tools": list(result.tools)}


def _server_ready(
    result: ProbeResult | None, probing: bool, served: str
) -> tuple[ConditionStatus, str, str]:
    if not probing:
        return "True", "Served", f"{served}; MCP servers are not probed by this controller"
    if result is None:
        return "Unknown", "Probing", f"{served}; the controller is listing its tools"
    if result.reachable is None:
        return "Unknown", "NotProbed", f"{served}; {result.message}"
    if result.reachable:
        listed = ", ".join(result.tools) or "none"
        return "True", "Reachable", f"{served}; it offers {len(result.tools)} tools: {listed}"
    return (
        "False",
        "MCPUnreachable",
        f"{served}, but the controller cannot reach it: {result.message}. Calls to its tools "
        "fail as tool errors the model reads until it answers",
    )


def resource_status(
    verdict: Verdict, rendering: Rendering, probes: Probes | None, now: str
) -> dict[str, Any]:
    """An Agent's or MCPServer's status after the config was rendered."""
    resource = verdict.resource
    # Not the config generation: it moves with every resource's change, and each Agent would
    # get a new message (a status write and an Event) for another's edit.
    served = f"served by the pods (ConfigMap {rendering.configmap})"
    if verdict.accepted:
        accepted: tuple[ConditionStatus, str, str] = ("True", "Valid", "the spec is valid")
        ready: tuple[ConditionStatus, str, str] = ("True", "Served", served)
    else:
        message = describe(verdict.problems)
        accepted = ("False", verdict.reason, message)
        ready = (
            "False",
            verdict.reason,
            f"generation {resource.generation} is not served: {message}. {_served_note(verdict)}",
        )
    status: dict[str, Any] = {"observedGeneration": resource.generation}
    if resource.kind == AGENT_KIND:
        status.update(_agent_fields(verdict.served, rendering))
    else:
        result = None
        if verdict.served is not None and probes is not None:
            result = probes(McpServerSpec.model_validate(verdict.served.spec))
        if verdict.accepted:
            ready = _server_ready(result, probes is not None, served)
        status["servedGeneration"] = (
            verdict.served.origin.generation if verdict.served is not None else None
        )
        status.update(_probe_fields(result))
    status["conditions"] = _pair(resource, accepted, ready, now)
    return status


def waiting_status(
    resource: Resource, reason: str, message: str, entry: Entry | None, now: str
) -> dict[str, Any]:
    """An Agent's or MCPServer's status while no config can be rendered (no AgentConfig, or
    none accepted): it cannot be checked; what the pods had of it stays."""
    kept = (
        f". The pods keep serving its generation {entry.origin.generation}"
        if entry is not None
        else ""
    )
    status: dict[str, Any] = {
        "observedGeneration": resource.generation,
        "servedGeneration": entry.origin.generation if entry is not None else None,
        "conditions": _pair(
            resource, ("Unknown", reason, message), ("False", reason, message + kept), now
        ),
    }
    if resource.kind == AGENT_KIND:
        status.update({"model": None, "tools": None})
    else:
        status.update({"toolCount": None, "tools": None})
    return status


def agentconfig_status(
    resource: Resource,
    *,
    problems: Sequence[Problem],
    ready: str | None,
    kept: str,
    served: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The AgentConfig's status: ``problems`` of its current spec (none: accepted); ``ready``
    the message when its current spec is in the ConfigMap (else ``kept`` says what the pods
    keep); ``served`` the fields about the ConfigMap (generation, hash, agents ...)."""
    if not problems and ready is not None:
        accepted: tuple[ConditionStatus, str, str] = ("True", "Applied", "the spec is valid")
        state: tuple[ConditionStatus, str, str] = ("True", "Applied", ready)
    else:
        message = describe(list(problems))
        reason = problems[0].reason if problems else "RenderFailed"
        accepted = ("False", reason, message)
        state = ("False", reason, f"not applied: {message}. {kept}")
    status = {"observedGeneration": resource.generation, **served}
    status["conditions"] = _pair(resource, accepted, state, now)
    return status
