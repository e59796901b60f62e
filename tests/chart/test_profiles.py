"""What each value profile is for shows in what it renders: the production profile's autoscalers,
monitoring and network policy, the hpa profile's External-metric HPA, the scale-to-zero KEDA
profile, and the default and minimal profiles' small footprint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from agent_service.agentconfig.load import parse_agent_config
from tests.chart import manifests, secret_hook
from tests.chart.manifests import Manifest
from tests.chart.promtool import run_rule_test

API = "agent-service-api"
WORKER = "agent-service-worker"


def _kinds(rendered: list[Manifest]) -> set[str]:
    return {m.kind for m in rendered}


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def _env(obj: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(obj)["env"]}


def test_production_profile(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["production"]
    values = manifests.profile_values("production")

    # api: HPA on CPU, no replicas on its Deployment.
    hpa = manifests.one(rendered, "HorizontalPodAutoscaler", API)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": API,
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 65}
    assert "replicas" not in manifests.one(rendered, "Deployment", API)["spec"]

    # worker: KEDA's redis-sentinel scaler on the queue list + the in-flight hash, no replicas.
    so = manifests.one(rendered, "ScaledObject", WORKER)["spec"]
    assert so["scaleTargetRef"]["name"] == WORKER
    assert (so["minReplicaCount"], so["maxReplicaCount"]) == (2, 30)
    assert so["fallback"] == {"failureThreshold": 3, "replicas": 4}
    backlog, inflight = so["triggers"]
    assert backlog["type"] == inflight["type"] == "redis-sentinel"
    assert backlog["name"] == "backlog"
    meta = backlog["metadata"]
    assert meta["listName"] == "agent"
    assert meta["listLength"] == "100"
    assert meta["addressesFromEnv"] == "AGENT_REDIS_SENTINELS"
    assert meta["sentinelMaster"] == "mymaster"
    assert meta["databaseIndex"] == "2" and meta["enableTLS"] == "true"
    assert all(isinstance(v, str) for t in so["triggers"] for v in t["metadata"].values())
    assert inflight["metadata"]["listName"] == "unacked"
    assert so["advanced"]["scalingModifiers"]["formula"] == "backlog + inflight"
    behavior = so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    # KEDA reads the passwords and the company CA from the Secret and ConfigMap the pods mount;
    # TLS itself is on in the metadata (KEDA refuses `tls` in both places).
    auth = manifests.one(rendered, "TriggerAuthentication", "agent-service-redis-auth")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "agent-service-redis", "key": "password"},
        {
            "parameter": "sentinelPassword",
            "name": "agent-service-redis",
            "key": "sentinel-password",
        },
    ]
    assert auth["spec"]["configMapTargetRef"] == [
        {"parameter": "ca", "name": "company-ca", "key": "ca.crt"}
    ]
    assert backlog["authenticationRef"] == {"name": "agent-service-redis-auth"}
    worker = manifests.one(rendered, "Deployment", WORKER)
    assert "replicas" not in worker["spec"]
    env = _env(worker)
    assert env["AGENT_REDIS_URL"] == "rediss://mymaster:6380/2", "no password in the URL"
    assert env["AGENT_REDIS_SENTINELS"] == ",".join(values["externalRedis"]["sentinel"]["nodes"])
    assert env["AGENT_REDIS_SENTINEL_MASTER"] == "mymaster"
    assert env["AGENT_REDIS_PASSWORD_FILE"] == "/var/run/secrets/agent-service-redis/password"
    assert env["AGENT_REDIS_SENTINEL_PASSWORD_FILE"] == (
        "/var/run/secrets/agent-service-redis/sentinel-password"
    )
    assert env["AGENT_REDIS_TLS_CA_FILE"] == "/var/run/secrets/agent-service-redis-ca/ca.crt"
    assert "AGENT_REDIS_ADDRESS" not in env and "AGENT_REDIS_PASSWORD" not in env
    volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
    assert volumes["redis-ca"]["configMap"] == {
        "name": "company-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    assert [s["secret"]["items"] for s in volumes["redis-credentials"]["projected"]["sources"]] == [
        [{"key": "password", "path": "password"}],
        [{"key": "sentinel-password", "path": "sentinel-password"}],
    ]
    # Busy workers are removed last: their pod-deletion cost, kept by the workers themselves.
    assert env["AGENT_WORKER_POD_DELETION_COST"] == "true"
    assert env["AGENT_WORKER_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert _container(worker)["envFrom"] == [{"secretRef": {"name": "agent-service-llm-keys"}}]

    # monitoring: ServiceMonitors and rules carry the kube-prometheus-stack release label.
    monitors = manifests.find(rendered, "ServiceMonitor")
    assert {m.name for m in monitors} == {API, WORKER, "agent-service-postgres-exporter"}
    for m in monitors:
        assert m.obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert m.obj["spec"]["endpoints"][0]["port"] == "metrics"
        assert m.obj["spec"]["endpoints"][0]["interval"] == "15s"
    if list((manifests.REPO / "alerts").glob("*.yaml")):
        (rule,) = manifests.find(rendered, "PrometheusRule")
        assert rule.obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dashboards = [
        m for m in manifests.find(rendered, "ConfigMap") if m.name != "agent-service-config"
    ]
    assert len(dashboards) == len(list((manifests.REPO / "dashboards").glob("*.json")))

    # NetworkPolicy, PDBs, exposure; no in-release Redis or simulator.
    policies = {m.name for m in manifests.find(rendered, "NetworkPolicy")}
    assert policies == {API, WORKER, "agent-service-postgres-exporter"}
    pdbs = {m.name: m.obj["spec"] for m in manifests.find(rendered, "PodDisruptionBudget")}
    assert pdbs[API]["minAvailable"] == 2 and pdbs[WORKER]["maxUnavailable"] == 1
    ingress = manifests.one(rendered, "Ingress", API)
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    )
    assert not manifests.find(rendered, "StatefulSet")
    assert not [m for m in manifests.find(rendered, "Deployment") if "simulator" in m.name]
    assert values["image"]["digest"] in _container(worker)["image"]


def test_production_network_policy(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["production"]
    for name in (API, WORKER):
        spec = manifests.one(rendered, "NetworkPolicy", name)["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        egress = spec["egress"]
        ports = {(p["port"], p.get("protocol", "TCP")) for rule in egress for p in rule["ports"]}
        assert {
            (53, "UDP"),
            (53, "TCP"),
            (6380, "TCP"),
            (443, "TCP"),
            (4317, "TCP"),
            (4318, "TCP"),
        } <= ports
        metrics = [r for r in spec["ingress"] if r["ports"][0]["port"] == "metrics"]
        assert metrics[0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
            "monitoring"
        ]
    api_http = [
        r
        for r in manifests.one(rendered, "NetworkPolicy", API)["spec"]["ingress"]
        if r["ports"][0]["port"] == "http"
    ]
    peers = api_http[0]["from"]
    assert {"podSelector": {}} in peers
    assert any(
        p.get("namespaceSelector", {}).get("matchExpressions", [{}])[0].get("values")
        == ["ingress-nginx"]
        for p in peers
    )


def test_redis_network_policy_admits_keda(rendered_profiles: dict[str, list[Manifest]]) -> None:
    values = manifests.deep_merge(
        manifests.profile_values("keda-scale-to-zero"), {"networkPolicy": {"enabled": True}}
    )
    rendered = manifests.render(values)
    spec = manifests.one(rendered, "NetworkPolicy", "agent-service-redis")["spec"]
    peers = spec["ingress"][0]["from"]
    assert peers[0]["podSelector"]["matchExpressions"][0]["values"] == ["api", "worker"]
    assert peers[1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["keda"]
    assert spec["egress"] == []
    simulator = manifests.one(rendered, "NetworkPolicy", "agent-service-simulator")["spec"]
    assert simulator["egress"] == []


def test_hpa_profile(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["hpa"]
    hpa = manifests.one(rendered, "HorizontalPodAutoscaler", WORKER)["spec"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"] == {
        "name": "agent_queue_depth_plus_in_progress",
        "selector": {"matchLabels": {"queue": "agent"}},
    }
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "20"}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert "replicas" not in manifests.one(rendered, "Deployment", WORKER)["spec"]
    assert not manifests.find(rendered, "ScaledObject")
    api_hpa = manifests.one(rendered, "HorizontalPodAutoscaler", API)["spec"]
    assert [m["resource"]["name"] for m in api_hpa["metrics"]] == ["cpu", "memory"]
    # The Redis exporter and its ServiceMonitor.
    redis = manifests.one(rendered, "StatefulSet", "agent-service-redis")["spec"]["template"][
        "spec"
    ]
    assert [c["name"] for c in redis["containers"]] == ["redis", "metrics"]
    assert {m.name for m in manifests.find(rendered, "ServiceMonitor")} == {
        API,
        WORKER,
        "agent-service-redis",
    }
    secret = manifests.one(rendered, "Secret", "agent-service-llm")
    assert set(secret["data"]) == {"DASHSCOPE_API_KEY"}


def test_keda_scale_to_zero_profile(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["keda-scale-to-zero"]
    so = manifests.one(rendered, "ScaledObject", WORKER)["spec"]
    assert so["minReplicaCount"] == 0
    (trigger,) = so["triggers"]
    assert trigger["metadata"] == {
        "listName": "agent",
        "listLength": "50",
        "activationListLength": "1",
        "host": "agent-service-redis.agent-service.svc.cluster.local",
        "port": "6379",
        "databaseIndex": "0",
    }
    assert "fallback" not in so and "scalingModifiers" not in so.get("advanced", {})
    assert trigger["authenticationRef"] == {"name": "agent-service-redis-auth"}
    assert manifests.one(rendered, "PodDisruptionBudget", WORKER)["spec"]["maxUnavailable"] == 1


def test_otel_collector_profile(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["otel-collector"]
    collector = "agent-service-otel-collector"
    deployment = manifests.one(rendered, "Deployment", collector)
    assert deployment["spec"]["replicas"] == 2
    env = _env(deployment)
    assert env["OTLP_TOKEN"] == {"secretKeyRef": {"name": "otlp-backend", "key": "token"}}
    config = yaml.safe_load(manifests.one(rendered, "ConfigMap", collector)["data"]["config.yaml"])
    backend = config["exporters"]["otlphttp/backend"]
    # The collector expands ${env:...}; Helm must leave it alone.
    assert backend["headers"]["authorization"] == "Bearer ${env:OTLP_TOKEN}"
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlphttp/backend", "debug"]
    assert config["processors"]["memory_limiter"]["limit_percentage"] == 75
    for name in (API, WORKER):
        assert _env(manifests.one(rendered, "Deployment", name))["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            f"http://{collector}:4318"
        )
    assert collector in {m.name for m in manifests.find(rendered, "NetworkPolicy")}


def test_k8s_production_example(rendered_profiles: dict[str, list[Manifest]]) -> None:
    """k8s/production-values.yaml: keys and Redis password from Secrets the chart does not
    render, KEDA, kps release labels, the operator's collector, NetworkPolicy, SSE ingress."""
    rendered = rendered_profiles["k8s-production"]
    raw = yaml.safe_load(manifests.profile_path("k8s-production").read_text())
    # On a cluster the chart detects the APIs; a missing CRD fails the install.
    assert raw["strictCapabilities"] is True and "apiVersions" not in raw
    with pytest.raises(helm_python.HelmRenderError, match="strictCapabilities"):
        manifests.render(raw)

    # Every secret is an existing one; the hook generates only the helm test key.
    assert not manifests.find(rendered, "Secret")
    assert secret_hook.job_args(rendered).specs == ["agent-service-test-key/key=api-key:helm-test"]
    assert not manifests.find(rendered, "StatefulSet")
    worker = manifests.one(rendered, "Deployment", WORKER)
    env = _env(worker)
    assert env["AGENT_REDIS_URL"] == "rediss://redis.example.internal:6380/0"
    assert env["AGENT_REDIS_PASSWORD_FILE"] == "/var/run/secrets/agent-service-redis/password"
    assert env["AGENT_REDIS_TLS_CA_FILE"] == "/var/run/secrets/agent-service-redis-ca/ca.crt"
    volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
    assert volumes["redis-ca"]["secret"]["secretName"] == "redis-ca"
    assert _container(worker)["envFrom"] == [{"secretRef": {"name": "agent-service-llm"}}]
    assert "replicas" not in worker["spec"]
    so = manifests.one(rendered, "ScaledObject", WORKER)["spec"]
    assert so["triggers"][0]["metadata"]["enableTLS"] == "true"
    auth = manifests.one(rendered, "TriggerAuthentication", "agent-service-redis-auth")["spec"]
    assert {"parameter": "ca", "name": "redis-ca", "key": "ca.crt"} in auth["secretTargetRef"]
    assert manifests.one(rendered, "HorizontalPodAutoscaler", API)

    for kind in ("ServiceMonitor", "PrometheusRule"):
        found = manifests.find(rendered, kind)
        assert found, kind
        for m in found:
            assert m.obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", m

    collector = manifests.one(rendered, "OpenTelemetryCollector", "agent-service-otel")
    assert set(collector["spec"]["config"]["exporters"]) == {"otlp/tempo"}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://agent-service-otel-collector:4317"

    assert {m.name for m in manifests.find(rendered, "NetworkPolicy")} == {API, WORKER}
    annotations = manifests.one(rendered, "Ingress", API)["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


def test_k8s_kind_values(rendered_profiles: dict[str, list[Manifest]]) -> None:
    """k8s/kind-values.yaml is what the e2e checks rely on: KEDA with few slots per pod (a burst
    must add workers), monitors and rules for kps, a one-minute LLM alert, the plain collector."""
    rendered = rendered_profiles["k8s-kind"]
    worker = manifests.one(rendered, "Deployment", WORKER)
    assert _container(worker)["image"] == "agent-service:ci"
    assert _env(worker)["AGENT_WORKER_CONCURRENCY"] == "8"
    so = manifests.one(rendered, "ScaledObject", WORKER)["spec"]
    assert so["maxReplicaCount"] > so["minReplicaCount"] == 1
    assert int(so["triggers"][0]["metadata"]["listLength"]) <= 8
    assert manifests.one(rendered, "HorizontalPodAutoscaler", API)
    assert {m.name for m in manifests.find(rendered, "ServiceMonitor")} >= {API, WORKER}
    # e2e.sh monitoring: targets up through the /metrics token; e2e.sh's key: the helm test key.
    for name in (API, WORKER):
        (endpoint,) = manifests.one(rendered, "ServiceMonitor", name)["spec"]["endpoints"]
        assert endpoint["authorization"]["credentials"]["name"] == "agent-service-metrics-token"
    assert set(secret_hook.job_args(rendered).specs) == {
        "agent-service-metrics-token/token=token",
        "agent-service-test-key/key=api-key:helm-test",
        "agent-service-redis/redis-password=password",
    }
    (rule,) = manifests.find(rendered, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule.obj["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["AgentServiceLLMErrorRatioHigh"]["for"] == "1m"
    assert manifests.one(rendered, "Deployment", "agent-service-otel-collector")
    assert not manifests.find(rendered, "OpenTelemetryCollector")


def test_default_profile(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["default"]
    # No Secret is rendered: the Redis password and the helm test key come from the hook Job
    # (its ServiceAccount, Role and RoleBinding, all hooks).
    assert _kinds(rendered) == {
        "Deployment",
        "Service",
        "StatefulSet",
        "Secret",
        "ServiceAccount",
        "PodDisruptionBudget",
        "Pod",
        "Job",
        "Role",
        "RoleBinding",
    }
    assert [m.name for m in manifests.find(rendered, "Secret")] == ["agent-service-client-keys"]
    api = manifests.one(rendered, "Deployment", API)
    env = _env(api)
    assert env["AGENT_SIM_URL"] == "http://agent-service-simulator:8100/v1"
    assert "AGENT_CONFIG_FILE" not in env
    redis = manifests.one(rendered, "StatefulSet", "agent-service-redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert (
        redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        == "1Gi"
    )
    containers = redis["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "redis:7.4-alpine"
    # The exporter the Redis alerts read, pinned.
    assert containers[1]["name"] == "metrics"
    assert containers[1]["image"] == "oliver006/redis_exporter:v1.88.0"
    test_pod = manifests.one(rendered, "Pod", "agent-service-test-api")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["spec"]["restartPolicy"] == "Never"
    script = test_pod["spec"]["containers"][0]["command"][-1]
    assert "/readyz" in script and "/v1/chat" in script


def test_minimal_profile(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["minimal"]
    assert _kinds(rendered) == {"Deployment", "Service", "StatefulSet", "ConfigMap", "Secret"}
    # Authentication is not optional: the one Secret is the keys file (no helm test key).
    assert [m.name for m in manifests.find(rendered, "Secret")] == ["agent-service-client-keys"]
    env = _env(manifests.one(rendered, "Deployment", WORKER))
    assert env["AGENT_REDIS_URL"] == "redis://agent-service-redis:6379/0"
    assert env["AGENT_CONFIG_FILE"] == "/etc/agent-service/config.yaml"
    assert "AGENT_SIM_URL" not in env


def test_agent_configs_are_valid_and_keys_are_provided(
    rendered_profiles: dict[str, list[Manifest]],
) -> None:
    """The rendered config file is accepted by the service, and every `apiKey: {env: X}` names a
    variable the pods get (llm.apiKeys, or an existing Secret the chart cannot see)."""
    checked = 0
    for profile, rendered in rendered_profiles.items():
        configmaps = manifests.find(rendered, "ConfigMap", "agent-service-config")
        if not configmaps:
            continue
        config = parse_agent_config(configmaps[0].obj["data"]["config.yaml"], profile)
        values = manifests.profile_values(profile)
        provided = set(values.get("llm", {}).get("apiKeys", {}))
        for model in config.models:
            if model.api_key is not None and getattr(model.api_key, "env", None):
                assert model.api_key.env in provided or values["llm"].get("existingSecret"), (
                    f"{profile}: {model.name} reads {model.api_key.env}, which no Secret provides"
                )
        checked += 1
    assert checked >= 3


def _adapter_rules() -> dict[str, dict[str, Any]]:
    adapter = yaml.safe_load(
        (manifests.REPO / "k8s" / "prometheus-adapter-values.yaml").read_text()
    )
    return {rule["name"]["as"]: rule for rule in adapter["rules"]["external"]}


def test_prometheus_adapter_rule_serves_the_hpa_metric() -> None:
    rules = _adapter_rules()
    metric = manifests.chart().values["worker"]["autoscaling"]["hpa"]["metricName"]
    assert set(rules) == {metric, "agent_queue_depth"}
    for rule in rules.values():
        assert rule["seriesQuery"].startswith("agent_queue_depth{")
        assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
        assert rule["metricsQuery"].startswith("max by (queue)")


def test_prometheus_adapter_query_counts_waiting_and_running_runs(tmp_path: Path) -> None:
    """The adapter's query, expanded as the adapter expands it for the HPA of namespace
    `agents` (queue=agent), evaluated by promtool: the depth once (two api pods report it), plus
    the runs in progress of every worker; with no worker reporting, the depth alone; another
    namespace's queue never counts."""
    query = (
        _adapter_rules()["agent_queue_depth_plus_in_progress"]["metricsQuery"]
        .replace("<<.Series>>", "agent_queue_depth")
        .replace("<<.LabelMatchers>>", 'namespace="agents",queue="agent"')
    )
    series = [
        ('agent_queue_depth{namespace="agents",queue="agent",pod="api-1"}', "5x10"),
        ('agent_queue_depth{namespace="agents",queue="agent",pod="api-2"}', "5x10"),
        ('agent_queue_depth{namespace="other",queue="agent",pod="api-9"}', "100x10"),
        # the workers report until minute 1, then are gone (older than the 5-minute lookback)
        ('agent_worker_tasks_in_progress{namespace="agents",queue="agent",pod="w-1"}', "2x1"),
        ('agent_worker_tasks_in_progress{namespace="agents",queue="agent",pod="w-2"}', "7x1"),
        ('agent_worker_tasks_in_progress{namespace="other",queue="agent",pod="w-9"}', "50x10"),
    ]
    case = {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            {
                "expr": "demand",
                "eval_time": "1m",
                "exp_samples": [{"labels": 'demand{queue="agent"}', "value": 14}],
            },
            # every worker gone (scaled down or crashed): the waiting runs still count
            {
                "expr": "demand",
                "eval_time": "7m",
                "exp_samples": [{"labels": 'demand{queue="agent"}', "value": 5}],
            },
        ],
    }
    run_rule_test(
        tmp_path, [{"name": "adapter", "rules": [{"record": "demand", "expr": query}]}], [case]
    )
