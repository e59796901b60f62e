"""The controller's handler, called directly: what it writes to the ConfigMap and the status.

A valid spec is rendered into the ConfigMap the pods read and gets Ready=True; every kind of
invalid spec gets Ready=False with a precise reason and message, and the ConfigMap keeps the
last good config. Kubernetes is a fake here (the real API cannot run on this machine).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent_service.agentconfig.load import parse_config_document
from agent_service.agentconfig.render import CONFIG_KEY
from agent_service.controller.handlers import build_registry, handle
from agent_service.controller.reconcile import (
    ANNOTATION_GENERATION,
    ANNOTATION_HASH,
    Outcome,
    Policy,
)
from agent_service.observability.metrics import Metrics
from tests.controller.fakes import FakeCluster

CONFIGMAP = "demo-config"
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


class Harness:
    def __init__(self, policy: Policy | None = None) -> None:
        self.cluster = FakeCluster(secrets={"llm-keys": {"openai"}})
        self.policy = policy or Policy(configmap=CONFIGMAP, mounted_secrets=frozenset({"llm-keys"}))
        self.metrics = Metrics(CollectorRegistry())
        self.status: dict[str, Any] = {}

    def run(self, spec: dict[str, Any], generation: int, now: str = NOW) -> Outcome:
        patch: dict[str, Any] = {}
        outcome = handle(
            name="demo",
            namespace="agents",
            meta={"generation": generation, "uid": "u-1"},
            spec=spec,
            status=self.status,
            patch_status=patch,
            cluster=self.cluster,
            policy=self.policy,
            metrics=self.metrics,
            now=now,
        )
        self.status = {**self.status, **patch}
        return outcome

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == kind)

    def reloads(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "agent_config_reloads_total", {"result": result}
        )
        return value or 0.0


def test_valid_spec_is_rendered_into_the_configmap_and_ready() -> None:
    h = Harness()
    outcome = h.run(VALID, generation=4)
    assert outcome.accepted and outcome.wrote_configmap
    written = h.cluster.configmaps[CONFIGMAP]
    config, generation = parse_config_document(written.data[CONFIG_KEY])
    assert generation == 4, "the pods read the resource's generation back"
    assert config.default_model == "main" and config.model_names == ["main", "local"]
    assert written.annotations[ANNOTATION_GENERATION] == "4"
    assert written.annotations[ANNOTATION_HASH] == config.fingerprint()
    ready, accepted = h.condition("Ready"), h.condition("Accepted")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Applied", 4)
    assert accepted["status"] == "True"
    assert CONFIGMAP in ready["message"] and config.fingerprint() in ready["message"]
    assert h.status["observedGeneration"] == 4 and h.status["appliedGeneration"] == 4
    assert h.status["configHash"] == config.fingerprint()
    assert h.cluster.events == [("Normal", "Applied", outcome.message)]
    assert h.reloads("applied") == 1
    info = h.metrics.registry.get_sample_value(
        "agent_config_info", {"generation": "4", "hash": config.fingerprint()}
    )
    assert info == 1


def test_a_resync_of_an_unchanged_spec_writes_and_emits_nothing() -> None:
    h = Harness()
    h.run(VALID, generation=1)
    before = copy.deepcopy(h.status)
    patch: dict[str, Any] = {}
    handle(
        name="demo",
        namespace="agents",
        meta={"generation": 1},
        spec=VALID,
        status=h.status,
        patch_status=patch,
        cluster=h.cluster,
        policy=h.policy,
        metrics=h.metrics,
        now=LATER,
    )
    assert patch == {}, "an unchanged status is not patched again"
    assert h.cluster.writes == 1 and len(h.cluster.events) == 1
    assert h.status == before
    assert h.reloads("applied") == 1


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


_DELETE = object()

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
    outcome = h.run(bad, generation=2, now=LATER)
    assert not outcome.accepted
    assert h.cluster.configmaps[CONFIGMAP] is good and h.cluster.writes == 1
    ready = h.condition("Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("False", reason, 2)
    assert f"{path}: " in ready["message"] and text in ready["message"], ready["message"]
    assert "keep generation 1" in ready["message"]
    assert ready["lastTransitionTime"] == LATER != first_ready_since
    assert h.condition("Accepted")["status"] == "False"
    assert h.status["observedGeneration"] == 2 and h.status["appliedGeneration"] == 1
    assert h.cluster.events[-1][:2] == ("Warning", reason)
    assert h.reloads("rejected") == 1


def test_secret_not_mounted_into_the_pods_is_refused() -> None:
    h = Harness(Policy(configmap=CONFIGMAP, mounted_secrets=frozenset({"something-else"})))
    outcome = h.run(VALID, generation=1)
    assert (outcome.accepted, outcome.reason) == (False, "SecretNotMounted")
    assert CONFIGMAP not in h.cluster.configmaps
    assert "No config has been applied yet" in h.condition("Ready")["message"]


def test_tool_hosts_outside_the_allow_list_are_refused() -> None:
    policy = Policy(
        configmap=CONFIGMAP,
        mounted_secrets=frozenset({"llm-keys"}),
        allowed_tool_hosts=("*.svc.cluster.local", "api.example.org"),
    )
    h = Harness(policy)
    outcome = h.run(VALID, generation=1)
    assert outcome.reason == "ToolURLNotAllowed"
    assert "'weather.example.com' is not in the allowed tool hosts" in outcome.message
    ok = copy.deepcopy(VALID)
    ok["tools"]["http"][0]["url"] = "https://api.example.org/weather"
    assert h.run(ok, generation=2).accepted


def test_private_networks_allowed_by_the_operator() -> None:
    policy = Policy(
        configmap=CONFIGMAP, mounted_secrets=frozenset({"llm-keys"}), allow_private_networks=True
    )
    spec = copy.deepcopy(VALID)
    spec["tools"]["allowPrivateNetworks"] = True
    spec["tools"]["http"][0]["url"] = "http://10.0.0.7:8080/tool"
    assert Harness(policy).run(spec, generation=1).accepted


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
    h.cluster.configmaps[CONFIGMAP] = type(state)({CONFIG_KEY: "defaultModel: x"}, {})
    outcome = h.run(VALID, generation=1, now=LATER)
    assert outcome.wrote_configmap and h.cluster.configmaps[CONFIGMAP] == state


def test_registry_handles_only_this_releases_agentconfig() -> None:
    registry = build_registry(
        "demo", FakeCluster(), Policy(configmap=CONFIGMAP), Metrics(CollectorRegistry()), 60
    )
    changing = list(registry._changing.get_all_handlers())
    timers = list(registry._spawning.get_all_handlers())
    causes = {(str(h.reason) if h.reason else None, bool(h.initial)) for h in changing}
    assert causes == {("create", False), ("update", False), (None, True)}, causes
    assert [t.interval for t in timers] == [60], "one resync timer"
    for handler in [*changing, *timers]:
        assert handler.when is not None
        assert handler.when(name="demo") and not handler.when(name="other-release")
