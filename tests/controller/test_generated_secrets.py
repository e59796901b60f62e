"""``agent-service ensure-secret``: Secrets generated once, never changed.

The logic runs against a fake store (the real API cannot run here); the Kubernetes adapter
against a fake ``CoreV1Api`` that answers like the API server (404, 409, resourceVersion).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import string
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from agent_service.api.auth import read_keys_file
from agent_service.cli import build_parser
from agent_service.controller import generated_secrets as gs
from agent_service.controller.kube import KubeSecrets
from tests.controller.fakes import FakeSecretStore

LABELS = {"app.kubernetes.io/instance": "demo"}
REDIS = gs.SecretSpec("demo-redis", "redis-password", "password")
TOKEN = gs.SecretSpec("demo-metrics-token", "token", "token")
TEST_KEY = gs.SecretSpec("demo-test-key", "key", "api-key", "helm-test")


def _counter() -> gs.Generator:
    """Deterministic values, so that a test can tell a generated value from a kept one."""
    drawn: list[str] = []

    def generate(kind: gs.Kind) -> str:
        drawn.append(kind)
        return f"{kind}-{len(drawn)}"

    return generate


# --- specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("demo-redis/redis-password=password", REDIS),
        ("demo-metrics-token/token=token", TOKEN),
        ("demo-test-key/key=api-key:helm-test", TEST_KEY),
        ("a.b/KEY_1=token", gs.SecretSpec("a.b", "KEY_1", "token")),
    ],
)
def test_parse_spec(text: str, spec: gs.SecretSpec) -> None:
    assert gs.parse_spec(text) == spec
    assert str(spec) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("demo-redis", "expected NAME/KEY=KIND"),
        ("demo/key=secret", "unknown kind 'secret'"),
        ("Demo/key=token", "not a valid Secret name"),
        ("demo/key with space=token", "not a usable key"),
        ("demo/keys.yaml=token", "not a usable key"),
        ("demo/key=api-key", "needs a tenant"),
        ("demo/key=api-key:Team A", "needs a tenant"),
        ("demo/key=token:x", "only api-key takes a tenant"),
    ],
)
def test_bad_specs_are_refused(text: str, reason: str) -> None:
    with pytest.raises(gs.SpecError, match=reason):
        gs.parse_spec(text)


def test_labels() -> None:
    assert gs.parse_labels(["a=b", "c=d=e", "f="]) == {"a": "b", "c": "d=e", "f": ""}
    with pytest.raises(gs.SpecError, match="KEY=VALUE"):
        gs.parse_labels(["novalue"])


def test_a_spec_listed_twice_is_refused() -> None:
    with pytest.raises(gs.SpecError, match="listed twice"):
        gs.ensure_secrets(FakeSecretStore(), [REDIS, REDIS], LABELS)
    other_key = gs.SecretSpec(TEST_KEY.name, "other", "api-key", "x")
    with pytest.raises(gs.SpecError, match="one api-key per Secret"):
        gs.ensure_secrets(FakeSecretStore(), [TEST_KEY, other_key], LABELS)


# --- generated values --------------------------------------------------------------------------


def test_generated_values_have_their_shape() -> None:
    passwords = {gs.generate_value("password") for _ in range(20)}
    assert len(passwords) == 20
    allowed = set(string.ascii_letters + string.digits)
    assert all(len(p) == 32 and set(p) <= allowed for p in passwords)  # safe in a Redis URL
    token = gs.generate_value("token")
    assert len(token) == 48 and set(token) <= allowed | {"-", "_"}
    key = gs.generate_value("api-key")
    assert key.startswith("ak_") and len(key) == 46


def test_keys_file_entry_is_what_the_api_reads(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(gs.keys_file_entry("helm-test", b"ak_example-key"), encoding="utf-8")
    (entry,) = read_keys_file(path)  # the api's own parser
    assert (entry.tenant, entry.name, entry.key) == ("helm-test", "helm-test", None)
    assert entry.sha256 == hashlib.sha256(b"ak_example-key").hexdigest()


# --- ensure: never change a value --------------------------------------------------------------


def test_absent_secrets_are_created_with_labels() -> None:
    store = FakeSecretStore()
    outcomes = gs.ensure_secrets(store, [REDIS, TOKEN, TEST_KEY], LABELS, _counter())
    assert [o.action for o in outcomes] == ["created"] * 3
    assert store.secrets["demo-redis"].data == {"redis-password": b"password-1"}
    assert store.secrets["demo-metrics-token"].data == {"token": b"token-2"}
    test_key = store.secrets["demo-test-key"]
    assert set(test_key.data) == {"key", "keys.yaml"}
    digest = hashlib.sha256(test_key.data["key"]).hexdigest()
    assert digest in test_key.data["keys.yaml"].decode()
    assert test_key.labels == LABELS | {"app.kubernetes.io/managed-by": gs.MANAGED_BY}


def test_existing_values_are_never_changed() -> None:
    store = FakeSecretStore()
    gs.ensure_secrets(store, [REDIS, TOKEN, TEST_KEY], LABELS)
    before = dict(store.secrets)
    writes = list(store.writes)
    for _ in range(3):  # every helm upgrade runs the hook again
        outcomes = gs.ensure_secrets(store, [REDIS, TOKEN, TEST_KEY], LABELS)
        assert [o.action for o in outcomes] == ["kept"] * 3
    assert store.secrets == before
    assert store.writes == writes, "a kept Secret is not written at all"


def test_a_secret_the_user_filled_is_kept() -> None:
    store = FakeSecretStore()
    store.put("demo-redis", {"redis-password": b"p@ss:w/rd with any character"})
    (outcome,) = gs.ensure_secrets(store, [REDIS], LABELS, _counter())
    assert outcome.action == "kept"
    assert store.secrets["demo-redis"].data["redis-password"] == b"p@ss:w/rd with any character"


def test_missing_keys_are_added_and_present_ones_kept() -> None:
    store = FakeSecretStore()
    store.put("demo-redis", {"other": b"kept"})
    (outcome,) = gs.ensure_secrets(store, [REDIS], LABELS, _counter())
    assert (outcome.action, outcome.keys) == ("completed", ("redis-password",))
    assert store.secrets["demo-redis"].data == {"other": b"kept", "redis-password": b"password-1"}


def test_an_older_test_key_gets_its_keys_file_entry() -> None:
    """The previous chart's test-key Secret held only `key`: its entry is derived from it."""
    store = FakeSecretStore()
    store.put("demo-test-key", {"key": b"ak_from-the-older-chart"})
    (outcome,) = gs.ensure_secrets(store, [TEST_KEY], LABELS, _counter())
    assert outcome.keys == ("keys.yaml",)
    data = store.secrets["demo-test-key"].data
    assert data["key"] == b"ak_from-the-older-chart"
    assert hashlib.sha256(b"ak_from-the-older-chart").hexdigest() in data["keys.yaml"].decode()


def test_a_keys_entry_without_its_key_is_refused() -> None:
    store = FakeSecretStore()
    store.put("demo-test-key", {"keys.yaml": b"keys: []"})
    with pytest.raises(gs.RefusedError, match=r"has keys\.yaml but no key"):
        gs.ensure_secrets(store, [TEST_KEY], LABELS)
    assert store.writes == []


def test_a_secret_an_older_chart_owned_is_kept_through_the_upgrade() -> None:
    """Chart 0.1 rendered <fullname>-redis itself: the upgrade that stops rendering it would
    delete it, so the hook marks it helm.sh/resource-policy=keep (its value untouched)."""
    store = FakeSecretStore()
    store.put(
        "demo-redis",
        {"redis-password": b"from-0.1"},
        labels={"app.kubernetes.io/managed-by": "Helm"},
        annotations={"meta.helm.sh/release-name": "demo"},
    )
    (outcome,) = gs.ensure_secrets(store, [REDIS], LABELS)
    assert (outcome.action, outcome.adopted, outcome.keys) == ("completed", True, ())
    secret = store.secrets["demo-redis"]
    assert secret.annotations[gs.RESOURCE_POLICY] == "keep"
    assert secret.data == {"redis-password": b"from-0.1"}
    (again,) = gs.ensure_secrets(store, [REDIS], LABELS)
    assert again.action == "kept"


def test_a_secret_created_meanwhile_is_read_again_not_overwritten() -> None:
    store = FakeSecretStore(race=gs.StoredSecret({"redis-password": b"theirs"}))
    (outcome,) = gs.ensure_secrets(store, [REDIS], LABELS, _counter())
    assert outcome.action == "kept"
    assert store.secrets["demo-redis"].data == {"redis-password": b"theirs"}


def test_a_secret_changed_meanwhile_is_read_again() -> None:
    store = FakeSecretStore()
    store.put("demo-redis", {})
    store.race = gs.StoredSecret({"redis-password": b"theirs"})
    (outcome,) = gs.ensure_secrets(store, [REDIS], LABELS, _counter())
    assert outcome.action == "kept"
    assert store.secrets["demo-redis"].data == {"redis-password": b"theirs"}


# --- the command -------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["ensure-secret", *argv])


def test_command_reports_and_exits_zero(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeSecretStore()
    args = _args("--namespace", "ns", "--label", "a=b", str(REDIS), str(TEST_KEY))
    seen: list[str | None] = []

    def factory(namespace: str | None) -> FakeSecretStore:
        seen.append(namespace)
        return store

    with caplog.at_level(logging.INFO):
        assert gs.run(args, factory) == 0
    assert seen == ["ns"]
    assert store.secrets["demo-redis"].labels["a"] == "b"
    assert "Secret demo-redis: created (keys added: redis-password)" in caplog.text
    password = store.secrets["demo-redis"].data["redis-password"].decode()
    assert password not in caplog.text, "a value reached the log"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["demo/key=nope"], "unknown kind"),
        (["--label", "x", str(REDIS)], "KEY=VALUE"),
    ],
)
def test_command_fails_with_a_reason(
    argv: list[str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert gs.run(_args(*argv), lambda _: FakeSecretStore()) == 1
    assert reason in caplog.text


def test_command_fails_when_the_store_does() -> None:
    def factory(_: str | None) -> FakeSecretStore:
        raise gs.SecretStoreError("no Kubernetes credentials")

    assert gs.run(_args(str(REDIS)), factory) == 1


# --- the Kubernetes adapter ----------------------------------------------------------------------


class FakeCoreV1:
    """What KubeSecrets calls on CoreV1Api, answering like the API server."""

    def __init__(self) -> None:
        self.objects: dict[str, client.V1Secret] = {}
        self.version = 0
        self.fail_with: int | None = None

    def _check(self) -> None:
        if self.fail_with:
            raise ApiException(status=self.fail_with, reason="Forbidden")

    def read_namespaced_secret(self, name: str, namespace: str) -> client.V1Secret:
        self._check()
        if name not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        return self.objects[name]

    def create_namespaced_secret(self, namespace: str, body: client.V1Secret) -> None:
        self._check()
        if body.metadata.name in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.objects[body.metadata.name] = body

    def patch_namespaced_secret(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self._check()
        current = self.objects[name]
        if body["metadata"]["resourceVersion"] != current.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        current.data = {**(current.data or {}), **body.get("data", {})}
        annotations = body["metadata"].get("annotations", {})
        current.metadata.annotations = {**(current.metadata.annotations or {}), **annotations}
        self.version += 1
        current.metadata.resource_version = str(self.version)


@pytest.fixture
def kube() -> tuple[KubeSecrets, FakeCoreV1]:
    secrets = KubeSecrets("ns", client.ApiClient())
    fake = FakeCoreV1()
    secrets._core = fake  # type: ignore[assignment]
    return secrets, fake


def test_kube_adapter_round_trip(kube: tuple[KubeSecrets, FakeCoreV1]) -> None:
    store, api = kube
    assert store.read("x") is None
    assert store.create("x", {"k": "v@l/ue"}, {"l": "1"}) is True
    assert store.create("x", {"k": "other"}, {}) is False  # 409: exists
    found = store.read("x")
    assert found is not None
    assert found.data == {"k": b"v@l/ue"} and found.labels == {"l": "1"}
    assert base64.b64decode(api.objects["x"].data["k"]) == b"v@l/ue"
    assert store.add("x", "stale", {"n": "1"}, {}) is False  # 409: changed since read
    assert store.add("x", found.version, {"n": "1"}, {"a": "b"}) is True
    again = store.read("x")
    assert again is not None
    assert again.data == {"k": b"v@l/ue", "n": b"1"} and again.annotations == {"a": "b"}


def test_kube_adapter_reports_api_errors(kube: tuple[KubeSecrets, FakeCoreV1]) -> None:
    store, api = kube
    api.fail_with = 403
    with pytest.raises(gs.SecretStoreError, match="reading Secret ns/x: 403 Forbidden"):
        store.read("x")
    with pytest.raises(gs.SecretStoreError, match="creating Secret ns/x: 403"):
        store.create("x", {}, {})


def test_ensure_through_the_kube_adapter(kube: tuple[KubeSecrets, FakeCoreV1]) -> None:
    store, api = kube
    gs.ensure_secrets(store, [REDIS, TEST_KEY], LABELS)
    first = {name: dict(obj.data) for name, obj in api.objects.items()}
    gs.ensure_secrets(store, [REDIS, TEST_KEY], LABELS)
    assert {name: dict(obj.data) for name, obj in api.objects.items()} == first
