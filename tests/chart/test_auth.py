"""Credentials in the chart: the client keys (api pods only), the helm test pod's key and that
the API accepts it, the /metrics token and the ServiceMonitors that send it, the webhook
settings and the workers' egress to receivers. The environment the chart renders is read back
through the service's own ``Settings`` and key parsers, the hook Job's command is run by the
service's own ``ensure-secret`` code (tests/chart/secret_hook.py), and the pods' volumes are
built from its Secrets as the kubelet would: a misnamed variable, a keys file the service
would reject or a Secret nobody creates fails here."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_service.agentconfig.load import parse_agent_config
from agent_service.api.auth import KeyRing, read_keys_file
from agent_service.settings import Settings
from tests.chart import manifests, secret_hook
from tests.chart.manifests import Manifest, container_env

FULLNAME = manifests.RELEASE
API, WORKER, CONTROLLER = (f"{FULLNAME}-{c}" for c in ("api", "worker", "controller"))
KEYS_SECRET = f"{FULLNAME}-client-keys"
TEST_KEY_SECRET = f"{FULLNAME}-test-key"
TOKEN_SECRET = f"{FULLNAME}-metrics-token"
TEST_POD = f"{FULLNAME}-test-api"
MONITORING = ["monitoring.coreos.com/v1"]
HASH_A = hashlib.sha256(b"ak_team-a-example").hexdigest()
MODEL = {"defaultModel": "m", "models": [{"name": "m", "model": "openai/m"}]}


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = spec["containers"][0]
    return container


def _pods(rendered: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {m.name: spec for m, spec in manifests.pod_specs(rendered)}


def _secret_data(rendered: list[Manifest], name: str) -> dict[str, str]:
    data = manifests.one(rendered, "Secret", name)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def _mounted_file(spec: dict[str, Any], path: str) -> tuple[str, str]:
    """(Secret name, key) behind the file ``path`` of the pod's first container, which must be
    a read-only Secret (or projected) volume mounted as a directory (a subPath mount would
    never update)."""
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in _container(spec)["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(prefix):
            continue
        assert mount.get("readOnly") is True, mount
        assert "subPath" not in mount, mount
        volume = volumes[mount["name"]]
        if "projected" in volume:
            assert volume["projected"]["defaultMode"] == 0o440, volume
            sources = [s["secret"] for s in volume["projected"]["sources"]]
        else:
            assert volume["secret"]["defaultMode"] == 0o440, volume
            sources = [{"name": volume["secret"]["secretName"], **volume["secret"]}]
        for source in sources:
            for item in source["items"]:
                if item["path"] == path.removeprefix(prefix):
                    return source["name"], item["key"]
    raise AssertionError(f"nothing mounted at {path}")


def _settings(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The service's settings from the container's AGENT_* variables: literal values, and the
    pod's own name and namespace where the downward API gives them (the kubelet fills them in)."""
    for name, value in container_env(container).items():
        if not name.startswith("AGENT_"):
            continue
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
        elif isinstance(value, dict) and "fieldRef" in value:
            monkeypatch.setenv(name, f"from-{value['fieldRef']['fieldPath']}")
    return Settings()


def _api_keyring(rendered: list[Manifest], secrets: secret_hook.Secrets, tmp_path: Path) -> KeyRing:
    """The keys the API accepts: its keys directory, built from ``secrets`` as the kubelet
    builds the projected volume, and the rendered agent config's apiKeys."""
    api = _pods(rendered)[API]
    container = _container(api)
    mounted = secret_hook.materialize(api, container, secrets, tmp_path / "api")
    keys = secret_hook.local_path(mounted, container_env(container)["AGENT_AUTH_KEYS_FILE"])
    config_keys: list[Any] = []
    configmaps = manifests.find(rendered, "ConfigMap", f"{FULLNAME}-config")
    resources = manifests.find(rendered, "AgentConfig", FULLNAME)
    if configmaps:
        config_keys = parse_agent_config(configmaps[0].obj["data"]["config.yaml"]).api_keys
    elif resources:
        config_keys = parse_agent_config(yaml.safe_dump(resources[0].obj["spec"])).api_keys
    return KeyRing(keys, lambda: config_keys)


def _test_key(rendered: list[Manifest], secrets: secret_hook.Secrets) -> str:
    """The key the helm test pod sends, read from its mounted file."""
    pod = manifests.one(rendered, "Pod", TEST_POD)["spec"]
    secret, key = _mounted_file(pod, container_env(_container(pod))["API_KEY_FILE"])
    return secrets[secret][key].decode()


# --- the client keys file ----------------------------------------------------------------------


@pytest.mark.parametrize("profile", manifests.profiles())
def test_keys_directory_is_mounted_into_api_pods_only(
    profile: str, rendered_profiles: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = rendered_profiles[profile]
    values = manifests.deep_merge(manifests.chart().values, manifests.profile_values(profile))
    pods = _pods(rendered)
    api = _container(pods[API])
    settings = _settings(api, monkeypatch)
    assert settings.auth.enabled is True
    assert settings.auth.keys_file is not None
    keys_dir = str(settings.auth.keys_file)
    secret, key = _mounted_file(pods[API], f"{keys_dir}/keys.yaml")
    wanted = values["clientAuth"]["existingSecret"] or KEYS_SECRET
    assert (secret, key) == (wanted, values["clientAuth"]["existingSecretKey"])
    if values["tests"]["enabled"] and not values["tests"]["apiKeySecret"]:
        assert _mounted_file(pods[API], f"{keys_dir}/helm-test.yaml") == (
            TEST_KEY_SECRET,
            "keys.yaml",
        )
    for name, spec in pods.items():
        env = container_env(_container(spec))
        assert "AGENT_AUTH_API_KEYS" not in env, f"{name}: the old variable"
        if name == API:
            continue
        assert "AGENT_AUTH_KEYS_FILE" not in env, name
        volumes = json.dumps(spec.get("volumes", []))
        assert f'"{secret}"' not in volumes, f"{name} mounts the client keys"


@pytest.mark.parametrize("profile", manifests.profiles())
def test_chart_made_keys_file_is_valid_and_holds_only_hashes(
    profile: str, rendered_profiles: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    rendered = rendered_profiles[profile]
    if not manifests.find(rendered, "Secret", KEYS_SECRET):
        pytest.skip(f"{profile}: the keys file is an existing Secret")
    text = _secret_data(rendered, KEYS_SECRET)["keys.yaml"]
    path = tmp_path / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    keys = read_keys_file(path)  # the service's own parser
    assert all(k.key is None and k.sha256 for k in keys), "a key itself in the keys file"
    values = manifests.profile_values(profile)
    wanted = {
        (k["tenant"], k["sha256"], k.get("role", "tenant"))
        for k in values.get("clientAuth", {}).get("keys", [])
    }
    assert {(k.tenant, k.sha256, k.role) for k in keys} == wanted


# --- the helm test pod's key -------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="chart-made-keys-file"),
        pytest.param(
            {"clientAuth": {"keys": [{"tenant": "team-a", "sha256": HASH_A}]}}, id="with-keys"
        ),
        pytest.param({"clientAuth": {"existingSecret": "my-keys"}}, id="existing-secret"),
        pytest.param(
            {
                "clientAuth": {"existingSecret": "my-keys", "existingSecretKey": "k.yaml"},
                "configSource": "agentconfig",
                "crds": {"install": True},
                "agentConfig": MODEL | {"apiKeys": [{"tenant": "team-a", "sha256": HASH_A}]},
            },
            id="existing-secret-agentconfig",
        ),
    ],
)
def test_the_api_accepts_the_test_pods_key(values: dict[str, Any], tmp_path: Path) -> None:
    """The hook Job generates the key; the api mounts its entry next to whatever keys file it
    has (the chart's or the user's: `my-keys` stands in for it here), so the helm test pod's key
    is accepted, as tenant helm-test, in every case, and nothing else is."""
    rendered = manifests.render(values)
    existing = {"my-keys": {"keys.yaml": b"keys: []\n", "k.yaml": b"keys: []\n"}}
    secrets = secret_hook.run(rendered, existing)
    key = _test_key(rendered, secrets)
    assert len(key) >= 16
    keyring = _api_keyring(rendered, secrets, tmp_path)
    caller = keyring.lookup(key)
    assert caller is not None, "the helm test pod's key is not among the API's keys"
    assert caller.tenant == "helm-test"
    assert keyring.lookup(key + "x") is None


def test_renders_hold_no_generated_value() -> None:
    """Two renders are identical (no key, token or password drawn at render time); the hook
    generates once, and running it again (every helm upgrade does) changes nothing."""
    values = {"metrics": {"auth": {"enabled": True}}}
    first, again = manifests.render_raw(values), manifests.render_raw(values)
    assert first == again
    rendered = manifests.render(values)
    names = {m.name for m in manifests.find(rendered, "Secret")}
    assert not names & {TEST_KEY_SECRET, TOKEN_SECRET, f"{FULLNAME}-redis"}, "rendered, not hooked"
    secrets = secret_hook.run(rendered)
    assert {TEST_KEY_SECRET, TOKEN_SECRET, f"{FULLNAME}-redis"} <= set(secrets)
    assert secret_hook.run(rendered, secrets) == secrets, "a value changed on the next upgrade"


def test_test_key_from_an_existing_secret() -> None:
    values = {"clientAuth": {"existingSecret": "my-keys"}}
    values |= {"tests": {"apiKeySecret": "ci-key", "apiKeySecretKey": "token"}}
    rendered = manifests.render(values)
    assert not manifests.find(rendered, "Secret"), "no chart-made keys; the rest is generated"
    args = secret_hook.job_args(rendered)
    assert args.specs == [f"{FULLNAME}-redis/redis-password=password"]
    pod = manifests.one(rendered, "Pod", TEST_POD)["spec"]
    assert _mounted_file(pod, container_env(_container(pod))["API_KEY_FILE"]) == ("ci-key", "token")
    api = json.dumps(_pods(rendered)[API]["volumes"])
    assert TEST_KEY_SECRET not in api, "the user's key is in the user's keys file"


def test_without_tests_there_is_no_test_key() -> None:
    rendered = manifests.render({"tests": {"enabled": False}})
    assert not manifests.find(rendered, "Pod", TEST_POD)
    assert "api-key" not in " ".join(secret_hook.job_args(rendered).specs)
    assert TEST_KEY_SECRET not in json.dumps(_pods(rendered)[API]["volumes"])
    keys = yaml.safe_load(_secret_data(rendered, KEYS_SECRET)["keys.yaml"])
    assert keys == {"keys": []}


class _FakeApi(BaseHTTPRequestHandler):
    """/readyz open; POST /v1/chat answers 200 only with ``Bearer <server.key>`` (or to anyone
    when ``server.key`` is None), 401 otherwise. Records the Authorization headers it saw."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/readyz" else 404, {"status": "ready"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        server: Any = self.server
        seen = self.headers.get("authorization")
        server.seen.append(seen)
        if self.path == "/v1/chat" and (server.key is None or seen == f"Bearer {server.key}"):
            self._answer(200, {"answer": "The answer is 84."})
        else:
            self._answer(401, {"error": {"type": "unauthorized"}})


@pytest.fixture
def fake_api() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    server.seen, server.key = [], None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _run_test_pod(rendered: list[Manifest], server: Any, tmp_path: Path, key: str) -> str:
    """Run the helm test pod's script against ``server``, with ``key`` in its key file."""
    pod = manifests.one(rendered, "Pod", TEST_POD)["spec"]
    container = _container(pod)
    assert container["command"][:2] == ["python", "-c"]
    env = {k: v for k, v in container_env(container).items() if isinstance(v, str)}
    env["API_URL"] = f"http://127.0.0.1:{server.server_address[1]}"
    if "API_KEY_FILE" in env:
        key_file = tmp_path / "key"
        key_file.write_text(key, encoding="utf-8")
        env["API_KEY_FILE"] = str(key_file)
    # No proxy variables or other settings of the developer's environment.
    result = subprocess.run(
        [sys.executable, "-c", container["command"][2]],
        env=env | {"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(result.stdout + result.stderr)
    return result.stdout


def test_helm_test_pod_authenticates(fake_api: Any, tmp_path: Path) -> None:
    rendered = manifests.render({})
    key = _test_key(rendered, secret_hook.run(rendered))
    fake_api.key = key
    out = _run_test_pod(rendered, fake_api, tmp_path, key)
    assert "POST /v1/chat without a key: 401" in out and "POST /v1/chat 200" in out
    assert fake_api.seen == [None, f"Bearer {key}"]


def test_helm_test_pod_fails_on_a_wrong_key_or_an_open_api(fake_api: Any, tmp_path: Path) -> None:
    rendered = manifests.render({})
    key = _test_key(rendered, secret_hook.run(rendered))
    fake_api.key = "ak_another-key-entirely"
    with pytest.raises(AssertionError, match="answered 401"):
        _run_test_pod(rendered, fake_api, tmp_path, key)
    fake_api.key = None  # serves anyone: authentication is off
    with pytest.raises(AssertionError, match="authentication is off"):
        _run_test_pod(rendered, fake_api, tmp_path, key)


def test_auth_disabled(fake_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"clientAuth": {"enabled": False}}
    rendered = manifests.render(values)
    api = _pods(rendered)[API]
    settings = _settings(_container(api), monkeypatch)
    assert settings.auth.enabled is False and settings.auth.keys_file is None
    assert not manifests.find(rendered, "Secret", KEYS_SECRET)
    assert "api-key" not in " ".join(secret_hook.job_args(rendered).specs)
    assert "client-keys" not in json.dumps(api["volumes"])
    # The test pod sends no key and expects no 401.
    assert _run_test_pod(rendered, fake_api, tmp_path, "").count("POST /v1/chat 200") == 1
    assert fake_api.seen == [None]
    notes = manifests.render_raw(values)["agent-service/templates/NOTES.txt"]
    assert "WARNING: AUTHENTICATION IS OFF (clientAuth.enabled=false)" in notes
    assert "Authorization: Bearer" not in notes


def test_notes_show_how_to_use_a_key() -> None:
    notes = manifests.render_raw({})["agent-service/templates/NOTES.txt"]
    assert f"kubectl -n agent-service get secret {TEST_KEY_SECRET} -o jsonpath='{{.data.key}}'" in (
        notes
    )
    assert 'curl -s localhost:8000/v1/chat -H "Authorization: Bearer $KEY"' in notes
    assert "sha256sum" in notes and "clientAuth.keys" in notes


# --- the /metrics token ------------------------------------------------------------------------


@pytest.mark.parametrize("existing", ["", "my-token"], ids=["generated", "existing-secret"])
def test_metrics_token_is_mounted_and_sent_by_every_monitor(
    existing: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = {
        "configSource": "agentconfig",
        "crds": {"install": True},
        "agentConfig": MODEL,
        "apiVersions": MONITORING,
        "serviceMonitor": {"enabled": True},
        "redis": {"metrics": {"enabled": True}},
        "metrics": {"auth": {"enabled": True, "existingSecret": existing}},
    }
    rendered = manifests.render(values)
    secret = existing or TOKEN_SECRET
    key = "token"
    specs = secret_hook.job_args(rendered).specs
    assert (f"{TOKEN_SECRET}/token=token" in specs) is not bool(existing)
    secrets = secret_hook.run(rendered, {"my-token": {"token": b"the-users-token"}})
    pods = _pods(rendered)
    for name in (API, WORKER, CONTROLLER):
        settings = _settings(_container(pods[name]), monkeypatch)
        assert settings.auth.metrics_token_file is not None, name
        assert _mounted_file(pods[name], str(settings.auth.metrics_token_file)) == (secret, key)
        mounted = secret_hook.materialize(
            pods[name], _container(pods[name]), secrets, tmp_path / name
        )
        token = secret_hook.local_path(mounted, str(settings.auth.metrics_token_file))
        assert token.read_bytes() == secrets[secret][key], name
    monitors = {m.name: m.obj for m in manifests.find(rendered, "ServiceMonitor")}
    assert set(monitors) == {API, WORKER, CONTROLLER, f"{FULLNAME}-redis"}
    for name, monitor in monitors.items():
        (endpoint,) = monitor["spec"]["endpoints"]
        if name.endswith("-redis"):  # the exporter has no token
            assert "authorization" not in endpoint
        else:
            wanted = {"type": "Bearer", "credentials": {"name": secret, "key": key}}
            assert endpoint["authorization"] == wanted, name
        directory = manifests.crd_schema_dir()
        if directory is not None:
            manifests.validate_crd(monitor, directory)


def test_metrics_are_open_by_default(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["default"]
    for name, spec in _pods(rendered).items():
        assert "AGENT_AUTH_METRICS_TOKEN_FILE" not in container_env(_container(spec)), name
    assert "token=token" not in " ".join(secret_hook.job_args(rendered).specs)


# --- webhooks ----------------------------------------------------------------------------------


def test_webhook_settings_reach_api_and_worker(
    rendered_profiles: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production profile's webhooks values, read back as the service reads them."""
    rendered = rendered_profiles["production"]
    webhooks = manifests.profile_values("production")["webhooks"]
    pods = _pods(rendered)
    for name in (API, WORKER):
        settings = _settings(_container(pods[name]), monkeypatch).webhooks
        assert settings.allowed_hosts == webhooks["allowedHosts"], name
        assert (settings.max_attempts, settings.timeout_seconds) == (5, 5.0), name
        assert settings.allow_http is False and settings.allow_private_networks is False
        assert settings.secret_file is not None, name
        secret = _mounted_file(pods[name], str(settings.secret_file))
        assert secret == (webhooks["existingSecret"], "secret"), name


def test_webhooks_off_by_default() -> None:
    rendered = manifests.render({"networkPolicy": {"enabled": True}})
    for name, spec in _pods(rendered).items():
        assert not [
            e for e in container_env(_container(spec)) if e.startswith("AGENT_WEBHOOKS_")
        ], name
    # No egress rule beyond the api's (which has none for webhooks).
    worker, api = (manifests.one(rendered, "NetworkPolicy", n)["spec"] for n in (WORKER, API))
    assert worker["egress"] == api["egress"]


def test_workers_may_reach_webhook_receivers(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles["production"]
    chart = manifests.chart().values["networkPolicy"]["webhookEgress"]
    worker = manifests.one(rendered, "NetworkPolicy", WORKER)
    (rule,) = [
        r
        for r in worker["spec"]["egress"]
        if r.get("to") and r["to"][0].get("ipBlock", {}).get("except") == chart["except"]
    ]
    assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": chart["except"]}}]
    assert rule["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        chart["except"]
    )
    # Only workers deliver: the api's policy has no such rule.
    api = manifests.one(rendered, "NetworkPolicy", API)
    assert not [r for r in api["spec"]["egress"] if r.get("to") == rule["to"]]
    # Receivers in given ranges, on given ports.
    custom = manifests.render_profile(
        "production",
        {"networkPolicy": {"webhookEgress": {"cidrs": ["203.0.113.0/24"], "except": []}}},
    )
    egress = manifests.one(custom, "NetworkPolicy", WORKER)["spec"]["egress"]
    assert {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": rule["ports"]} in egress
