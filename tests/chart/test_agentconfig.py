"""configSource=agentconfig: the controller, its least-privilege RBAC, the AgentConfig rendered
from values, and the Secrets mounted into api and worker pods; and, in both modes, what the
chart hands the service and the controller matches what their settings read."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from agent_service.agentconfig.crd import CONFIG_LABEL
from agent_service.agentconfig.load import parse_agent_config
from agent_service.controller.checks import check_spec
from agent_service.controller.ports import Policy
from agent_service.settings import Settings
from tests.chart import manifests
from tests.chart.manifests import Manifest, container_env
from tests.controller.fakes import FakeCluster

PROFILE = "agentconfig"
FULLNAME = manifests.RELEASE
CONTROLLER = f"{FULLNAME}-controller"
CONFIGMAP = f"{FULLNAME}-config"
APPS = ("api", "worker")
SECRETS_DIR = "/var/run/secrets/agent-service"
EXAMPLE = manifests.K8S_DIR / "examples" / "agentconfig.yaml"
MODEL = {"name": "m", "model": "openai/m"}


def _values(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return manifests.deep_merge(manifests.profile_values(PROFILE), extra or {})


def _render(extra: dict[str, Any] | None = None) -> list[Manifest]:
    return manifests.render_profile(PROFILE, extra)


def _pod(rendered: list[Manifest], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests.one(rendered, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def _rules(rendered: list[Manifest]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = manifests.one(rendered, "Role", CONTROLLER)["rules"]
    return rules


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, tuple[str, ...], str]]:
    """(apiGroup, resource, resourceNames, verb) of every rule, one per combination."""
    return {
        (group, resource, tuple(rule.get("resourceNames", ())), verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# --- the controller --------------------------------------------------------------------------


def test_controller_is_one_replica_recreated(rendered_profiles: dict[str, list[Manifest]]) -> None:
    """Never two controllers at once (kopf runs standalone), and no PDB for the singleton."""
    rendered = rendered_profiles[PROFILE]
    deployment = manifests.one(rendered, "Deployment", CONTROLLER)["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}
    assert not manifests.find(rendered, "PodDisruptionBudget", CONTROLLER)
    autoscaled = {
        m.obj["spec"]["scaleTargetRef"]["name"]
        for m in rendered
        if "scaleTargetRef" in m.obj.get("spec", {})
    }
    assert CONTROLLER not in autoscaled


def test_controller_container(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles[PROFILE]
    pod = _pod(rendered, CONTROLLER)
    (container,) = pod["containers"]
    api = _pod(rendered, f"{FULLNAME}-api")["containers"][0]
    assert container["command"] == ["agent-service", "controller"]
    assert container["image"] == api["image"], "the same image as api and worker by default"
    assert pod["serviceAccountName"] == CONTROLLER
    assert pod["automountServiceAccountToken"] is True
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9100, "health": 8080}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    env = container_env(container)
    assert env["AGENT_CONTROLLER_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["AGENT_CONTROLLER_AGENTCONFIG"] == FULLNAME
    assert env["AGENT_CONTROLLER_CONFIGMAP"] == CONFIGMAP
    assert env["AGENT_CONTROLLER_MOUNTED_SECRETS"] == "llm-keys,tool-tokens"
    assert env["AGENT_CONTROLLER_ALLOWED_TOOL_HOSTS"] == "tools.example.com,*.tools.example.com"
    assert env["AGENT_CONTROLLER_ALLOW_PRIVATE_NETWORKS"] == "false"
    assert env["AGENT_CONTROLLER_LABEL"] == f"agent-service.dev/config={FULLNAME}"
    assert env["AGENT_CONTROLLER_PROBE_MCP_SERVERS"] == "true"
    assert env["AGENT_CONTROLLER_RESYNC_SECONDS"] == "30"
    assert env["AGENT_CONTROLLER_HEALTH_PORT"] == str(ports["health"])
    assert env["AGENT_METRICS_PORT"] == str(ports["metrics"])
    assert env["AGENT_LOG_LEVEL"] == "DEBUG"
    assert "PROMETHEUS_MULTIPROC_DIR" not in env, "one process: plain metrics registry"
    annotations = manifests.one(rendered, "Deployment", CONTROLLER)["spec"]["template"]["metadata"]
    assert annotations["annotations"] == {"example.com/owner": "platform"}


def test_controller_settings_read_what_the_chart_sets(
    rendered_profiles: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller's env, read by the service's own Settings, is the policy the chart meant;
    under it the profile's AgentConfig is accepted, and a Secret not mounted is refused."""
    rendered = rendered_profiles[PROFILE]
    (container,) = _pod(rendered, CONTROLLER)["containers"]
    for name, value in container_env(container).items():
        monkeypatch.setenv(name, value if isinstance(value, str) else manifests.NAMESPACE)
    options = Settings().controller
    assert options.namespace == manifests.NAMESPACE
    resource = manifests.one(rendered, "AgentConfig", FULLNAME)
    assert options.agentconfig == resource["metadata"]["name"]
    assert options.health_port == 8080 and options.resync_seconds == 30
    assert options.selector == (CONFIG_LABEL, resource["metadata"]["name"])
    assert options.probe_mcp_servers is True
    policy = Policy(
        configmap=options.configmap,
        mounted_secrets=frozenset(options.mounted_secrets or ()),
        allowed_tool_hosts=tuple(options.allowed_tool_hosts),
        allow_private_networks=options.allow_private_networks,
        agentconfig=options.agentconfig,
        label=options.selector,
    )
    assert policy.mounted_secrets == {"llm-keys", "tool-tokens"}
    assert policy.allowed_tool_hosts == ("tools.example.com", "*.tools.example.com")

    cluster = FakeCluster(
        secrets={name: {"openai"} for name in ("llm-keys", "tool-tokens", "elsewhere")}
    )
    spec = copy.deepcopy(resource["spec"])
    config, problems = check_spec(spec, cluster, policy)
    assert config is not None and problems == []
    spec["models"][0]["apiKey"]["secretKeyRef"]["name"] = "elsewhere"
    _, problems = check_spec(spec, cluster, policy)
    assert [p.reason for p in problems] == ["SecretNotMounted"]


def test_controller_image_can_be_overridden() -> None:
    rendered = _render({"controller": {"image": {"repository": "registry.example.com/ctl"}}})
    (container,) = _pod(rendered, CONTROLLER)["containers"]
    assert container["image"] == "registry.example.com/ctl:0.1.0"
    rendered = _render({"controller": {"image": {"tag": "0.2.0", "pullPolicy": "Always"}}})
    (container,) = _pod(rendered, CONTROLLER)["containers"]
    assert container["image"] == "ghcr.io/agent-service/agent-service:0.2.0"
    assert container["imagePullPolicy"] == "Always"
    api = _pod(rendered, f"{FULLNAME}-api")["containers"][0]
    assert api["image"] == "ghcr.io/agent-service/agent-service:0.1.0"


def test_controller_scheduling_and_resources() -> None:
    scheduling = {
        "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "resources": {"requests": {"cpu": "50m", "memory": "200Mi"}, "limits": {"memory": "1Gi"}},
    }
    pod = _pod(_render({"controller": scheduling}), CONTROLLER)
    for key in ("nodeSelector", "tolerations", "affinity"):
        assert pod[key] == scheduling[key], key
    assert pod["containers"][0]["resources"] == scheduling["resources"]


# --- RBAC ------------------------------------------------------------------------------------


def test_role_grants_exactly_what_the_controller_needs(
    rendered_profiles: dict[str, list[Manifest]],
) -> None:
    rendered = rendered_profiles[PROFILE]
    secrets = tuple(manifests.profile_values(PROFILE)["agentConfigSecrets"])
    expected = {
        ("agent-service.dev", "agentconfigs", (), "get"),
        ("agent-service.dev", "agentconfigs", (), "list"),
        ("agent-service.dev", "agentconfigs", (), "watch"),
        ("agent-service.dev", "agentconfigs/status", (), "get"),
        ("agent-service.dev", "agentconfigs/status", (), "patch"),
        ("agent-service.dev", "agents", (), "list"),
        ("agent-service.dev", "agents", (), "watch"),
        ("agent-service.dev", "agents/status", (), "patch"),
        ("agent-service.dev", "mcpservers", (), "list"),
        ("agent-service.dev", "mcpservers", (), "watch"),
        ("agent-service.dev", "mcpservers/status", (), "patch"),
        ("", "configmaps", (), "create"),
        ("", "configmaps", (CONFIGMAP,), "get"),
        ("", "configmaps", (CONFIGMAP,), "update"),
        ("", "configmaps", (CONFIGMAP,), "patch"),
        ("", "secrets", secrets, "get"),
        ("", "events", (), "create"),
        ("events.k8s.io", "events", (), "create"),
    }
    rules = _rules(rendered)
    assert _grants(rules) == expected
    assert "*" not in str(rules)
    binding = manifests.one(rendered, "RoleBinding", CONTROLLER)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": CONTROLLER,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": CONTROLLER, "namespace": manifests.NAMESPACE}
    ]
    account = manifests.one(rendered, "ServiceAccount", CONTROLLER)
    assert account["automountServiceAccountToken"] is False, "only the controller pod opts in"


@pytest.mark.parametrize(
    "secrets", [[], ["llm-keys"], ["a", "b.c", "d"]], ids=["none", "one", "three"]
)
def test_secrets_rule_names_exactly_the_mounted_secrets(secrets: list[str]) -> None:
    values = _values()
    values["agentConfigSecrets"] = secrets
    values["agentConfig"]["models"] = [MODEL]
    values["agentConfig"]["defaultModel"] = "m"
    rendered = manifests.render(values)
    secret_rules = [r for r in _rules(rendered) if "secrets" in r["resources"]]
    if not secrets:
        assert secret_rules == [], "no Secret may be read when none is mounted"
    else:
        (rule,) = secret_rules
        assert rule == {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": secrets,
            "verbs": ["get"],
        }
    env = container_env(_pod(rendered, CONTROLLER)["containers"][0])
    assert env["AGENT_CONTROLLER_MOUNTED_SECRETS"] == ",".join(secrets)


@pytest.mark.parametrize("profile", manifests.profiles())
def test_no_cluster_scoped_rbac(profile: str, rendered_profiles: dict[str, list[Manifest]]) -> None:
    kinds = {m.kind for m in rendered_profiles[profile]}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, profile
    for m in manifests.find(rendered_profiles[profile], "RoleBinding"):
        assert m.obj["roleRef"]["kind"] == "Role", m


VALUES_MODE_PROFILES = [
    name
    for name in manifests.profiles()
    if manifests.profile_values(name).get("configSource", "values") == "values"
]


def test_profiles_cover_both_modes() -> None:
    assert PROFILE not in VALUES_MODE_PROFILES
    assert {"default", "production", "minimal"} <= set(VALUES_MODE_PROFILES)


@pytest.mark.parametrize("profile", VALUES_MODE_PROFILES)
def test_values_mode_has_no_controller(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    """The default mode needs no CRD and no controller: a plain install renders neither (other
    Roles may exist: the secret generator hook's, the workers' pod-deletion-cost one)."""
    rendered = rendered_profiles[profile]
    assert not manifests.find(rendered, "AgentConfig")
    assert not [m for m in rendered if m.name == CONTROLLER]
    for m in manifests.find(rendered, "Role"):
        groups = {group for rule in m.obj["rules"] for group in rule["apiGroups"]}
        assert "agent-service.dev" not in groups, m


# --- the AgentConfig and its ConfigMap -------------------------------------------------------


def test_agentconfig_spec_is_the_agentconfig_value(
    rendered_profiles: dict[str, list[Manifest]],
) -> None:
    rendered = rendered_profiles[PROFILE]
    resource = manifests.one(rendered, "AgentConfig", FULLNAME)
    assert resource["apiVersion"] == "agent-service.dev/v1alpha1"
    assert resource["spec"] == manifests.profile_values(PROFILE)["agentConfig"]
    assert resource["metadata"]["namespace"] == manifests.NAMESPACE
    # The service accepts it as a config file too (stricter than the CRD schema).
    parse_agent_config(yaml.safe_dump(resource["spec"]), PROFILE)
    manifests.validate_crd(resource)


def test_agentconfig_is_rendered_without_the_api_listed() -> None:
    """Not gated on capabilities: with crds.install the chart's crds subchart provides the API,
    but a render (offline, or Helm's own before it installs crds/) does not list it."""
    values = _values()
    values.pop("apiVersions")
    rendered = manifests.render(values)
    assert manifests.one(rendered, "AgentConfig", FULLNAME)
    assert not manifests.find(rendered, "ServiceMonitor"), "monitors stay gated"


def test_agentconfig_mode_needs_the_crd() -> None:
    """Without crds.install the CRD must already be served (a cluster admin applied it), or the
    release would wait forever for a config nobody can write."""
    values = manifests.deep_merge(_values(), {"crds": {"install": False}})
    with pytest.raises(helm_python.HelmRenderError, match="needs the AgentConfig CRD"):
        manifests.render(values)
    values["apiVersions"] = [*values["apiVersions"], "agent-service.dev/v1alpha1"]
    assert manifests.one(manifests.render(values), "AgentConfig", FULLNAME)


def test_agentconfig_resource_can_be_left_to_the_user() -> None:
    rendered = _render({"agentConfigResource": {"create": False}})
    assert not manifests.find(rendered, "AgentConfig")
    assert manifests.one(rendered, "Deployment", CONTROLLER)
    # The pods still mount the ConfigMap the controller will write.
    assert {"name": "config", "configMap": {"name": CONFIGMAP}} in _pod(
        rendered, f"{FULLNAME}-api"
    )["volumes"]
    # And no agentConfig is needed then (nor a simulator).
    values = _values({"agentConfigResource": {"create": False}, "llmSimulator": {"enabled": False}})
    values["agentConfig"] = {}
    values["agentConfigSecrets"] = []
    assert manifests.one(manifests.render(values), "Deployment", CONTROLLER)


def test_no_config_configmap_in_agentconfig_mode(
    rendered_profiles: dict[str, list[Manifest]],
) -> None:
    """The controller writes <fullname>-config; the chart must not own (and fight over) it."""
    rendered = rendered_profiles[PROFILE]
    assert not manifests.find(rendered, "ConfigMap", CONFIGMAP)
    for app in APPS:
        pod = _pod(rendered, f"{FULLNAME}-{app}")
        (container,) = pod["containers"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"] == {"name": "config", "configMap": {"name": CONFIGMAP}}, app
        assert "optional" not in volumes["config"]["configMap"], "pods wait for the ConfigMap"
        assert container_env(container)["AGENT_CONFIG_FILE"] == "/etc/agent-service/config.yaml"
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["config"] == {
            "name": "config",
            "mountPath": "/etc/agent-service",
            "readOnly": True,
        }


def test_switching_modes_keeps_the_mount() -> None:
    """values and agentconfig mount the same ConfigMap at the same place: an upgrade from one
    to the other changes where the file comes from, not where the pods read it."""
    by_controller = _render()
    from_values = _render({"configSource": "values"})
    assert manifests.find(from_values, "ConfigMap", CONFIGMAP)
    for app in APPS:
        a, b = (_pod(r, f"{FULLNAME}-{app}") for r in (by_controller, from_values))
        assert a["volumes"] == b["volumes"], app
        assert a["containers"][0]["volumeMounts"] == b["containers"][0]["volumeMounts"], app


# --- Secrets mounted into the pods -----------------------------------------------------------


@pytest.mark.parametrize("source", ["agentconfig", "values"])
def test_secrets_are_mounted_where_the_service_reads_them(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Secret of agentConfigSecrets is a read-only volume at
    AGENT_CONFIG_SECRETS_DIR/<name>, so `secretKeyRef: {name, key}` resolves to a mounted file,
    in both config modes."""
    rendered = _render({"configSource": source})
    secrets = manifests.profile_values(PROFILE)["agentConfigSecrets"]
    for app in APPS:
        pod = _pod(rendered, f"{FULLNAME}-{app}")
        (container,) = pod["containers"]
        env = container_env(container)
        assert env["AGENT_CONFIG_SECRETS_DIR"] == SECRETS_DIR
        for name, value in env.items():
            if isinstance(value, str) and name.startswith("AGENT_CONFIG_"):
                monkeypatch.setenv(name, value)
        secrets_dir = Settings().config.secrets_dir
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted = {}
        for mount in container["volumeMounts"]:
            volume = volumes[mount["name"]]
            # The client keys file (api) and the like are mounted elsewhere (test_auth.py).
            if "secret" in volume and mount["name"].startswith("config-secret-"):
                assert mount["readOnly"] is True, mount
                assert volume["secret"]["defaultMode"] == 0o440
                assert "optional" not in volume["secret"]
                mounted[volume["secret"]["secretName"]] = Path(mount["mountPath"])
        assert list(mounted) == secrets, app
        for name in secrets:
            assert secrets_dir / name / "openai" == mounted[name] / "openai", (app, name)


def test_no_secrets_no_secret_volumes(rendered_profiles: dict[str, list[Manifest]]) -> None:
    """No agentConfigSecrets, no config Secret volumes (the api's client keys file aside)."""
    for app in APPS:
        pod = _pod(rendered_profiles["default"], f"{FULLNAME}-{app}")
        secrets = {v["name"] for v in pod["volumes"] if "secret" in v or "projected" in v}
        wanted = {"redis-credentials"} | ({"client-keys"} if app == "api" else set())
        assert secrets == wanted, app


# --- network policy, monitoring, notes -------------------------------------------------------


def test_controller_network_policy(rendered_profiles: dict[str, list[Manifest]]) -> None:
    spec = manifests.one(rendered_profiles[PROFILE], "NetworkPolicy", CONTROLLER)["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "monitoring"
    ]
    dns, api_server, mcp = spec["egress"]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert {(p["port"], p["protocol"]) for p in api_server["ports"]} == {
        (443, "TCP"),
        (6443, "TCP"),
    }
    assert "to" not in api_server, "the API server's address is not known: any address"
    # MCP servers are probed where api and worker pods reach tools (llmEgress).
    assert mcp == {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }

    narrowed = _render({"networkPolicy": {"kubeApiEgress": {"cidrs": ["172.18.0.2/32"]}}})
    spec = manifests.one(narrowed, "NetworkPolicy", CONTROLLER)["spec"]
    assert spec["egress"][1]["to"] == [{"ipBlock": {"cidr": "172.18.0.2/32"}}]

    extra = {"to": [{"namespaceSelector": {}}], "ports": [{"port": 8200, "protocol": "TCP"}]}
    widened = _render({"networkPolicy": {"extraEgress": [extra]}})
    assert manifests.one(widened, "NetworkPolicy", CONTROLLER)["spec"]["egress"][-1] == extra
    quiet = _render(
        {"controller": {"probeMcpServers": False}, "networkPolicy": {"extraEgress": [extra]}}
    )
    spec = manifests.one(quiet, "NetworkPolicy", CONTROLLER)["spec"]
    assert len(spec["egress"]) == 2, "no probes, no egress but DNS and the API server"
    (container,) = _pod(quiet, CONTROLLER)["containers"]
    assert container_env(container)["AGENT_CONTROLLER_PROBE_MCP_SERVERS"] == "false"


def test_controller_service_monitor_is_gated_like_the_others(
    rendered_profiles: dict[str, list[Manifest]],
) -> None:
    monitor = manifests.one(rendered_profiles[PROFILE], "ServiceMonitor", CONTROLLER)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    service = manifests.one(rendered_profiles[PROFILE], "Service", CONTROLLER)
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    values = _values()
    values.pop("apiVersions")
    assert not manifests.find(manifests.render(values), "ServiceMonitor", CONTROLLER)
    assert not manifests.find(
        _render({"serviceMonitor": {"enabled": False}}), "ServiceMonitor", CONTROLLER
    )


def test_notes_show_the_agentconfig_and_the_controller_logs() -> None:
    notes = manifests.render_raw(_values())["agent-service/templates/NOTES.txt"]
    assert (
        f"kubectl -n {manifests.NAMESPACE} get agentconfigs,agents.agent-service.dev,"
        "mcpservers.agent-service.dev" in notes
    )
    assert f"labelled agent-service.dev/config={FULLNAME}" in notes
    assert f"kubectl -n {manifests.NAMESPACE} logs deploy/{CONTROLLER}" in notes
    plain = manifests.render_raw({})["agent-service/templates/NOTES.txt"]
    assert "agentconfigs" not in plain


# --- the example AgentConfig -----------------------------------------------------------------


def test_example_agentconfig_fits_the_default_release() -> None:
    """k8s/examples/agentconfig.yaml is what docs/operator.md applies to the release
    `agent-service`: its name is what that release's controller watches, its simulator model
    points at that release's simulator Service, and as the chart's agentConfig (with its Secret
    listed) it renders unchanged."""
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    values = {
        "configSource": "agentconfig",
        "crds": {"install": True},
        "agentConfig": example["spec"],
        "agentConfigSecrets": ["llm-keys"],
    }
    rendered = manifests.render(values)
    env = container_env(_pod(rendered, CONTROLLER)["containers"][0])
    assert example["metadata"]["name"] == env["AGENT_CONTROLLER_AGENTCONFIG"]
    resource = manifests.one(rendered, "AgentConfig", example["metadata"]["name"])
    assert resource["spec"] == example["spec"]
    simulator = container_env(_pod(rendered, f"{FULLNAME}-api")["containers"][0])["AGENT_SIM_URL"]
    bases = {m.get("apiBase") for m in example["spec"]["models"]} - {None}
    assert bases == {simulator}


def test_example_agent_and_mcp_server_join_the_default_release() -> None:
    """k8s/examples/agent.yaml and mcpserver.yaml carry the label the default release's
    controller selects, and the MCPServer reaches k8s/examples/mcp-demo.yaml's Service."""
    rendered = manifests.render({**_values(), "agentConfigSecrets": []} | {"agentConfig": {
        "defaultModel": "m", "models": [MODEL]}})  # fmt: skip
    env = container_env(_pod(rendered, CONTROLLER)["containers"][0])
    key, _, value = env["AGENT_CONTROLLER_LABEL"].partition("=")
    demo_file = manifests.K8S_DIR / "examples" / "mcp-demo.yaml"
    demo = list(yaml.safe_load_all(demo_file.read_text()))
    service = next(d for d in demo if d["kind"] == "Service")
    for name in ("agent.yaml", "mcpserver.yaml"):
        example = yaml.safe_load((manifests.K8S_DIR / "examples" / name).read_text())
        assert example["metadata"]["labels"][key] == value, name
        manifests.validate_crd(example)
    server = yaml.safe_load((manifests.K8S_DIR / "examples" / "mcpserver.yaml").read_text())
    assert server["spec"]["url"].startswith(f"http://{service['metadata']['name']}:")
