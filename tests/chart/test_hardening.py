"""The production-hardening review of the chart (issue 12), one test per defect it found:

* renders are reproducible: two renders of every profile are byte-identical (the real Helm
  binary), and the generated secrets come from a hook Job that never overwrites a value;
* the bundled Redis refuses writes before the kernel kills it: maxmemory below the limit, within
  a third of the volume, noeviction, AOF fsync'd every second; values and docs/capacity.md agree;
* the API drains for longer than a run lasts, and the kubelet waits for the drain;
* the alert rules find every target under fullnameOverride (the rendered PrometheusRule and
  the labels the rendered ServiceMonitors give their targets, through promtool);
* the CRD is not installed by default;
* autoscalers count waiting and running runs; a chart version bump rolls no pod.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import manifests, secret_hook
from tests.chart.manifests import Manifest, container_env
from tests.chart.promtool import run_rule_test

FULLNAME = manifests.RELEASE
CAPACITY = manifests.REPO / "docs" / "capacity.md"
TASK_BYTES = 9 * 1024  # docs/capacity.md: memory per finished task


def _helm() -> str:
    """The real Helm binary (the helm-binary dev dependency, or one on PATH)."""
    candidate = Path(shutil.which("helm") or "")
    if not candidate.name:
        pytest.fail("no helm binary: `uv sync` installs helm-binary")
    return str(candidate)


def _helm_template(chart: Path, values: dict[str, Any], tmp_path: Path, *args: str) -> str:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    api_flags = [f"--api-versions={api}" for api in values.get("apiVersions", [])]
    result = subprocess.run(
        [
            _helm(),
            "template",
            manifests.RELEASE,
            str(chart),
            f"--namespace={manifests.NAMESPACE}",
            f"--values={values_file}",
            *api_flags,
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _copy_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "chart"
    shutil.copytree(manifests.CHART_DIR, chart)
    return chart


# --- reproducible renders ------------------------------------------------------------------------


@pytest.mark.parametrize("profile", manifests.profiles())
def test_two_renders_are_byte_identical(profile: str, tmp_path: Path) -> None:
    """What GitOps tools do (helm template: lookup sees nothing): render twice, diff."""
    values = manifests.profile_values(profile)
    first = _helm_template(manifests.CHART_DIR, values, tmp_path)
    second = _helm_template(manifests.CHART_DIR, values, tmp_path)
    assert first == second
    assert manifests.render_raw(values) == manifests.render_raw(values), "SDK renders differ"


def test_the_render_diff_catches_a_generated_value(tmp_path: Path) -> None:
    """The check above can fail: a chart drawing a value at render time (as this one did for
    the Redis password) renders differently twice."""
    chart = _copy_chart(tmp_path)
    (chart / "templates" / "drawn.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: drawn\n"
        "data:\n  value: {{ randAlphaNum 32 | quote }}\n",
        encoding="utf-8",
    )
    assert _helm_template(chart, {}, tmp_path) != _helm_template(chart, {}, tmp_path)


def test_no_template_draws_or_looks_up_a_value() -> None:
    """No random draw, clock or lookup in any template action: generated secrets come from the
    hook Job (templates/secrets/generator.yaml)."""
    forbidden = re.compile(
        r"\b(randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|randInt|uuidv4|now|lookup)\b"
    )
    for path in (manifests.CHART_DIR / "templates").rglob("*"):
        if not path.is_file():
            continue
        actions = re.findall(r"\{\{(.*?)\}\}", path.read_text(encoding="utf-8"), flags=re.S)
        code = [a for a in actions if not a.lstrip("- ").startswith("/*")]
        called = {m.group(1) for action in code for m in forbidden.finditer(action)}
        assert not called, f"{path.name} calls {called}"


def test_the_hook_job_generates_once_and_never_overwrites() -> None:
    rendered = manifests.render({"metrics": {"auth": {"enabled": True}}})
    job = secret_hook.job(rendered)
    assert job is not None
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    generated = secret_hook.run(rendered)
    # Every later upgrade runs it again: nothing changes, whatever the Secrets hold.
    assert secret_hook.run(rendered, generated) == generated
    theirs = {f"{FULLNAME}-redis": {"redis-password": b"set by an operator: keep it"}}
    assert secret_hook.run(rendered, theirs)[f"{FULLNAME}-redis"] == theirs[f"{FULLNAME}-redis"]


def test_the_hook_adopts_a_secret_the_previous_chart_rendered() -> None:
    """Chart 0.1 rendered <fullname>-redis itself; the upgrade to this chart stops rendering it,
    which would make Helm delete it (and Redis' password with it): the hook keeps its value and
    marks it helm.sh/resource-policy=keep before Helm gets there."""
    rendered = manifests.render({})
    store = secret_hook.FakeSecretStore()
    store.put(
        f"{FULLNAME}-redis",
        {"redis-password": b"from-chart-0.1"},
        labels={"app.kubernetes.io/managed-by": "Helm"},
        annotations={"meta.helm.sh/release-name": FULLNAME},
    )
    args = secret_hook.job_args(rendered)
    assert secret_hook.generated_secrets.run(args, lambda _: store) == 0
    secret = store.secrets[f"{FULLNAME}-redis"]
    assert secret.data == {"redis-password": b"from-chart-0.1"}
    assert secret.annotations["helm.sh/resource-policy"] == "keep"


def test_hook_rbac_is_least_privilege(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["default"]
    name = f"{FULLNAME}-secret-generator"
    weights = {}
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Job"):
        obj = manifests.one(rendered, kind, name)
        weights[kind] = int(obj["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert obj["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert max(weights["ServiceAccount"], weights["Role"], weights["RoleBinding"]) < weights["Job"]
    rules = manifests.one(rendered, "Role", name)["rules"]
    generated = sorted({spec.split("/")[0] for spec in secret_hook.job_args(rendered).specs})
    assert rules == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": generated,
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    binding = manifests.one(rendered, "RoleBinding", name)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": name,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": name, "namespace": manifests.NAMESPACE}
    ]
    pod = secret_hook.job(rendered)["spec"]["template"]["spec"]  # type: ignore[index]
    assert pod["serviceAccountName"] == name and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert (
        container["image"]
        == manifests.one(rendered, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
    ), "the project's own image, no other"


def test_nothing_to_generate_no_hook() -> None:
    rendered = manifests.render_profile("minimal")
    assert secret_hook.job(rendered) is None
    assert not [m for m in rendered if "secret-generator" in m.name]
    assert secret_hook.job(manifests.render_profile("external-secrets")) is None


# --- the bundled Redis ---------------------------------------------------------------------------


def _redis_args(rendered: list[Manifest]) -> dict[str, str]:
    statefulset = manifests.one(rendered, "StatefulSet", f"{FULLNAME}-redis")
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = args[args.index("redis-server") + 1 :]
    return dict(zip(flags[::2], flags[1::2], strict=True))


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity)
    assert match, quantity
    return int(float(match.group(1)) * units.get(match.group(2), 1))


@pytest.mark.parametrize("profile", manifests.profiles())
def test_bundled_redis_refuses_writes_before_it_is_killed(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    rendered = rendered_profiles[profile]
    if not manifests.find(rendered, "StatefulSet", f"{FULLNAME}-redis"):
        pytest.skip(f"{profile}: an external Redis")
    values = manifests.deep_merge(manifests.chart().values, manifests.profile_values(profile))
    redis = values["redis"]
    flags = _redis_args(rendered)
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--appendonly"] == "yes" and flags["--appendfsync"] == "everysec"
    maxmemory = int(flags["--maxmemory"])
    limit = _bytes(redis["resources"]["limits"]["memory"])
    assert 0 < maxmemory < limit
    if redis["persistence"]["enabled"]:
        assert 3 * maxmemory <= _bytes(redis["persistence"]["size"]), "the AOF must fit"


@pytest.mark.parametrize(
    ("limit", "size", "wanted"),
    [
        ("512Mi", "1Gi", 2**30 // 3),  # the volume binds: 341 MiB
        ("512Mi", "2Gi", 512 * 2**20 * 80 // 100),  # the limit binds: 80 %
        ("2Gi", "10Gi", 2 * 2**30 * 80 // 100),
        ("1.5Gi", "8G", int(1.5 * 2**30) * 80 // 100),
    ],
)
def test_maxmemory_is_derived_from_the_limit_and_the_volume(
    limit: str, size: str, wanted: int
) -> None:
    values = {"redis": {"resources": {"limits": {"memory": limit}}, "persistence": {"size": size}}}
    assert int(_redis_args(manifests.render(values))["--maxmemory"]) == wanted


def test_redis_exporter_is_pinned_non_root_and_bounded(
    rendered_profiles: dict[str, list[Manifest]],
) -> None:
    pod = manifests.one(rendered_profiles["default"], "StatefulSet", f"{FULLNAME}-redis")["spec"][
        "template"
    ]["spec"]
    exporter = {c["name"]: c for c in pod["containers"]}["metrics"]
    assert re.fullmatch(r"oliver006/redis_exporter:v\d+\.\d+\.\d+", exporter["image"])
    assert exporter["securityContext"]["runAsNonRoot"] is True
    assert exporter["resources"]["limits"]["memory"]
    assert container_env(exporter)["REDIS_ADDR"] == "redis://127.0.0.1:6379"


def _capacity_row() -> dict[str, str]:
    """The row of docs/capacity.md's bundled-Redis table for the chart's defaults."""
    text = CAPACITY.read_text(encoding="utf-8")
    match = re.search(r"^\| chart defaults \|(.*)\|$", text, re.M)
    assert match, "docs/capacity.md has no `| chart defaults | ...` row"
    cells = [c.strip() for c in match.group(1).split("|")]
    keys = ["limit", "volume", "maxmemory", "tasks", "ttl", "runs"]
    return dict(zip(keys, cells, strict=True))


def test_capacity_doc_agrees_with_the_chart() -> None:
    """The chart's defaults (memory limit, volume, task TTL) and what docs/capacity.md says they
    hold: the derived maxmemory, the tasks it keeps at ~9 KiB each, the runs a day that is for
    the TTL; NOTES.txt prints the same figures."""
    values = manifests.chart().values
    row = _capacity_row()
    assert row["limit"] == values["redis"]["resources"]["limits"]["memory"]
    assert row["volume"] == values["redis"]["persistence"]["size"]
    maxmemory = int(_redis_args(manifests.render({}))["--maxmemory"])
    assert row["maxmemory"] == f"{maxmemory // 2**20} MiB"
    tasks = maxmemory // TASK_BYTES
    days = values["tasks"]["ttlSeconds"] / 86400
    assert row["ttl"] == f"{days:g} days"
    assert row["tasks"] == f"~{round(tasks, -2):,}"
    assert row["runs"] == f"~{round(tasks / days, -2):,.0f}"
    notes = manifests.render_raw({})["agent-service/templates/NOTES.txt"]
    assert f"maxmemory {maxmemory // 2**20} MiB" in notes
    assert f"~{tasks} tasks" in notes and f"~{int(tasks / days)} runs a day" in notes


# --- the API's drain -----------------------------------------------------------------------------


@pytest.mark.parametrize("run_timeout", [30, 120, 300, 900.5])
@pytest.mark.parametrize("pre_stop", [0, 5, 20])
def test_api_grace_period_covers_the_drain_and_the_drain_a_run(
    run_timeout: float, pre_stop: int
) -> None:
    model = {"name": "m", "model": "openai/m"}
    values = {
        "agentConfig": {
            "defaultModel": "m",
            "models": [model],
            "limits": {"runTimeoutSeconds": run_timeout},
        },
        "api": {"preStopSleepSeconds": pre_stop},
        "worker": {"terminationGracePeriodSeconds": 1000},
    }
    api = manifests.one(manifests.render(values), "Deployment", f"{FULLNAME}-api")["spec"][
        "template"
    ]["spec"]
    (container,) = api["containers"]
    graceful = int(container_env(container)["AGENT_API_GRACEFUL_TIMEOUT_SECONDS"])
    grace = api["terminationGracePeriodSeconds"]
    assert grace > pre_stop + graceful > run_timeout
    if pre_stop:
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(pre_stop)]
    else:
        assert "lifecycle" not in container


@pytest.mark.parametrize("profile", manifests.profiles())
def test_every_profile_drains_longer_than_a_run(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    values = manifests.profile_values(profile)
    run_timeout = values.get("agentConfig", {}).get("limits", {}).get("runTimeoutSeconds", 120)
    api = manifests.one(rendered_profiles[profile], "Deployment", f"{FULLNAME}-api")["spec"][
        "template"
    ]["spec"]
    (container,) = api["containers"]
    graceful = int(container_env(container)["AGENT_API_GRACEFUL_TIMEOUT_SECONDS"])
    pre_stop = manifests.deep_merge(manifests.chart().values, values)["api"]["preStopSleepSeconds"]
    assert api["terminationGracePeriodSeconds"] > pre_stop + graceful > run_timeout


# --- alerts under fullnameOverride ---------------------------------------------------------------


def _sanitize(label: str) -> str:
    """A Kubernetes label name as Prometheus writes it."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _target_labels(rendered: list[Manifest]) -> list[dict[str, str]]:
    """The labels Prometheus gives each rendered ServiceMonitor's targets: job and service (the
    Service's name), namespace, and the Service labels named by targetLabels."""
    services = manifests.find(rendered, "Service")
    targets = []
    for monitor in manifests.find(rendered, "ServiceMonitor"):
        wanted = monitor.obj["spec"]["selector"]["matchLabels"]
        (service,) = [s for s in services if wanted.items() <= s.obj["metadata"]["labels"].items()]
        labels = {
            "job": service.name,
            "service": service.name,
            "namespace": manifests.NAMESPACE,
            "instance": f"10.0.0.1:{service.obj['spec']['ports'][-1]['port']}",
        }
        for name in monitor.obj["spec"].get("targetLabels", []):
            labels[_sanitize(name)] = service.obj["metadata"]["labels"][name]
        targets.append(labels)
    return targets


def _series(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def test_alerts_find_every_target_under_fullname_override(tmp_path: Path) -> None:
    """Render with fullnameOverride, take the rendered PrometheusRule and the labels the rendered
    ServiceMonitors give their targets, and let promtool say which alerts fire when every target
    is down and the Redis exporter cannot reach Redis."""
    values = {
        "fullnameOverride": "acme",
        "apiVersions": ["monitoring.coreos.com/v1"],
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "configSource": "agentconfig",
        "crds": {"install": True},
        "agentConfig": {"defaultModel": "m", "models": [{"name": "m", "model": "openai/m"}]},
    }
    rendered = manifests.render(values)
    targets = _target_labels(rendered)
    jobs = {t["job"] for t in targets}
    assert jobs == {"acme-api", "acme-worker", "acme-controller", "acme-redis"}
    (rule,) = manifests.find(rendered, "PrometheusRule")
    redis = next(t for t in targets if t["app_kubernetes_io_component"] == "redis")
    series = [{"series": _series("up", t), "values": "0x15"} for t in targets]
    series.append({"series": _series("redis_up", redis), "values": "0x15"})
    down = [
        {
            "exp_labels": {"severity": "warning", **t},
            "exp_annotations": _annotations(rule, "AgentServiceTargetDown", t),
        }
        for t in targets
    ]
    redis_down = {
        "exp_labels": {
            "severity": "critical",
            "namespace": manifests.NAMESPACE,
            "service": "acme-redis",
        },
        "exp_annotations": _annotations(rule, "AgentServiceRedisDown", redis),
    }
    case = {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "AgentServiceTargetDown", "exp_alerts": down},
            {"eval_time": "10m", "alertname": "AgentServiceRedisDown", "exp_alerts": [redis_down]},
        ],
    }
    run_rule_test(tmp_path, rule.obj["spec"]["groups"], [case])


def _annotations(rule: Manifest, alert: str, labels: dict[str, str]) -> dict[str, str]:
    """An alert's annotations with its Prometheus templates filled from ``labels`` (only the
    {{ $labels.x }} references those two alerts use)."""
    (found,) = [
        r for g in rule.obj["spec"]["groups"] for r in g["rules"] if r.get("alert") == alert
    ]
    filled = {}
    for key, text in found["annotations"].items():
        filled[key] = re.sub(
            r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text
        ).strip()
    return filled


# --- CRDs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "installed"),
    [
        ({}, False),
        ({"crds": {"install": True}}, True),
        (
            {
                "configSource": "agentconfig",
                "crds": {"install": True},
                "agentConfig": {
                    "defaultModel": "m",
                    "models": [{"name": "m", "model": "openai/m"}],
                },
            },
            True,
        ),
    ],
    ids=["default", "crds.install", "agentconfig"],
)
def test_the_crd_is_installed_only_when_asked(
    values: dict[str, Any], installed: bool, tmp_path: Path
) -> None:
    """`helm template --include-crds` shows what `helm install` would install before the
    templates: nothing by default (a namespace admin can install), the AgentConfig, Agent and
    MCPServer CRDs with crds.install, kept on uninstall and equal to `agent-service crd`'s
    output."""
    crds = [
        doc
        for doc in _docs(_helm_template(manifests.CHART_DIR, values, tmp_path, "--include-crds"))
        if doc["kind"] == "CustomResourceDefinition"
    ]
    if not installed:
        assert crds == []
        return
    committed = [
        yaml.safe_load((manifests.K8S_DIR / "crds" / name).read_text())
        for name in ("agent.yaml", "agentconfig.yaml", "mcpserver.yaml")
    ]
    assert sorted(crds, key=lambda c: c["metadata"]["name"]) == sorted(
        committed, key=lambda c: c["metadata"]["name"]
    )
    for crd in committed:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --- autoscaling ---------------------------------------------------------------------------------


def test_keda_counts_waiting_and_running_runs() -> None:
    values = {
        "apiVersions": ["keda.sh/v1alpha1"],
        "worker": {"autoscaling": {"mode": "keda", "keda": {"listLength": 50}}},
    }
    so = manifests.one(manifests.render(values), "ScaledObject", f"{FULLNAME}-worker")["spec"]
    backlog, inflight = so["triggers"]
    assert (backlog["name"], backlog["type"], backlog["metadata"]["listName"]) == (
        "backlog",
        "redis",
        "agent",
    )
    # kombu's hash of delivered, unacknowledged messages: with prefetch off, the running runs.
    assert (inflight["name"], inflight["type"], inflight["metadata"]["listName"]) == (
        "inflight",
        "redis",
        "unacked",
    )
    assert so["advanced"]["scalingModifiers"] == {
        "formula": "backlog + inflight",
        "target": "50",
        "activationTarget": "0",
        "metricType": "AverageValue",
    }


def test_hpa_counts_waiting_and_running_runs() -> None:
    hpa = manifests.one(
        manifests.render({"worker": {"autoscaling": {"mode": "hpa"}}}),
        "HorizontalPodAutoscaler",
        f"{FULLNAME}-worker",
    )["spec"]
    (metric,) = hpa["metrics"]
    assert metric["external"]["metric"]["name"] == "agent_queue_depth_plus_in_progress"


def test_pod_deletion_cost_is_off_by_default_and_least_privilege_when_on() -> None:
    off = manifests.render({})
    worker = manifests.one(off, "Deployment", f"{FULLNAME}-worker")["spec"]["template"]["spec"]
    assert worker["automountServiceAccountToken"] is False
    assert "AGENT_WORKER_POD_DELETION_COST" not in container_env(worker["containers"][0])
    on = manifests.render({"worker": {"podDeletionCost": {"enabled": True}}})
    worker = manifests.one(on, "Deployment", f"{FULLNAME}-worker")["spec"]["template"]["spec"]
    assert worker["serviceAccountName"] == f"{FULLNAME}-worker"
    assert worker["automountServiceAccountToken"] is True
    env = container_env(worker["containers"][0])
    assert env["AGENT_WORKER_POD_DELETION_COST"] == "true"
    assert env["AGENT_WORKER_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["AGENT_WORKER_POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert manifests.one(on, "Role", f"{FULLNAME}-worker")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}
    ]
    api = manifests.one(on, "Deployment", f"{FULLNAME}-api")["spec"]["template"]["spec"]
    assert api["automountServiceAccountToken"] is False, "only the workers get the token"
    # With NetworkPolicies, the workers may reach the API server (only then).
    kube_api = {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}
    for enabled in (False, True):
        values = {"networkPolicy": {"enabled": True, "kubeApiEgress": {"cidrs": []}}}
        values |= {"worker": {"podDeletionCost": {"enabled": enabled}}}
        policy = manifests.one(manifests.render(values), "NetworkPolicy", f"{FULLNAME}-worker")
        assert (kube_api in policy["spec"]["egress"]) is enabled


# --- rollouts ----------------------------------------------------------------------------------


def _pod_templates(rendered: list[Manifest]) -> dict[str, Any]:
    return {
        f"{m.kind}/{m.name}": m.obj["spec"]["template"]
        for m in rendered
        if m.kind in {"Deployment", "StatefulSet"}
    }


@pytest.mark.parametrize("profile", ["default", "production", "agentconfig", "hpa"])
def test_a_chart_version_bump_alone_rolls_no_pod(profile: str, tmp_path: Path) -> None:
    """Pod templates carry no chart label and checksum values, never rendered objects (whose
    labels hold the chart's version): the same values under chart 9.9.9 change no template."""
    chart = _copy_chart(tmp_path)
    meta = chart / "Chart.yaml"
    meta.write_text(re.sub(r"^version: .*$", "version: 9.9.9", meta.read_text(), flags=re.M))
    values = manifests.profile_values(profile)
    before = _docs(_helm_template(manifests.CHART_DIR, values, tmp_path))
    after = _docs(_helm_template(chart, values, tmp_path))
    assert any("9.9.9" in str(d["metadata"].get("labels")) for d in after), "the bump is visible"
    templates = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]
        for d in before
        if d["kind"] in {"Deployment", "StatefulSet"}
    }
    bumped = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]
        for d in after
        if d["kind"] in {"Deployment", "StatefulSet"}
    }
    assert templates and templates == bumped
    assert "helm.sh/chart" not in str(templates)
