"""API keys: hashing, lookup, the keys file (re-read on change, a broken file keeps the keys)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent_service.agentconfig.model import ApiKeySpec
from agent_service.api import auth
from agent_service.api.auth import KeyRing, generate_key, key_digest, presented_key


@pytest.fixture(autouse=True)
def _no_recheck_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.0)


def _touch_later(path: Path) -> None:
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))


def test_generated_keys_are_long_and_distinct() -> None:
    keys = {generate_key() for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith("ak_") and len(k) >= 40 for k in keys)


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer ak_1", None, "ak_1"),
        ("bearer   ak_2 ", None, "ak_2"),
        (None, "ak_3", "ak_3"),
        ("Basic dXNlcjpwYXNz", "ak_4", "ak_4"),
        ("Bearer ", None, None),
        (None, None, None),
    ],
)
def test_presented_key(
    authorization: str | None, x_api_key: str | None, expected: str | None
) -> None:
    assert presented_key(authorization, x_api_key) == expected


def test_config_keys_are_known_by_hash_and_map_to_their_tenant() -> None:
    key = generate_key()
    specs = [ApiKeySpec(tenant="team-a", sha256=key_digest(key), name="ci")]
    ring = KeyRing(None, lambda: specs)
    caller = ring.lookup(key)
    assert caller is not None
    assert (caller.tenant, caller.key_id, caller.key_name) == ("team-a", key_digest(key)[:12], "ci")
    assert ring.lookup(key + "x") is None and ring.lookup("") is None


def test_a_reloaded_config_changes_the_keys() -> None:
    old, new = generate_key(), generate_key()
    current = [ApiKeySpec(tenant="a", sha256=key_digest(old))]
    ring = KeyRing(None, lambda: current)
    assert ring.lookup(old) is not None
    current = [ApiKeySpec(tenant="a", sha256=key_digest(new))]
    assert ring.lookup(old) is None and ring.lookup(new) is not None


def test_keys_file_with_plain_and_hashed_keys_is_reread_when_it_changes(tmp_path: Path) -> None:
    plain, hashed, later = generate_key(), generate_key(), generate_key()
    path = tmp_path / "keys.yaml"
    path.write_text(
        f"keys:\n  - {{tenant: a, key: {plain}}}\n  - {{tenant: b, sha256: {key_digest(hashed)}}}\n"
    )
    ring = KeyRing(path, list)
    assert ring.lookup(plain).tenant == "a"  # type: ignore[union-attr]
    assert ring.lookup(hashed).tenant == "b"  # type: ignore[union-attr]
    path.write_text(f"keys:\n  - {{tenant: c, key: {later}}}\n")
    _touch_later(path)
    assert ring.lookup(plain) is None
    assert ring.lookup(later).tenant == "c"  # type: ignore[union-attr]


def test_a_broken_keys_file_keeps_the_previous_keys(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys: [{{tenant: a, key: {key}}}]\n")
    ring = KeyRing(path, list)
    path.write_text("keys: [{tenant: a}]\n")  # neither key nor sha256
    _touch_later(path)
    assert ring.lookup(key) is not None, "a broken Secret must not lock every client out"


def test_a_missing_keys_file_refuses_its_keys(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "absent.yaml", list)
    assert ring.empty and ring.lookup(generate_key()) is None


def _projected(directory: Path, files: dict[str, str], generation: int) -> None:
    """Write ``files`` the way the kubelet updates a projected Secret volume: into a new hidden
    directory, then swap the ``..data`` symlink the visible names point through."""
    data = directory / f"..{generation}"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text, encoding="utf-8")
    link = directory / "..data_tmp"
    link.symlink_to(data.name)
    link.replace(directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")


def test_a_keys_directory_merges_its_files_and_follows_updates(tmp_path: Path) -> None:
    """AGENT_AUTH_KEYS_FILE naming a directory (the chart's projected volume: the client keys
    and the helm test key): every *.yaml file counts; a kubelet update is seen."""
    client, test, later = generate_key(), generate_key(), generate_key()
    keys = tmp_path / "keys"
    keys.mkdir()
    _projected(
        keys,
        {
            "keys.yaml": f"keys: [{{tenant: a, sha256: {key_digest(client)}}}]\n",
            "helm-test.yaml": f"keys: [{{tenant: helm-test, sha256: {key_digest(test)}}}]\n",
        },
        1,
    )
    ring = KeyRing(keys, list)
    assert ring.lookup(client).tenant == "a"  # type: ignore[union-attr]
    assert ring.lookup(test).tenant == "helm-test"  # type: ignore[union-attr]
    _projected(
        keys,
        {
            "keys.yaml": f"keys: [{{tenant: b, sha256: {key_digest(later)}}}]\n",
            "helm-test.yaml": f"keys: [{{tenant: helm-test, sha256: {key_digest(test)}}}]\n",
        },
        2,
    )
    assert ring.lookup(client) is None
    assert ring.lookup(later).tenant == "b"  # type: ignore[union-attr]
    assert ring.lookup(test) is not None


def test_a_broken_file_in_a_keys_directory_keeps_every_key(tmp_path: Path) -> None:
    key = generate_key()
    (tmp_path / "a.yaml").write_text(f"keys: [{{tenant: a, key: {key}}}]\n")
    ring = KeyRing(tmp_path, list)
    (tmp_path / "b.yaml").write_text("keys: [{tenant: b}]\n")
    assert ring.lookup(key) is not None


def test_a_key_s_role_comes_from_the_config_and_the_keys_file(tmp_path: Path) -> None:
    config_admin, file_admin, plain = generate_key(), generate_key(), generate_key()
    specs = [ApiKeySpec(tenant="ops", sha256=key_digest(config_admin), role="admin")]
    path = tmp_path / "keys.yaml"
    path.write_text(
        f"keys:\n  - {{tenant: ops, key: {file_admin}, role: admin}}\n"
        f"  - {{tenant: team-a, key: {plain}}}\n"
    )
    ring = KeyRing(path, lambda: specs)
    for key in (config_admin, file_admin):
        caller = ring.lookup(key)
        assert caller is not None and caller.admin and caller.role == "admin"
    caller = ring.lookup(plain)
    assert caller is not None and not caller.admin and caller.role == "tenant"
    path.write_text(f"keys:\n  - {{tenant: ops, key: {file_admin}, role: root}}\n")
    _touch_later(path)
    assert ring.lookup(file_admin) is not None  # an unknown role: the file is refused, kept
    with pytest.raises(ValueError, match="role"):
        auth.read_keys_file(path)
