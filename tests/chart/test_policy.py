"""Policies every rendered profile must satisfy: restricted security contexts, resources, probes,
pinned images, stable selectors, and no spec.replicas on a Deployment an autoscaler owns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart import manifests
from tests.chart.manifests import Manifest, container_env

PROFILES = manifests.profiles()
SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
APP_COMPONENTS = {"api", "worker"}


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _is_one_shot(m: Manifest) -> bool:
    """helm test hooks, Jobs and CronJobs run to completion: no probes."""
    annotations = m.obj["metadata"].get("annotations") or {}
    return m.kind in {"Job", "CronJob"} or "helm.sh/hook" in annotations


def _component(m: Manifest) -> str:
    if m.kind == "Pod":
        return str(m.obj["metadata"]["labels"]["app.kubernetes.io/component"])
    spec = m.obj["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if m.kind == "CronJob" else spec["template"]
    return str(template["metadata"]["labels"]["app.kubernetes.io/component"])


def _api_clients(profile: str) -> set[str]:
    """Components that talk to the Kubernetes API: the controller, the secret generator hook,
    and workers that keep their pod's deletion cost."""
    values = manifests.deep_merge(manifests.chart().values, manifests.profile_values(profile))
    clients = {"controller", "secret-generator"}
    if values["worker"]["podDeletionCost"]["enabled"]:
        clients.add("worker")
    return clients


@pytest.mark.parametrize("profile", PROFILES)
def test_pods_are_restricted(profile: str, rendered_profiles: dict[str, list[Manifest]]) -> None:
    for m, spec in manifests.pod_specs(rendered_profiles[profile]):
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, f"{m}: pod runAsNonRoot"
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{m}: seccomp"
        assert isinstance(pod_sc.get("runAsUser"), int) and pod_sc["runAsUser"] > 0, m
        component = _component(m)
        if component in _api_clients(profile):
            # Pods that talk to the Kubernetes API do it as a ServiceAccount of their own.
            assert spec.get("automountServiceAccountToken") is True, f"{m}: no token"
            assert spec["serviceAccountName"] == f"{manifests.RELEASE}-{component}", m
        else:
            assert spec.get("automountServiceAccountToken") is False, f"{m}: token mounted"
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), m
        for c in _containers(spec):
            where = f"{m} container {c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            user = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert isinstance(user, int) and user > 0, f"{where}: numeric non-root runAsUser"
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation"
            assert not sc.get("privileged"), f"{where}: privileged"
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), f"{where}: drop ALL"
            assert not sc.get("capabilities", {}).get("add"), f"{where}: capabilities added"
            mounts = {v["mountPath"]: v["name"] for v in c.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            assert "/tmp" in mounts, f"{where}: no writable /tmp"
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp is not an emptyDir"


@pytest.mark.parametrize("profile", PROFILES)
def test_containers_have_resources_probes_and_pinned_images(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    for m, spec in manifests.pod_specs(rendered_profiles[profile]):
        for c in _containers(spec):
            where = f"{m} container {c['name']}"
            requests = c.get("resources", {}).get("requests", {})
            limits = c.get("resources", {}).get("limits", {})
            assert {"cpu", "memory"} <= set(requests), f"{where}: cpu and memory requests"
            assert "memory" in limits, f"{where}: memory limit"
            image = c["image"]
            name = image.split("@")[0].rsplit("/", 1)[-1]
            assert ":" in name or "@sha256:" in image, f"{where}: image {image} is not pinned"
            assert not name.endswith(":latest"), f"{where}: image {image} uses latest"
            assert c.get("imagePullPolicy") in {"IfNotPresent", "Always", "Never"}, where
            if not _is_one_shot(m):
                assert "livenessProbe" in c, f"{where}: no livenessProbe"
                assert "readinessProbe" in c, f"{where}: no readinessProbe"


@pytest.mark.parametrize("profile", PROFILES)
def test_app_containers_environment(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    """api and worker: offline LiteLLM price map, multiprocess metrics dir on its own emptyDir,
    exec-form commands (the process is PID 1 and gets SIGTERM)."""
    seen = set()
    for m, spec in manifests.pod_specs(rendered_profiles[profile]):
        component = _component(m)
        if component not in APP_COMPONENTS:
            continue
        seen.add(component)
        (container,) = spec["containers"]
        env = container_env(container)
        assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True", m
        assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus", m
        mounts = {v["mountPath"]: v["name"] for v in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp/prometheus"]], m
        assert container["command"] == ["agent-service", component], m
        assert "AGENT_REDIS_URL" in env, m
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 9100, m
    assert seen == APP_COMPONENTS


@pytest.mark.parametrize("profile", PROFILES)
def test_worker_shutdown_outlives_a_run(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    values = manifests.profile_values(profile)
    run_timeout = values.get("agentConfig", {}).get("limits", {}).get("runTimeoutSeconds", 120)
    worker = manifests.one(rendered_profiles[profile], "Deployment", "agent-service-worker")
    spec = worker["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > run_timeout + 30
    (container,) = spec["containers"]
    env = container_env(container)
    # The probe files live on an emptyDir of their own (the worker removes them at start).
    assert env["AGENT_WORKER_HEARTBEAT_FILE"] == "/run/agent-service/heartbeat"
    assert env["AGENT_WORKER_READY_FILE"] == "/run/agent-service/ready"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/run/agent-service"]]["emptyDir"] == {
        "medium": "Memory",
        "sizeLimit": "1Mi",
    }
    liveness = " ".join(container["livenessProbe"]["exec"]["command"])
    assert "/run/agent-service/heartbeat" in liveness and "-lt 60" in liveness
    assert container["startupProbe"]["exec"]["command"] == [
        "test",
        "-f",
        "/run/agent-service/heartbeat",
    ]
    assert container["readinessProbe"]["exec"]["command"] == [
        "test",
        "-f",
        "/run/agent-service/ready",
    ]


@pytest.mark.parametrize("profile", PROFILES)
def test_selectors_hold_only_stable_labels(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    for m in rendered_profiles[profile]:
        selector = None
        if m.kind in {"Deployment", "StatefulSet", "PodDisruptionBudget", "ServiceMonitor"}:
            selector = m.obj["spec"]["selector"]["matchLabels"]
        elif m.kind == "Service":
            selector = m.obj["spec"]["selector"]
        if selector is None:
            continue
        assert set(selector) == SELECTOR_KEYS, f"{m}: selector {selector}"
        assert selector["app.kubernetes.io/instance"] == manifests.RELEASE
        if m.kind in {"Deployment", "StatefulSet"}:
            pod_labels = m.obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= pod_labels.items(), m


def test_selectors_do_not_change_with_version() -> None:
    """Selectors are immutable: a new image tag or app version must not touch them."""

    def selectors(values: dict[str, Any]) -> dict[str, Any]:
        return {
            str(m): m.obj["spec"]["selector"]
            for m in manifests.render(values)
            if m.kind in {"Deployment", "StatefulSet"}
        }

    assert selectors({}) == selectors({"image": {"tag": "9.9.9"}, "commonLabels": {"x": "y"}})


def _autoscaled_targets(rendered: list[Manifest]) -> set[str]:
    targets = set()
    for m in rendered:
        if m.kind == "HorizontalPodAutoscaler" or m.kind == "ScaledObject":
            ref = m.obj["spec"]["scaleTargetRef"]
            assert ref.get("kind", "Deployment") == "Deployment"
            targets.add(ref["name"])
    return targets


@pytest.mark.parametrize("profile", PROFILES)
def test_no_replicas_where_an_autoscaler_owns_the_deployment(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    rendered = rendered_profiles[profile]
    targets = _autoscaled_targets(rendered)
    deployments = {m.name: m.obj for m in manifests.find(rendered, "Deployment")}
    assert targets <= set(deployments), f"autoscaler targets a missing Deployment: {targets}"
    for name, deployment in deployments.items():
        if name in targets:
            assert "replicas" not in deployment["spec"], f"{name}: spec.replicas next to autoscaler"
        else:
            assert "replicas" in deployment["spec"], f"{name}: no autoscaler and no replicas"
    # One autoscaler per Deployment: KEDA refuses a ScaledObject next to another HPA.
    owners = [
        m.obj["spec"]["scaleTargetRef"]["name"]
        for m in rendered
        if m.kind in {"HorizontalPodAutoscaler", "ScaledObject"}
    ]
    assert len(owners) == len(set(owners)), owners


@pytest.mark.parametrize("profile", PROFILES)
def test_pdbs_select_running_pods(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    rendered = rendered_profiles[profile]
    workloads = {m.name: m.obj for m in manifests.find(rendered, "Deployment")}
    for m in manifests.find(rendered, "PodDisruptionBudget"):
        spec = m.obj["spec"]
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), m
        target = workloads[m.name]
        assert spec["selector"] == target["spec"]["selector"], m


@pytest.mark.parametrize("profile", PROFILES)
def test_services_name_their_ports_and_monitors_find_them(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    rendered = rendered_profiles[profile]
    services = manifests.find(rendered, "Service")
    for m in services:
        for port in m.obj["spec"]["ports"]:
            assert port.get("name"), f"{m}: unnamed port {port}"
    for m in manifests.find(rendered, "ServiceMonitor"):
        wanted = m.obj["spec"]["selector"]["matchLabels"]
        matched = [s for s in services if wanted.items() <= s.obj["metadata"]["labels"].items()]
        assert len(matched) == 1, f"{m} selects {[str(s) for s in matched]}"
        port_names = {p["name"] for p in matched[0].obj["spec"]["ports"]}
        for endpoint in m.obj["spec"]["endpoints"]:
            assert endpoint["port"] in port_names, f"{m}: no port {endpoint['port']}"


@pytest.mark.parametrize("profile", PROFILES)
def test_checksum_annotations_roll_app_pods(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    """Secrets and the Redis address roll the pods; the agent config only when asked to (the
    pods hot-reload it), and never in agentconfig mode (the chart does not render it)."""
    values = manifests.deep_merge(manifests.chart().values, manifests.profile_values(profile))
    wanted = values["configReload"]["restartOnChange"] and values["configSource"] == "values"
    for m in manifests.find(rendered_profiles[profile], "Deployment"):
        if _component(m) in APP_COMPONENTS:
            annotations = m.obj["spec"]["template"]["metadata"]["annotations"]
            assert {"checksum/llm-secret", "checksum/redis-auth"} <= set(annotations), m
            assert ("checksum/config" in annotations) == wanted, m


def _app_pod_templates(values: dict[str, Any]) -> dict[str, Any]:
    rendered = manifests.render(values)
    return {
        name: manifests.one(rendered, "Deployment", f"{manifests.RELEASE}-{name}")["spec"][
            "template"
        ]
        for name in sorted(APP_COMPONENTS)
    }


@pytest.mark.parametrize("restart", [False, True], ids=["hot-reload", "restart-on-change"])
def test_config_change_rolls_the_pods_only_with_restart_on_change(restart: bool) -> None:
    """A config-only upgrade leaves the api and worker pod templates untouched (no rollout: the
    pods reload the ConfigMap), unless configReload.restartOnChange asks for a rollout."""
    config = manifests.deep_merge(
        manifests.profile_values("minimal"), {"configReload": {"restartOnChange": restart}}
    )
    changed = manifests.deep_merge(config, {"agentConfig": {"systemPrompt": "Be brief."}})
    before, after = _app_pod_templates(config), _app_pod_templates(changed)
    for name in APP_COMPONENTS:
        annotations = before[name]["metadata"]["annotations"]
        assert ("checksum/config" in annotations) is restart, name
        assert (before[name] != after[name]) is restart, name
        if restart:
            rolled = after[name]["metadata"]["annotations"]["checksum/config"]
            assert annotations["checksum/config"] != rolled, name
