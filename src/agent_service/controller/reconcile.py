"""The controller's decisions, as pure functions over the resource and a ``Cluster`` port.

``reconcile`` validates an AgentConfig beyond its schema (the pydantic model: default model and
fallbacks name configured models; then referenced Secrets exist, hold the key and are mounted
into the pods; HTTP tool URLs pass the SSRF guard and the allowed-hosts policy), renders a valid
spec into the ConfigMap the pods read, and returns the status to write. An invalid spec never
touches the ConfigMap: the pods keep the last good config.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from agent_service.agentconfig.crd import KIND
from agent_service.agentconfig.load import validation_errors
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.render import CONFIG_KEY, render_config
from agent_service.agentconfig.status import conditions_for
from agent_service.domain.errors import ToolError
from agent_service.egress.guard import check_url
from agent_service.egress.hosts import host_allowed, url_host

ANNOTATION_GENERATION = "agent-service.dev/generation"
ANNOTATION_HASH = "agent-service.dev/config-hash"
ANNOTATION_SOURCE = "agent-service.dev/source"

EventType = Literal["Normal", "Warning"]


class ApiUnavailableError(Exception):
    """The Kubernetes API failed in a way worth retrying (raised by ``Cluster`` methods)."""


@dataclass(frozen=True)
class ConfigMapState:
    data: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class ObjectRef:
    """The AgentConfig being reconciled."""

    name: str
    namespace: str
    generation: int
    uid: str = ""


class Cluster(Protocol):
    """What the controller needs from Kubernetes (``kube.KubeCluster``; fakes in tests)."""

    def secret_keys(self, name: str) -> set[str] | None:
        """The keys of Secret ``name``, or None if there is no such Secret."""

    def read_configmap(self, name: str) -> ConfigMapState | None: ...

    def write_configmap(self, name: str, data: dict[str, str], annotations: dict[str, str]) -> None:
        """Create or replace the data (and these annotations) of ConfigMap ``name``."""

    def event(self, obj: ObjectRef, type_: EventType, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class Policy:
    """What the cluster operator allows, from the controller's settings."""

    configmap: str
    mounted_secrets: frozenset[str] | None = None
    """Secrets mounted into api/worker pods (None: not checked)."""
    allowed_tool_hosts: tuple[str, ...] = ()
    """Host patterns HTTP tools may call (``*.svc.cluster.local``); empty: any public host."""
    allow_private_networks: bool = False
    """Whether a spec may set ``tools.allowPrivateNetworks``."""


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str
    message: str


@dataclass
class Outcome:
    """What one reconcile decided: the status to write and the event to emit (if any)."""

    accepted: bool
    reason: str
    message: str
    status: dict[str, Any]
    wrote_configmap: bool = False
    config: AgentConfig | None = None
    problems: list[Problem] = field(default_factory=list)


def check_spec(
    spec: Mapping[str, Any], cluster: Cluster, policy: Policy
) -> tuple[AgentConfig | None, list[Problem]]:
    """The validated config, or the problems that make it unusable (paths under ``spec``)."""
    try:
        config = AgentConfig.model_validate(dict(spec))
    except ValidationError as exc:
        return None, [
            Problem(path, "InvalidSpec", message)
            for path, message in validation_errors(exc, prefix=("spec",))
        ]
    problems = [*_secret_problems(config, cluster, policy), *_tool_problems(config, policy)]
    return (None if problems else config), problems


def _secret_problems(config: AgentConfig, cluster: Cluster, policy: Policy) -> Iterator[Problem]:
    for index, model in enumerate(config.models):
        ref = model.api_key.secret_key_ref if model.api_key else None
        if ref is None:
            continue
        path = f"spec.models[{index}].apiKey.secretKeyRef"
        keys = cluster.secret_keys(ref.name)
        if keys is None:
            yield Problem(path, "SecretNotFound", f"Secret {ref.name!r} does not exist")
        elif ref.key not in keys:
            yield Problem(path, "SecretKeyNotFound", f"Secret {ref.name!r} has no key {ref.key!r}")
        elif policy.mounted_secrets is not None and ref.name not in policy.mounted_secrets:
            yield Problem(
                path,
                "SecretNotMounted",
                f"Secret {ref.name!r} is not mounted into the pods (add it to the chart's "
                "agentConfigSecrets value)",
            )


def _tool_problems(config: AgentConfig, policy: Policy) -> Iterator[Problem]:
    tools = config.tools
    if tools.allow_private_networks and not policy.allow_private_networks:
        yield Problem(
            "spec.tools.allowPrivateNetworks",
            "PrivateNetworksNotAllowed",
            "this controller does not allow HTTP tools to reach private networks",
        )
    allow_private = tools.allow_private_networks and policy.allow_private_networks
    for index, tool in enumerate(tools.http):
        path = f"spec.tools.http[{index}].url"
        try:
            check_url(tool.url, allow_private)
        except ToolError as exc:
            yield Problem(path, "ToolURLNotAllowed", f"{tool.url}: {exc}")
            continue
        host = url_host(tool.url)
        allowed = policy.allowed_tool_hosts
        if not host_allowed(host, allowed):
            yield Problem(
                path,
                "ToolURLNotAllowed",
                f"host {host!r} is not in the allowed tool hosts ({', '.join(allowed)})",
            )


def reconcile(
    obj: ObjectRef,
    spec: Mapping[str, Any],
    *,
    previous_status: Mapping[str, Any],
    cluster: Cluster,
    policy: Policy,
    now: str,
) -> Outcome:
    """Validate, render when valid, and compute the status to write."""
    config, problems = check_spec(spec, cluster, policy)
    previous_conditions = previous_status.get("conditions") or []
    status: dict[str, Any] = {"observedGeneration": obj.generation, "configMap": policy.configmap}
    if config is None:
        reason = problems[0].reason
        message = "; ".join(f"{p.path}: {p.message}" for p in problems)
        current = cluster.read_configmap(policy.configmap)
        kept = _describe_kept(current)
        status["conditions"] = conditions_for(
            accepted=False,
            ready=False,
            reason=reason,
            accepted_message=message,
            ready_message=f"not applied: {message}. {kept}",
            generation=obj.generation,
            now=now,
            previous=previous_conditions,
        )
        return Outcome(False, reason, message, status, problems=problems)
    data = render_config(obj, config)
    digest = config.fingerprint()
    annotations = {
        ANNOTATION_GENERATION: str(obj.generation),
        ANNOTATION_HASH: digest,
        ANNOTATION_SOURCE: f"{KIND}/{obj.name}",
    }
    current = cluster.read_configmap(policy.configmap)
    wrote = current is None or current.data != data or _annotations_differ(current, annotations)
    if wrote:
        cluster.write_configmap(policy.configmap, data, annotations)
    message = (
        f"generation {obj.generation} (hash {digest}) is in ConfigMap {policy.configmap}; "
        "api and worker pods apply it without restart"
    )
    status.update({"appliedGeneration": obj.generation, "configHash": digest})
    status["conditions"] = conditions_for(
        accepted=True,
        ready=True,
        reason="Applied",
        accepted_message="the spec is valid",
        ready_message=message,
        generation=obj.generation,
        now=now,
        previous=previous_conditions,
    )
    return Outcome(True, "Applied", message, status, wrote_configmap=wrote, config=config)


def _annotations_differ(current: ConfigMapState, wanted: Mapping[str, str]) -> bool:
    return any(current.annotations.get(k) != v for k, v in wanted.items())


def _describe_kept(current: ConfigMapState | None) -> str:
    if current is None or CONFIG_KEY not in current.data:
        return "No config has been applied yet: the pods wait for a valid one."
    generation = current.annotations.get(ANNOTATION_GENERATION, "?")
    digest = current.annotations.get(ANNOTATION_HASH, "?")
    return f"The pods keep generation {generation} (hash {digest})."


def changed(previous: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``status`` whose value differs from ``previous`` (what to patch)."""
    return {k: v for k, v in status.items() if previous.get(k) != v}


def transition(previous: Mapping[str, Any], outcome: Outcome) -> bool:
    """Whether the outcome is news: Ready's status, reason or generation changed."""
    old = next((c for c in previous.get("conditions") or [] if c.get("type") == "Ready"), None)
    new = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    if old is None:
        return True
    keys = ("status", "reason", "observedGeneration", "message")
    return any(old.get(k) != new.get(k) for k in keys)
