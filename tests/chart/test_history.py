"""The run history in the chart (history.*): an external Postgres or a CloudNativePG Cluster,
the pods' AGENT_HISTORY_* settings and password file, the migration hook Job, the
postgres_exporter with its ServiceMonitor, NetworkPolicy egress, and the values that
contradict each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest

from tests.chart import manifests
from tests.chart.manifests import Manifest
from tests.chart.promtool import run_rule_test
from tests.chart.test_hardening import _annotations, _series, _target_labels

API = "agent-service-api"
WORKER = "agent-service-worker"
EXPORTER = "agent-service-postgres-exporter"
JOB = "agent-service-history-migrate"
CLUSTER = "agent-service-history"
CNPG_API = "postgresql.cnpg.io/v1"

EXTERNAL = {"enabled": True, "external": {"host": "db.internal", "existingSecret": "pg"}}
CNPG = {"enabled": True, "cloudnativepg": {"enabled": True}}


def _render(history: dict[str, Any], **values: Any) -> list[Manifest]:
    return manifests.render({"history": history, **values})


def _pod(rendered: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests.one(rendered, kind, name)["spec"]["template"]["spec"]
    return spec


def _env(rendered: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    (container,) = _pod(rendered, kind, name)["containers"][:1]
    return manifests.container_env(container)


def _history_env(env: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in env.items() if k.startswith("AGENT_HISTORY_")}


def test_history_is_off_by_default() -> None:
    rendered = manifests.render({})
    for name in (API, WORKER):
        assert not _history_env(_env(rendered, "Deployment", name))
    assert not manifests.find(rendered, "Job", JOB)
    assert not manifests.find(rendered, "Cluster")
    assert not manifests.find(rendered, "Deployment", EXPORTER)


def test_an_external_postgres_by_host_with_a_password_file() -> None:
    rendered = _render(EXTERNAL)
    for kind, name in (("Deployment", API), ("Deployment", WORKER), ("Job", JOB)):
        env = _history_env(_env(rendered, kind, name))
        assert env == {
            "AGENT_HISTORY_URL": "postgresql://agent_service@db.internal:5432/agent_service",
            "AGENT_HISTORY_PASSWORD_FILE": "/var/run/secrets/agent-service-history/password",
            "AGENT_HISTORY_MIGRATE_AT_START": "false",
            "AGENT_HISTORY_RETENTION_DAYS": "90",
            "AGENT_HISTORY_ARCHIVED_RECORD_TTL_SECONDS": "3600",
            "AGENT_HISTORY_POOL_SIZE": "5",
        }, name
        pod = _pod(rendered, kind, name)
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["history-credentials"]["secret"] == {
            "secretName": "pg",
            "defaultMode": 0o440,
            "items": [{"key": "password", "path": "password"}],
        }
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["history-credentials"]["readOnly"] is True


def test_the_migration_runs_before_the_pods_for_an_external_postgres() -> None:
    rendered = _render(EXTERNAL)
    job = manifests.one(rendered, "Job", JOB)
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["agent-service", "history", "migrate"]
    assert pod["serviceAccountName"] == JOB and pod["automountServiceAccountToken"] is False
    account = manifests.one(rendered, "ServiceAccount", JOB)
    assert account["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    assert job["spec"]["backoffLimit"] == 10 and job["spec"]["activeDeadlineSeconds"] == 900


def test_without_the_hook_job_the_workers_migrate() -> None:
    rendered = _render(EXTERNAL | {"migration": {"enabled": False}})
    assert not manifests.find(rendered, "Job", JOB)
    env = _env(rendered, "Deployment", WORKER)
    assert env["AGENT_HISTORY_MIGRATE_AT_START"] == "true"


def test_an_external_url_keeps_its_options_and_a_url_secret_replaces_it() -> None:
    url = "postgresql://agent@pg.example.com:6432/history?sslmode=verify-full"
    rendered = _render({"enabled": True, "external": {"url": url, "existingSecret": "pg"}})
    assert _env(rendered, "Deployment", API)["AGENT_HISTORY_URL"] == url
    secret_url = {"existingSecret": "pg-url", "existingSecretUrlKey": "uri"}
    rendered = _render({"enabled": True, "external": secret_url})
    env = _env(rendered, "Deployment", WORKER)
    assert env["AGENT_HISTORY_URL"] == {"secretKeyRef": {"name": "pg-url", "key": "uri"}}
    assert "AGENT_HISTORY_PASSWORD_FILE" not in env
    assert "history-credentials" not in {
        v["name"] for v in _pod(rendered, "Deployment", WORKER)["volumes"]
    }


def test_a_cloudnativepg_cluster_when_the_operator_is_there() -> None:
    rendered = _render(
        CNPG | {"cloudnativepg": {"enabled": True, "instances": 3, "parameters": {"a": "1"}}},
        apiVersions=[CNPG_API],
    )
    (cluster,) = manifests.find(rendered, "Cluster", CLUSTER)
    assert cluster.api_version == CNPG_API
    spec = cluster.obj["spec"]
    assert set(spec) <= {
        "instances", "imageName", "bootstrap", "storage", "resources", "postgresql"
    }  # fmt: skip
    assert spec["instances"] == 3
    assert spec["bootstrap"] == {"initdb": {"database": "agent_service", "owner": "agent_service"}}
    assert spec["storage"] == {"size": "10Gi"}
    assert spec["postgresql"] == {"parameters": {"a": "1"}}
    assert spec["resources"]["limits"]["memory"] == "1Gi"
    env = _env(rendered, "Deployment", API)
    assert env["AGENT_HISTORY_URL"] == (
        "postgresql://agent_service@agent-service-history-rw:5432/agent_service"
    )
    volumes = {v["name"]: v for v in _pod(rendered, "Deployment", API)["volumes"]}
    assert volumes["history-credentials"]["secret"]["secretName"] == "agent-service-history-app"
    job = manifests.one(rendered, "Job", JOB)
    # The Cluster is one of the release's objects: the migration comes after them.
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"


def test_without_the_operator_the_cluster_and_history_are_left_out_and_reported() -> None:
    raw = manifests.render_raw({"history": CNPG})
    rendered = manifests.render({"history": CNPG})
    assert not manifests.find(rendered, "Cluster")
    assert not _history_env(_env(rendered, "Deployment", API))
    assert not manifests.find(rendered, "Job", JOB)
    notes = raw["agent-service/templates/NOTES.txt"]
    assert "history.cloudnativepg.enabled (needs postgresql.cnpg.io/v1)" in notes
    assert "run history is off" in notes
    with pytest.raises(helm_python.HelmRenderError, match=r"postgresql\.cnpg\.io/v1"):
        manifests.render_raw({"history": CNPG, "strictCapabilities": True})


def test_the_exporter_watches_the_same_postgres() -> None:
    rendered = _render(
        EXTERNAL | {"postgresExporter": {"enabled": True}},
        serviceMonitor={"enabled": True},
        apiVersions=["monitoring.coreos.com/v1"],
    )
    env = _env(rendered, "Deployment", EXPORTER)
    assert env["DATA_SOURCE_URI"] == "db.internal:5432/agent_service?sslmode=require"
    assert env["DATA_SOURCE_USER"] == "agent_service"
    assert env["DATA_SOURCE_PASS_FILE"] == "/var/run/secrets/agent-service-history/password"
    (container,) = _pod(rendered, "Deployment", EXPORTER)["containers"]
    assert container["image"] == "quay.io/prometheuscommunity/postgres-exporter:v0.17.1"
    service = manifests.one(rendered, "Service", EXPORTER)
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9187, "targetPort": "metrics", "protocol": "TCP"}
    ]
    monitor = manifests.one(rendered, "ServiceMonitor", EXPORTER)
    assert monitor["spec"]["targetLabels"] == [
        "app.kubernetes.io/part-of",
        "app.kubernetes.io/component",
    ]
    cnpg = _render(
        CNPG | {"postgresExporter": {"enabled": True}}, apiVersions=[CNPG_API]
    )  # the Cluster's primary, with the operator's password
    env = _env(cnpg, "Deployment", EXPORTER)
    assert env["DATA_SOURCE_URI"] == "agent-service-history-rw:5432/agent_service?sslmode=require"


def test_network_policies_let_the_pods_reach_postgres() -> None:
    policies = {"enabled": True, "externalPostgresCidrs": ["10.30.0.0/16"]}
    rendered = _render(EXTERNAL | {"postgresExporter": {"enabled": True}}, networkPolicy=policies)
    expected = {
        "ports": [{"port": 5432, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.30.0.0/16"}}],
    }
    for name in (API, WORKER, EXPORTER):
        egress = manifests.one(rendered, "NetworkPolicy", name)["spec"]["egress"]
        assert expected in egress, name
    rendered = _render(
        CNPG | {"postgresExporter": {"enabled": True}},
        networkPolicy={"enabled": True},
        apiVersions=[CNPG_API],
    )
    to_cluster = {
        "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": CLUSTER}}}],
        "ports": [{"port": 5432, "protocol": "TCP"}],
    }
    for name in (API, WORKER, EXPORTER):
        egress = manifests.one(rendered, "NetworkPolicy", name)["spec"]["egress"]
        assert to_cluster in egress, name


def test_the_postgres_down_alert_finds_the_exporter_under_fullname_override(
    tmp_path: Path,
) -> None:
    values = {
        "fullnameOverride": "acme",
        "apiVersions": ["monitoring.coreos.com/v1"],
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "history": EXTERNAL | {"postgresExporter": {"enabled": True}},
    }
    rendered = manifests.render(values)
    (exporter,) = [
        t
        for t in _target_labels(rendered)
        if t["app_kubernetes_io_component"] == "postgres-exporter"
    ]
    assert exporter["service"] == "acme-postgres-exporter"
    (rule,) = manifests.find(rendered, "PrometheusRule")
    down = {
        "exp_labels": {
            "severity": "critical",
            "namespace": manifests.NAMESPACE,
            "service": "acme-postgres-exporter",
        },
        "exp_annotations": _annotations(rule, "AgentServiceHistoryPostgresDown", exporter),
    }
    case = {
        "interval": "1m",
        "input_series": [
            {"series": _series("pg_up", exporter), "values": "0x15"},
            {"series": _series("up", exporter), "values": "1x15"},
        ],
        "alert_rule_test": [
            {
                "eval_time": "10m",
                "alertname": "AgentServiceHistoryPostgresDown",
                "exp_alerts": [down],
            }
        ],
    }
    run_rule_test(tmp_path, rule.obj["spec"]["groups"], [case])


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ({"enabled": True}, "history.enabled needs a Postgres"),
        (
            {"enabled": True, "external": {"url": "postgresql://a@db/h", "host": "db"}},
            "history.external.url and history.external.host are both set",
        ),
        (
            {"enabled": True, "external": {"existingSecretUrlKey": "uri"}},
            "existingSecretUrlKey needs history.external.existingSecret",
        ),
        (
            EXTERNAL | {"cloudnativepg": {"enabled": True}},
            "history.cloudnativepg.enabled and history.external are both set",
        ),
        (
            {
                "enabled": True,
                "external": {"existingSecret": "s", "existingSecretUrlKey": "uri"},
                "postgresExporter": {"enabled": True},
            },
            "history.postgresExporter needs the server's address",
        ),
    ],
)
def test_contradictions_fail(history: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError) as info:
        manifests.render_raw({"history": history})
    assert message in str(info.value)


@pytest.mark.parametrize(
    "history",
    [
        {"enabled": True, "external": {"url": "mysql://a@db/h"}},
        {"enabled": True, "external": {"url": "postgresql://a:secret@db/h"}},  # a password
        {"enabled": True, "external": {"port": 0, "host": "db"}},
        {"enabled": True, "postgresExporter": {"sslmode": "prefer"}},
        {"enabled": True, "cloudnativepg": {"parameters": {"max_connections": 200}}},
        {"retentionDays": -1},
        {"archivedRecordTtlSeconds": 10},
        {"unknown": True},
    ],
)
def test_the_schema_refuses(history: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmValuesError):
        manifests.render_raw({"history": history})
