"""values.schema.json rejects typos and bad values; the templates reject contradictory values;
every value is documented and the chart README's parameter table is current."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest
import yaml

from tests.chart import manifests, values_doc

_KEY_IN_SECRET = {"apiKey": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}}}
_HASH = "095060cb7f1ecf0c6d222766920661ab452e3c4fb7621cf161144bbb64dfd65b"
_MODEL = {"defaultModel": "m", "models": [{"name": "m", "model": "openai/m"}]}
_EXTERNAL = {"url": "redis://r:6379/0"}
_SENTINEL = _EXTERNAL | {"sentinel": {"nodes": ["s-0:26379"]}}
_CA = {"tls": {"caConfigMap": "company-ca"}}
_ESO_REDIS = {"secretStoreRef": {"name": "vault"}, "redisPassword": {"key": "redis"}}


def _render_error(values: dict[str, Any]) -> str:
    with pytest.raises((helm_python.HelmValuesError, helm_python.HelmRenderError)) as info:
        manifests.render_raw(values)
    return str(info.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "additional properties 'replicaCount' not allowed"),
        ({"api": {"replicas": 2}}, "additional properties 'replicas' not allowed"),
        ({"worker": {"autoscaling": {"mode": "KEDA"}}}, "value must be one of"),
        ({"api": {"replicaCount": -1}}, "minimum"),
        ({"worker": {"autoscaling": {"maxReplicas": 0}}}, "minimum"),
        ({"image": {"tag": "latest"}}, "/image/tag"),
        ({"image": {"pullPolicy": "Sometimes"}}, "value must be one of"),
        ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
        ({"containerSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"prometheusRule": {"overrides": {"X": {"for": "five minutes"}}}}, "/for"),
        ({"prometheusRule": {"overrides": {"X": {"severity": "page"}}}}, "value must be one of"),
        ({"prometheusRule": {"overrides": {"X": {"threshold": 3}}}}, "threshold"),
        ({"llm": {"apiKeys": {"OPENAI-KEY": "x"}}}, "'OPENAI-KEY' does not match"),
        ({"networkPolicy": {"llmEgress": {"cidrs": ["everywhere"]}}}, "cidrs"),
        ({"externalRedis": {"url": "redis://:secret@host:6379/0"}}, "/externalRedis/url"),
        ({"externalRedis": {"url": "http://host"}}, "/externalRedis/url"),
        ({"serviceMonitor": {"labels": {"release": 1}}}, "/serviceMonitor/labels/release"),
        ({"otelCollector": {"exporters": []}}, "/otelCollector/exporters"),
        ({"otelCollector": {"exporters": [{"name": "OTLP"}]}}, "does not match"),
        ({"otelCollector": {"exporters": [{"name": "debug", "settings": {}}]}}, "'settings'"),
        ({"otelCollector": {"image": {"tag": "latest"}}}, "/otelCollector/image/tag"),
        ({"otelCollector": {"memoryLimiter": {"limitPercentage": 120}}}, "limitPercentage"),
        ({"otelCollector": {"batch": {"timeout": "five"}}}, "/otelCollector/batch/timeout"),
        ({"configSource": "crd"}, "value must be one of"),
        ({"agentConfigSecrets": ["Not_A_Secret"]}, "/agentConfigSecrets/0"),
        ({"agentConfigSecrets": ["keys", "keys"]}, "/agentConfigSecrets"),
        ({"agentConfigResource": {"create": "yes"}}, "/agentConfigResource/create"),
        ({"configReload": {"restartOnChange": "yes"}}, "/configReload/restartOnChange"),
        ({"configReload": {"interval": 5}}, "'interval'"),
        ({"controller": {"replicaCount": 2}}, "'replicaCount'"),
        ({"controller": {"resyncSeconds": 0}}, "minimum"),
        ({"controller": {"logLevel": "TRACE"}}, "value must be one of"),
        ({"controller": {"image": {"tag": "latest"}}}, "/controller/image/tag"),
        ({"controller": {"allowedToolHosts": ["a.com,b.com"]}}, "/controller/allowedToolHosts/0"),
        ({"networkPolicy": {"kubeApiEgress": {"ports": []}}}, "/networkPolicy/kubeApiEgress"),
        ({"clientAuth": {"enabled": "yes"}}, "/clientAuth/enabled"),
        ({"clientAuth": {"keys": [{"tenant": "a", "sha256": "abc"}]}}, "/clientAuth/keys/0/sha256"),
        ({"clientAuth": {"keys": [{"tenant": "a", "sha256": _HASH.upper()}]}}, "/keys/0/sha256"),
        ({"clientAuth": {"keys": [{"tenant": "Team A", "sha256": _HASH}]}}, "/keys/0/tenant"),
        ({"clientAuth": {"keys": [{"tenant": "a", "key": "ak_0123456789abcdef"}]}}, "'key'"),
        ({"clientAuth": {"existingSecret": "Keys_Secret"}}, "/clientAuth/existingSecret"),
        ({"clientAuth": {"existingSecretKey": ""}}, "/clientAuth/existingSecretKey"),
        ({"metrics": {"auth": {"enabled": True, "token": "x"}}}, "'token'"),
        ({"webhooks": {"timeoutSeconds": 0}}, "/webhooks/timeoutSeconds"),
        ({"webhooks": {"maxAttempts": 0}}, "/webhooks/maxAttempts"),
        ({"webhooks": {"allowedHosts": ["a.com,b.com"]}}, "/webhooks/allowedHosts/0"),
        ({"webhooks": {"secret": "s3cret"}}, "'secret'"),
        ({"networkPolicy": {"webhookEgress": {"cidrs": ["anywhere"]}}}, "/webhookEgress/cidrs/0"),
        ({"tests": {"apiKeySecret": "Not_A_Secret"}}, "/tests/apiKeySecret"),
        ({"redis": {"maxmemory": "400mb"}}, "/redis/maxmemory"),
        ({"redis": {"maxmemoryPercent": 100}}, "/redis/maxmemoryPercent"),
        ({"api": {"terminationGracePeriodSeconds": 45}}, "'terminationGracePeriodSeconds'"),
        ({"api": {"drainMarginSeconds": -1}}, "/api/drainMarginSeconds"),
        ({"externalRedis": {"sentinel": {"nodes": ["sentinel-0"]}}}, "/sentinel/nodes/0"),
        ({"externalRedis": {"tls": {"caSecret": "Bad_Name"}}}, "/tls/caSecret"),
        ({"externalSecrets": {"secretStoreRef": {"kind": "Vault"}}}, "value must be one of"),
        ({"externalSecrets": {"testKey": {"path": "x"}}}, "'path'"),
        ({"worker": {"podDeletionCost": {"enabled": "yes"}}}, "/podDeletionCost/enabled"),
        ({"tasks": {"ttlSeconds": 10}}, "/tasks/ttlSeconds"),
        ({"crds": {"install": "yes"}}, "/crds/install"),
        ({"secretGenerator": {"backoffLimit": 50}}, "/secretGenerator/backoffLimit"),
    ],
)
def test_schema_rejects(values: dict[str, Any], message: str) -> None:
    error = _render_error(values)
    assert "schema" in error and message in error, error


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"externalRedis": {"url": "redis://r:6379/0"}}, "use one Redis"),
        ({"redis": {"enabled": False}}, "needs externalRedis.url"),
        ({"redis": {"auth": {"password": "a", "existingSecret": "b"}}}, "both set"),
        ({"llm": {"apiKeys": {"K": "v"}, "existingSecret": "s"}}, "both set"),
        ({"llmSimulator": {"enabled": False}}, "agentConfig is empty"),
        ({"agentConfig": {"defaultModel": "m"}}, "agentConfig.models is empty"),
        (
            {"agentConfig": {"defaultModel": "m", "models": [{"name": "m"}]}, "worker": {}}
            | {"worker": {"terminationGracePeriodSeconds": 100}},
            "must exceed",
        ),
        (
            {
                "agentConfig": {
                    "defaultModel": "m",
                    "models": [{"name": "m"}],
                    "limits": {"runTimeoutSeconds": 600},
                }
            },
            "terminationGracePeriodSeconds (180) must exceed",
        ),
        ({"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}, "above"),
        ({"worker": {"autoscaling": {"mode": "hpa", "minReplicas": 0}}}, "cannot scale to zero"),
        (
            {
                "worker": {"autoscaling": {"mode": "keda", "maxReplicas": 1}},
                "apiVersions": ["keda.sh/v1alpha1"],
            },
            "fallback.replicas (2) is above maxReplicas",
        ),
        ({"api": {"pdb": {"minAvailable": 1, "maxUnavailable": 1}}}, "both set"),
        (
            {"httpRoute": {"enabled": True}, "apiVersions": ["gateway.networking.k8s.io/v1"]},
            "parentRefs",
        ),
        ({"otel": {"enabled": True}}, "needs otel.endpoint (or otelCollector.enabled=true"),
        (
            {
                "otelCollector": {
                    "enabled": True,
                    "exporters": [{"name": "debug"}, {"name": "debug"}],
                }
            },
            "debug is listed twice",
        ),
        (
            {"otelCollector": {"enabled": True, "memoryLimiter": {"spikeLimitPercentage": 80}}},
            "spikeLimitPercentage (80) must be below limitPercentage (80)",
        ),
        (
            {"strictCapabilities": True, "serviceMonitor": {"enabled": True}},
            "serviceMonitor.enabled (needs monitoring.coreos.com/v1)",
        ),
        (
            {"prometheusRule": {"enabled": True, "overrides": {"NoSuchAlert": {"for": "5m"}}}}
            | {"apiVersions": ["monitoring.coreos.com/v1"]},
            "prometheusRule.overrides.NoSuchAlert",
        ),
        (
            {"prometheusRule": {"enabled": True, "disabled": ["NoSuchAlert"]}}
            | {"apiVersions": ["monitoring.coreos.com/v1"]},
            "no rule named NoSuchAlert",
        ),
        ({"redis": {"auth": {"enabled": False, "password": "x"}}}, "redis.auth.enabled=false"),
        ({"configSource": "agentconfig"}, "needs the AgentConfig CRD: set crds.install=true"),
        (
            {"configSource": "agentconfig", "crds": {"install": True}},
            "agentConfig, which is empty",
        ),
        (
            {"agentConfig": {"defaultModel": "m", "models": [{"name": "m"} | _KEY_IN_SECRET]}},
            "references the Secret llm-keys (secretKeyRef) but agentConfigSecrets does not list",
        ),
        (
            {
                "configSource": "agentconfig",
                "crds": {"install": True},
                "agentConfigSecrets": ["other"],
                "agentConfig": {"defaultModel": "m", "models": [{"name": "m"} | _KEY_IN_SECRET]},
            },
            "references the Secret llm-keys",
        ),
        (
            {"clientAuth": {"existingSecret": "k", "keys": [{"tenant": "a", "sha256": _HASH}]}},
            "clientAuth.keys and clientAuth.existingSecret are both set",
        ),
        (
            {"clientAuth": {"keys": [{"tenant": t, "sha256": _HASH} for t in ("a", "b")]}},
            f"the sha256 {_HASH} is listed twice",
        ),
        # The bundled Redis refuses writes before the kernel kills it; its AOF fits its volume.
        ({"redis": {"maxmemory": "512Mi"}}, "must stay below redis.resources.limits.memory"),
        ({"redis": {"resources": {"limits": {"memory": None}}}}, "limits.memory must be set"),
        ({"redis": {"maxmemory": "400Mi"}}, "must hold 3x redis.maxmemory"),
        ({"redis": {"resources": {"limits": {"memory": "512m"}}}}, "is not a memory quantity"),
        ({"redis": {"maxmemory": "0.5Mi"}}, "is below 1Mi"),
        # External Redis: Sentinel and TLS.
        (
            {"redis": {"enabled": False}, "externalRedis": _SENTINEL},
            "needs externalRedis.sentinel.masterName",
        ),
        (
            {"externalRedis": {"sentinel": {"nodes": ["s:26379"], "masterName": "m"}}},
            "Sentinel is for an external Redis",
        ),
        (
            {"redis": {"enabled": False}, "externalRedis": _EXTERNAL | _CA},
            "the Redis is not reached over TLS: use a rediss://",
        ),
        (
            {"redis": {"enabled": False}}
            | {
                "externalRedis": {"url": "rediss://r:6380/0", "tls": _CA["tls"] | {"caSecret": "x"}}
            },
            "caSecret and externalRedis.tls.caConfigMap are both set",
        ),
        # Secrets: one source each.
        (
            {"redis": {"auth": {"existingSecret": "mine"}}, "externalSecrets": _ESO_REDIS},
            "externalSecrets.redisPassword.key is set, and so is",
        ),
        (
            {"externalSecrets": {"redisPassword": {"key": "r"}}},
            "secretStoreRef.name is empty",
        ),
        # Autoscaling targets fit the slots.
        (
            {"worker": {"concurrency": 8, "autoscaling": {"mode": "keda"}}},
            "target (100 runs per pod: keda.listLength) is above worker.concurrency (8)",
        ),
        (
            {
                "worker": {
                    "concurrency": 8,
                    "autoscaling": {"mode": "hpa", "hpa": {"averageValue": "9"}},
                }
            },
            "(9 runs per pod: hpa.averageValue) is above worker.concurrency (8)",
        ),
        (
            {"metrics": {"auth": {"enabled": True}}}
            | {"serviceMonitor": {"authorization": {"type": "Bearer"}}},
            "metrics.auth.enabled and serviceMonitor.authorization are both set",
        ),
        (
            {"webhooks": {"enabled": True, "timeoutSeconds": 60}},
            "webhooks.leaseSeconds (60) must exceed webhooks.timeoutSeconds (60)",
        ),
    ],
)
def test_contradictions_fail(values: dict[str, Any], message: str) -> None:
    error = _render_error(values)
    assert message in error, error


@pytest.mark.parametrize(
    "values",
    [
        {"clientAuth": {"existingSecret": "k"}, "tests": {"apiKeySecret": "ci-key"}},
        {"clientAuth": {"existingSecret": "k"}, "tests": {"enabled": False}},
        {"clientAuth": {"existingSecret": "k", "enabled": False}},
        {"clientAuth": {"existingSecret": "k"}, "agentConfig": _MODEL},
        {"webhooks": {"enabled": True, "timeoutSeconds": 60, "leaseSeconds": 90}},
        {"redis": {"maxmemory": "300Mi"}},
        {"redis": {"maxmemory": "400Mi", "persistence": {"size": "2Gi"}}},
        {"redis": {"maxmemory": "400Mi", "persistence": {"enabled": False}}},
        {
            "redis": {"enabled": False},
            "externalRedis": _EXTERNAL | {"sentinel": {"nodes": ["s-0:26379"], "masterName": "m"}},
        },
        {"redis": {"enabled": False}, "externalRedis": {"url": "rediss://r:6380/0"} | _CA},
        {"externalSecrets": _ESO_REDIS},
        {"worker": {"concurrency": 8, "autoscaling": {"mode": "keda", "keda": {"listLength": 8}}}},
        {"configSource": "agentconfig", "agentConfig": _MODEL, "crds": {"install": True}},
        {
            "configSource": "agentconfig",
            "agentConfig": _MODEL,
            "apiVersions": ["agent-service.dev/v1alpha1"],
        },
    ],
)
def test_the_way_out_of_a_contradiction_renders(values: dict[str, Any]) -> None:
    """What the messages above suggest works."""
    assert manifests.render(values)


def test_every_profile_matches_the_schema() -> None:
    for profile in manifests.profiles():
        manifests.chart().validate_schema(
            manifests.deep_merge(manifests.chart().values, manifests.profile_values(profile))
        )


def test_missing_capability_is_skipped_and_reported() -> None:
    """Without the API (and without strictCapabilities), CRD-backed objects are left out, the
    worker keeps a replica count, and NOTES.txt says why."""
    values = {"serviceMonitor": {"enabled": True}, "worker": {"autoscaling": {"mode": "keda"}}}
    raw = manifests.render_raw(values)
    rendered = manifests.render(values)
    assert not manifests.find(rendered, "ServiceMonitor")
    assert not manifests.find(rendered, "ScaledObject")
    worker = manifests.one(rendered, "Deployment", "agent-service-worker")
    assert worker["spec"]["replicas"] == 1
    notes = raw["agent-service/templates/NOTES.txt"]
    assert "serviceMonitor.enabled (needs monitoring.coreos.com/v1)" in notes
    assert "worker.autoscaling.mode=keda (needs keda.sh/v1alpha1)" in notes


def test_listed_secrets_satisfy_the_secret_check() -> None:
    """The refusal above is about the list: with the Secret listed, the same config renders."""
    model = {"name": "m", "model": "openai/m"} | _KEY_IN_SECRET
    for source in ("values", "agentconfig"):
        values = {
            "configSource": source,
            "crds": {"install": True},
            "agentConfigSecrets": ["llm-keys"],
            "agentConfig": {"defaultModel": "m", "models": [model]},
        }
        assert manifests.render(values)


def test_notes_print_port_forward() -> None:
    notes = manifests.render_raw({})["agent-service/templates/NOTES.txt"]
    assert "kubectl -n agent-service port-forward svc/agent-service-api 8000:8000" in notes
    assert "WARNING" not in notes


def test_every_value_is_documented() -> None:
    text = values_doc.VALUES.read_text(encoding="utf-8")
    values = yaml.safe_load(text)
    params = values_doc.parse_params(text)
    assert not values_doc.undocumented(values, params), "add `## @param` comments"
    stale = []
    for param in params:
        try:
            values_doc.lookup(values, param.path)
        except KeyError:
            stale.append(param.path)
    assert not stale, f"`## @param` for values that do not exist: {stale}"
    paths = [p.path for p in params]
    assert len(paths) == len(set(paths)), "a value is documented twice"


def test_readme_parameter_table_is_current() -> None:
    readme = values_doc.README.read_text(encoding="utf-8")
    wanted = values_doc.render_readme(readme, values_doc.VALUES.read_text(encoding="utf-8"))
    assert readme == wanted, "stale parameter table: run scripts/sync-chart-assets.sh"


def test_schema_closes_every_object() -> None:
    """Every object schema with declared properties rejects unknown keys (a typo must fail),
    except the free-form ones listed here."""
    open_objects = {"agentConfig"}
    schema = manifests.chart().schema
    assert schema is not None
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, f"{path} is open"
                assert set(node.get("required", [])) <= set(node["properties"]), path
            for key, value in node.items():
                walk(value, f"{path}/{key}" if key not in {"properties"} else path)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk({k: v for k, v in schema.items() if k != "properties"}, "")
    for key, value in schema["properties"].items():
        if key not in open_objects:
            walk(value, key)
