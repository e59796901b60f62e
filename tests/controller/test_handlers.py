"""The AgentConfig through the controller's renderer, over a fake cluster: what it writes to
the ConfigMap and to the status.

A valid spec is rendered into the ConfigMap the pods read and gets Ready=True; every kind of
invalid spec gets Ready=False with a precise reason and message, and the ConfigMap keeps the
last good config. Kubernetes is a fake here (the real API cannot run on this machine). The
Agent and MCPServer resources are in test_resources.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent_service.agentconfig.crd import CONFIG_LABEL, KIND
from agent_service.agentconfig.load import parse_config_document
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.render import CONFIG_KEY, render_config
from agent_service.controller.handlers import build_registry
from agent_service.controller.ports import ConfigMapState, ObjectRef, Policy
from agent_service.controller.reconcile import ANNOTATION_GENERATION, ANNOTATION_HASH, Decision
from agent_service.controller.renderer import Renderer
from agent_service.observability.metrics import Metrics
from tests.controller.fakes import FakeCluster

CONFIGMAP = "demo-config"
NAME = "demo"
NOW = "2026-12-01T10:00:00Z"
LATER = "2026-12-01T10:05:00Z"

VALID: dict[str, Any] = {
    "defaultModel": "main",
    "models": [
        {
            "name": "main",
            "model": "openai/gpt-4o-mini",
            "apiKey": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}},
            "fallbacks": ["local"],
        },
        {"name": "local", "model": "openai/qwen", "apiBase": "http://vllm.llm.svc:8000/v1"},
    ],
    "tools": {
        "http": [
            {
                "name": "weather",
                "description": "Weather by city",
                "url": "https://weather.example.com/v1/now",
            }
        ]
    },
}


def policy(**fields: Any) -> Policy:
    return Policy(
        **{
            "configmap": CONFIGMAP,
            "mounted_secrets": frozenset({"llm-keys"}),
            "agentconfig": NAME,
            "label": (CONFIG_LABEL, NAME),
            **fields,
        }
    )


class Harness:
    """The renderer over a fake cluster holding the AgentConfig ``demo``."""

    def __init__(self, policy_: Policy | None = None) -> None:
        self.cluster = FakeCluster(secrets={"llm-keys": {"openai"}})
        self.policy = policy_ or policy()
        self.metrics = Metrics(CollectorRegistry())
        self.now = NOW
        self.renderer = Renderer(self.cluster, self.policy, self.metrics, clock=lambda: self.now)

    def run(self, spec: dict[str, Any], generation: int, now: str = NOW) -> Decision:
        self.cluster.apply(KIND, NAME, spec, generation=generation)
        self.now = now
        return self.renderer.reconcile_once()

    @property
    def status(self) -> dict[str, Any]:
        return self.cluster.status(KIND, NAME)

    def condition(self, kind: str) -> dict[str, Any]:
        return self.cluster.condition(KIND, NAME, kind)

    def reloads(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "agent_config_reloads_total", {"result": result}
        )
        return value or 0.0


def test_valid_spec_is_rendered_into_the_configmap_and_ready() -> None:
    h = Harness()
    decision = h.run(VALID, generation=4)
    assert decision.write is not None
    written = h.cluster.configmaps[CONFIGMAP]
    config, generation = parse_config_document(written.data[CONFIG_KEY])
    assert generation == 4, "the pods read the resource's generation back"
    assert config.default_model == "main" and config.model_names == ["main", "local"]
    assert list(config.profiles()) == ["default"], "no Agent resources: the config as it was"
    assert written.annotations[ANNOTATION_GENERATION] == "4"
    assert written.annotations[ANNOTATION_HASH] == config.fingerprint()
    ready, accepted = h.condition("Ready"), h.condition("Accepted")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Applied", 4)
    assert accepted["status"] == "True"
    assert CONFIGMAP in ready["message"] and config.fingerprint() in ready["message"]
    status = h.status
    assert status["observedGeneration"] == 4 and status["appliedGeneration"] == 4
    assert status["configGeneration"] == 4 and status["configHash"] == config.fingerprint()
    assert status["agents"] == ["default"] and status["mcpServers"] == []
    assert h.cluster.events == [("Normal", "Applied", ready["message"])]
    assert h.reloads("applied") == 1
    info = h.metrics.registry.get_sample_value(
        "agent_config_info", {"generation": "4", "hash": config.fingerprint()}
    )
    assert info == 1


def test_the_rendered_document_is_the_one_from_before_agent_resources() -> None:
    """An AgentConfig alone renders exactly what the AgentConfig-only controller rendered: the
    resource, normalised, with its generation (pods of any version read it)."""
    h = Harness()
    h.run(VALID, generation=2)
    document = h.cluster.configmaps[CONFIGMAP].data[CONFIG_KEY]
    before = render_config(ObjectRef(NAME, "agents", 2), AgentConfig.model_validate(VALID))
    assert document == before[CONFIG_KEY]


def test_a_resync_of_an_unchanged_spec_writes_and_emits_nothing() -> None:
    h = Harness()
    h.run(VALID, generation=1)
    before = copy.deepcopy(h.status)
    patches = len(h.cluster.patches)
    h.now = LATER
    h.renderer.reconcile_once()
    assert len(h.cluster.patches) == patches, "an unchanged status is not patched again"
    assert h.cluster.writes == 1 and len(h.cluster.events) == 1
    assert h.status == before
    assert h.reloads("applied") == 1


def test_a_spec_change_with_the_same_content_only_moves_the_generation() -> None:
    """A new generation whose normalised spec is the same config (a reformatted default) keeps
    the hash; the pods report the new generation, as before Agent resources."""
    h = Harness()
    h.run(VALID, generation=1)
    spec = copy.deepcopy(VALID)
    spec["limits"] = {"maxIterations": 8}  # the default
    h.run(spec, generation=2, now=LATER)
    written = h.cluster.configmaps[CONFIGMAP]
    assert written.annotations[ANNOTATION_GENERATION] == "2"
    assert h.status["configGeneration"] == 2 and h.status["appliedGeneration"] == 2


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


INVALID = [
    ("unknown-default-model", _edit("defaultModel", "gpt-5"), "InvalidSpec", "spec.defaultModel",
     "'gpt-5' is not a configured model"),
    ("unknown-fallback", _edit("models.0.fallbacks", ["nope"]), "InvalidSpec",
     "spec.models[0].fallbacks[0]", "fallback 'nope' is not a configured model"),
    ("schema-violation", _edit("models.0.timeoutSeconds", -1), "InvalidSpec",
     "spec.models[0].timeoutSeconds", "greater than 0"),
    ("inlined-key", _edit("models.0.apiKey", {"value": "sk-live"}), "InvalidSpec",
     "spec.models[0].apiKey.value", "Extra inputs are not permitted"),
    ("secret-missing", _edit("models.0.apiKey.secretKeyRef.name", "other"), "SecretNotFound",
     "spec.models[0].apiKey.secretKeyRef", "Secret 'other' does not exist"),
    ("secret-key-missing", _edit("models.0.apiKey.secretKeyRef.key", "anthropic"),
     "SecretKeyNotFound", "spec.models[0].apiKey.secretKeyRef", "has no key 'anthropic'"),
    ("tool-to-metadata-ip", _edit("tools.http.0.url", "http://169.254.169.254/latest"),
     "ToolURLNotAllowed", "spec.tools.http[0].url", "169.254.169.254"),
    ("tool-to-loopback", _edit("tools.http.0.url", "http://127.0.0.1:8080/x"),
     "ToolURLNotAllowed", "spec.tools.http[0].url", "127.0.0.1"),
    ("private-networks", _edit("tools.allowPrivateNetworks", True), "PrivateNetworksNotAllowed",
     "spec.tools.allowPrivateNetworks", "private networks"),
    ("mcp-server-secret-missing",
     _edit("mcpServers", [{"name": "crm", "url": "https://crm.example.com/mcp", "headers": {
         "Authorization": {"secretKeyRef": {"name": "crm-token", "key": "token"}}}}]),
     "SecretNotFound", "spec.mcpServers[0].headers.Authorization.secretKeyRef",
     "Secret 'crm-token' does not exist"),
    ("mcp-server-private", _edit("mcpServers", [{"name": "crm", "url": "http://10.1.2.3/mcp",
                                                 "allowPrivateNetworks": True}]),
     "PrivateNetworksNotAllowed", "spec.mcpServers[0].allowPrivateNetworks", "MCP servers"),
    ("inline-agent-unknown-model", _edit("agents", [{"name": "a", "model": "nope"}]),
     "InvalidSpec", "spec.agents[0].model", "'nope' is not a configured model"),
    ("bad-default-agent-name", _edit("defaultAgent", "Not A Name"), "InvalidSpec",
     "spec.defaultAgent", "is not an agent name"),
    ("default-agent-not-served", _edit("defaultAgent", "ghost"), "UnknownAgent",
     "spec.defaultAgent", "'ghost' is not a served agent (agents: none: the AgentConfig lists"),
    ("default-agent-implicit", _edit("defaultAgent", "default"), "UnknownAgent",
     "spec.defaultAgent", "'default' is not a served agent"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "reason", "path", "text"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_spec_is_refused_and_the_configmap_keeps_the_last_good_config(
    edit: Callable[[dict[str, Any]], None], reason: str, path: str, text: str
) -> None:
    h = Harness()
    h.run(VALID, generation=1)
    good = h.cluster.configmaps[CONFIGMAP]
    first_ready_since = h.condition("Ready")["lastTransitionTime"]
    bad = copy.deepcopy(VALID)
    edit(bad)
    decision = h.run(bad, generation=2, now=LATER)
    assert decision.write is None
    assert h.cluster.configmaps[CONFIGMAP] is good and h.cluster.writes == 1
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("False", reason, 2)
    assert f"{path}: " in ready["message"] and text in ready["message"], ready["message"]
    assert "keep its generation 1" in ready["message"], ready["message"]
    assert ready["lastTransitionTime"] == LATER != first_ready_since
    assert h.condition("Accepted")["status"] == "False"
    assert h.status["observedGeneration"] == 2 and h.status["appliedGeneration"] == 1
    assert h.cluster.events[-1][:2] == ("Warning", reason)
    assert h.reloads("rejected") == 1


def test_secret_not_mounted_into_the_pods_is_refused() -> None:
    h = Harness(policy(mounted_secrets=frozenset({"something-else"})))
    decision = h.run(VALID, generation=1)
    assert decision.write is None
    assert h.condition("Ready")["reason"] == "SecretNotMounted"
    assert CONFIGMAP not in h.cluster.configmaps
    assert "No config has been applied yet" in h.condition("Ready")["message"]


def test_tool_hosts_outside_the_allow_list_are_refused() -> None:
    h = Harness(policy(allowed_tool_hosts=("*.svc.cluster.local", "api.example.org")))
    h.run(VALID, generation=1)
    message = h.condition("Ready")["message"]
    assert h.condition("Ready")["reason"] == "ToolURLNotAllowed"
    assert "'weather.example.com' is not in the allowed tool hosts" in message
    ok = copy.deepcopy(VALID)
    ok["tools"]["http"][0]["url"] = "https://api.example.org/weather"
    assert h.run(ok, generation=2).write is not None
    assert h.condition("Ready")["status"] == "True"


def test_private_networks_allowed_by_the_operator() -> None:
    spec = copy.deepcopy(VALID)
    spec["tools"]["allowPrivateNetworks"] = True
    spec["tools"]["http"][0]["url"] = "http://10.0.0.7:8080/tool"
    spec["mcpServers"] = [
        {"name": "crm", "url": "http://10.0.0.8/mcp", "allowPrivateNetworks": True}
    ]
    h = Harness(policy(allow_private_networks=True))
    assert h.run(spec, generation=1).write is not None
    assert h.condition("Ready")["status"] == "True"


def test_a_fixed_spec_becomes_ready_again() -> None:
    h = Harness()
    bad = copy.deepcopy(VALID)
    bad["defaultModel"] = "missing"
    h.run(bad, generation=1)
    assert h.condition("Ready")["status"] == "False"
    h.run(VALID, generation=2, now=LATER)
    ready = h.condition("Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("True", LATER)
    assert [e[:2] for e in h.cluster.events] == [("Warning", "InvalidSpec"), ("Normal", "Applied")]


def test_a_configmap_edited_by_hand_is_put_back() -> None:
    h = Harness()
    h.run(VALID, generation=1)
    state = h.cluster.configmaps[CONFIGMAP]
    h.cluster.configmaps[CONFIGMAP] = ConfigMapState(
        {CONFIG_KEY: "defaultModel: x"}, dict(state.annotations)
    )
    decision = h.run(VALID, generation=1, now=LATER)
    assert decision.write is not None and h.cluster.configmaps[CONFIGMAP] == state
    assert h.reloads("applied") == 1, "the same config put back is no new one"


def test_a_configmap_of_the_agentconfig_only_controller_is_taken_over() -> None:
    """Upgrading the controller: the ConfigMap it finds has no resources annotation; all of it
    is the AgentConfig's last good spec, kept while the AgentConfig is invalid."""
    old = Harness()
    old.run(VALID, generation=3)
    legacy = old.cluster.configmaps[CONFIGMAP]
    kept = {k: v for k, v in legacy.annotations.items() if k != "agent-service.dev/resources"}
    h = Harness()
    h.cluster.configmaps[CONFIGMAP] = ConfigMapState(dict(legacy.data), kept)
    bad = copy.deepcopy(VALID)
    bad["defaultModel"] = "missing"
    decision = h.run(bad, generation=4)
    assert decision.write is not None, "the annotation recording its origin is added"
    assert decision.write.data == legacy.data, "the pods' config does not change"
    assert "keep its generation 3" in h.condition("Ready")["message"]
    assert h.run(VALID, generation=5).write is not None
    assert h.cluster.configmaps[CONFIGMAP].annotations[ANNOTATION_GENERATION] == "5"


def test_a_missing_agentconfig_renders_nothing() -> None:
    h = Harness()
    assert h.renderer.reconcile_once().write is None
    assert h.cluster.configmaps == {} and h.cluster.patches == []


def test_registry_handles_the_releases_agentconfig_and_its_agents_and_mcp_servers() -> None:
    renderer = Renderer(FakeCluster(), policy(), Metrics(CollectorRegistry()))
    registry = build_registry(NAME, renderer, 60)
    changing = list(registry._changing.get_all_handlers())
    timers = list(registry._spawning.get_all_handlers())
    watching = list(registry._watching.get_all_handlers())
    causes = {(str(h.reason) if h.reason else None, bool(h.initial)) for h in changing}
    assert causes == {("create", False), ("update", False), (None, True)}, causes
    assert [t.interval for t in timers] == [60], "one resync timer"
    for handler in [*changing, *timers]:
        assert handler.when is not None
        assert handler.when(name=NAME) and not handler.when(name="other-release")
        assert handler.selector is not None and handler.selector.any_name == "agentconfigs"
    watched = {(h.selector.any_name if h.selector else None, h.param) for h in watching}
    assert watched == {("agents", "Agent"), ("mcpservers", "MCPServer")}
    assert all(h.selector and h.selector.group == "agent-service.dev" for h in watching)
