"""The optional OpenTelemetry collector (otelCollector): an OpenTelemetryCollector for the
OpenTelemetry Operator when opentelemetry.io/v1beta1 is available, else a plain Deployment,
Service and ConfigMap; one configuration for both; api and worker pointed at it; NetworkPolicy
egress that lets them reach it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.chart import manifests
from tests.chart.manifests import Manifest

COLLECTOR = "agent-service-otel-collector"
CR = "agent-service-otel"
OPERATOR_API = "opentelemetry.io/v1beta1"
ENABLED = {"otelCollector": {"enabled": True}}


def _env(rendered: list[Manifest], deployment: str) -> dict[str, Any]:
    obj = manifests.one(rendered, "Deployment", deployment)
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _collector_objects(rendered: list[Manifest]) -> set[tuple[str, str]]:
    return {(m.kind, m.name) for m in rendered if "otel" in m.name}


def _egress_to_collector(rendered: list[Manifest], policy: str) -> list[dict[str, Any]]:
    """Egress rules of a NetworkPolicy whose peers select pods by label on the OTLP ports."""
    spec = manifests.one(rendered, "NetworkPolicy", policy)["spec"]
    return [
        rule
        for rule in spec["egress"]
        if {p["port"] for p in rule.get("ports", [])} == {4317, 4318}
        and any("podSelector" in peer for peer in rule.get("to", []))
    ]


def test_off_by_default() -> None:
    rendered = manifests.render({})
    assert not _collector_objects(rendered)
    assert not [k for k in _env(rendered, "agent-service-api") if k.startswith("OTEL_")]


def test_plain_collector_when_the_operator_api_is_absent() -> None:
    rendered = manifests.render(ENABLED)
    assert _collector_objects(rendered) == {
        ("ConfigMap", COLLECTOR),
        ("Deployment", COLLECTOR),
        ("Service", COLLECTOR),
    }
    deployment = manifests.one(rendered, "Deployment", COLLECTOR)
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"].startswith("otel/opentelemetry-collector:")
    assert container["args"] == ["--config=/conf/config.yaml"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"otlp-grpc": 4317, "otlp-http": 4318, "health": 13133}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "health"}, probe
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[mounts["/conf"]]["configMap"]["name"] == COLLECTOR
    # The Service reaches these pods on the OTLP ports.
    service = manifests.one(rendered, "Service", COLLECTOR)["spec"]
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    assert {(p["port"], p["targetPort"]) for p in service["ports"]} == {
        (4317, "otlp-grpc"),
        (4318, "otlp-http"),
    }
    # The config's health_check port is the probes' port.
    config = yaml.safe_load(manifests.one(rendered, "ConfigMap", COLLECTOR)["data"]["config.yaml"])
    assert config["extensions"]["health_check"]["endpoint"].endswith(":13133")


def test_config_pipeline() -> None:
    config = yaml.safe_load(
        manifests.one(manifests.render(ENABLED), "ConfigMap", COLLECTOR)["data"]["config.yaml"]
    )
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["processors"]["memory_limiter"] == {
        "check_interval": "1s",
        "limit_percentage": 80,
        "spike_limit_percentage": 25,
    }
    assert set(config["processors"]["batch"]) == {"timeout", "send_batch_size"}
    assert config["exporters"] == {"debug": {"verbosity": "basic"}}
    assert config["service"]["extensions"] == ["health_check"]
    # memory_limiter first: data is refused before the batch processor buffers it.
    assert config["service"]["pipelines"] == {
        "traces": {
            "receivers": ["otlp"],
            "processors": ["memory_limiter", "batch"],
            "exporters": ["debug"],
        }
    }


def test_exporters_come_from_values() -> None:
    values = manifests.deep_merge(
        ENABLED,
        {
            "otelCollector": {
                "exporters": [
                    {"name": "otlp/tempo", "config": {"endpoint": "tempo:4317"}},
                    {"name": "nop"},
                ]
            }
        },
    )
    config = yaml.safe_load(
        manifests.one(manifests.render(values), "ConfigMap", COLLECTOR)["data"]["config.yaml"]
    )
    assert config["exporters"] == {"otlp/tempo": {"endpoint": "tempo:4317"}, "nop": {}}
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/tempo", "nop"]


def test_operator_form_when_the_api_is_available() -> None:
    values = manifests.deep_merge(ENABLED, {"apiVersions": [OPERATOR_API]})
    rendered = manifests.render(values)
    assert _collector_objects(rendered) == {("OpenTelemetryCollector", CR)}
    cr = manifests.one(rendered, "OpenTelemetryCollector", CR)
    assert cr["apiVersion"] == OPERATOR_API
    spec = cr["spec"]
    assert spec["mode"] == "deployment"
    # v1beta1 takes the config as an object (v1alpha1 took a string), the same config as the
    # plain collector's ConfigMap.
    assert isinstance(spec["config"], dict)
    plain = manifests.one(manifests.render(ENABLED), "ConfigMap", COLLECTOR)
    assert spec["config"] == yaml.safe_load(plain["data"]["config.yaml"])
    assert spec["image"].startswith("otel/opentelemetry-collector:")
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["podSecurityContext"]["runAsNonRoot"] is True
    assert spec["resources"]["limits"]["memory"]
    # The operator names its Service <CR name>-collector: the address the pods use.
    assert _env(rendered, "agent-service-worker")["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        f"http://{CR}-collector:4317"
    )


def test_operator_form_matches_the_crd() -> None:
    directory = manifests.crd_schema_dir()
    if directory is None:
        pytest.skip(f"{manifests.CRD_SCHEMAS_ENV} is not set")
    values = manifests.deep_merge(ENABLED, {"apiVersions": [OPERATOR_API]})
    cr = manifests.one(manifests.render(values), "OpenTelemetryCollector", CR)
    manifests.validate_crd(cr, directory)
    # The CRD requires receivers, exporters and service.pipelines: dropping one must fail.
    broken = {**cr, "spec": {**cr["spec"], "config": {**cr["spec"]["config"]}}}
    del broken["spec"]["config"]["exporters"]
    with pytest.raises(AssertionError, match="exporters"):
        manifests.validate_crd(broken, directory)


def test_use_operator_false_forces_the_plain_collector() -> None:
    values = manifests.deep_merge(
        ENABLED, {"apiVersions": [OPERATOR_API], "otelCollector": {"useOperator": False}}
    )
    kinds = {kind for kind, _ in _collector_objects(manifests.render(values))}
    assert kinds == {"ConfigMap", "Deployment", "Service"}


@pytest.mark.parametrize(
    ("protocol", "port"), [("grpc", 4317), ("http/protobuf", 4318), ("http/json", 4318)]
)
def test_pods_send_to_the_collector(protocol: str, port: int) -> None:
    values = manifests.deep_merge(ENABLED, {"otel": {"protocol": protocol}})
    rendered = manifests.render(values)
    for deployment in ("agent-service-api", "agent-service-worker"):
        env = _env(rendered, deployment)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{COLLECTOR}:{port}", deployment
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == protocol
        assert env["OTEL_SERVICE_NAME"] == deployment


def test_otel_endpoint_wins_over_the_collector() -> None:
    endpoint = "http://central-collector.observability:4317"
    values = manifests.deep_merge(
        ENABLED, {"otel": {"endpoint": endpoint}, "networkPolicy": {"enabled": True}}
    )
    rendered = manifests.render(values)
    assert _env(rendered, "agent-service-api")["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
    assert manifests.find(rendered, "Deployment", COLLECTOR)
    # Egress then follows networkPolicy.otlpEgress, not the collector's pods.
    assert not _egress_to_collector(rendered, "agent-service-api")


@pytest.mark.parametrize("operator", [False, True])
def test_network_policy_lets_the_pods_reach_the_collector(operator: bool) -> None:
    values = manifests.deep_merge(ENABLED, {"networkPolicy": {"enabled": True}})
    if operator:
        values["apiVersions"] = [OPERATOR_API]
    rendered = manifests.render(values)
    if operator:
        # The operator relabels its pods: instance "<namespace>.<CR name>".
        wanted = {
            "app.kubernetes.io/managed-by": "opentelemetry-operator",
            "app.kubernetes.io/instance": f"{manifests.NAMESPACE}.{CR}",
        }
    else:
        pod = manifests.one(rendered, "Deployment", COLLECTOR)["spec"]["template"]
        wanted = manifests.one(rendered, "Deployment", COLLECTOR)["spec"]["selector"]["matchLabels"]
        assert wanted.items() <= pod["metadata"]["labels"].items()
    for policy in ("agent-service-api", "agent-service-worker"):
        (rule,) = _egress_to_collector(rendered, policy)
        (peer,) = rule["to"]
        assert peer == {"podSelector": {"matchLabels": wanted}}, policy
    policies = {m.name for m in manifests.find(rendered, "NetworkPolicy")}
    # The plain collector admits OTLP from api and worker pods only; the operator's pods are
    # the operator's to police.
    assert (COLLECTOR in policies) is not operator
    if not operator:
        spec = manifests.one(rendered, "NetworkPolicy", COLLECTOR)["spec"]
        assert spec["policyTypes"] == ["Ingress"]
        (ingress,) = spec["ingress"]
        assert {p["port"] for p in ingress["ports"]} == {"otlp-grpc", "otlp-http"}
        (source,) = ingress["from"]
        assert source["podSelector"]["matchExpressions"][0]["values"] == ["api", "worker"]


def test_config_change_rolls_the_plain_collector() -> None:
    def checksum(values: dict[str, Any]) -> str:
        deployment = manifests.one(manifests.render(values), "Deployment", COLLECTOR)
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    changed = manifests.deep_merge(ENABLED, {"otelCollector": {"batch": {"timeout": "1s"}}})
    assert checksum(ENABLED) != checksum(changed)


def test_notes_name_the_collector() -> None:
    notes = manifests.render_raw(ENABLED)["agent-service/templates/NOTES.txt"]
    assert f"The pods send to http://{COLLECTOR}:4317." in notes
    assert "opentelemetry.io/v1beta1 is not served" in notes
    values = manifests.deep_merge(ENABLED, {"apiVersions": [OPERATOR_API]})
    notes = manifests.render_raw(values)["agent-service/templates/NOTES.txt"]
    assert f"OpenTelemetryCollector ({CR})" in notes
    assert "not served" not in notes
