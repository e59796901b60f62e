"""How the Redis settings become connection arguments for redis-py and Celery's broker."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from kombu import Connection
from pydantic import ValidationError

from agent_service.queue.celery_app import broker_settings
from agent_service.settings import RedisSettings, SettingsFileError, WorkerSettings
from agent_service.store.connection import RedisConnection


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_password_file_replaces_the_urls_and_keeps_every_character(tmp_path: Path) -> None:
    secret = " p@ss:w/rd#%? "
    settings = RedisSettings(
        url="redis://alice:old@redis.internal:6380/3?health_check_interval=7",
        password_file=_file(tmp_path, "pw", secret + "\n"),
    )
    conn = RedisConnection.of(settings)
    assert (conn.host, conn.port, conn.db, conn.tls) == ("redis.internal", 6380, 3, False)
    assert (conn.username, conn.password) == ("alice", secret)
    kwargs = conn.server_kwargs()
    assert kwargs["password"] == secret
    assert kwargs["health_check_interval"] == 7  # the URL's other options are kept
    assert "ssl_cert_reqs" not in kwargs
    assert secret not in conn.describe() and "old" not in repr(conn)


def test_the_urls_password_is_used_without_a_file() -> None:
    conn = RedisConnection.of(RedisSettings(url="redis://:s%40cret@localhost/0"))
    assert conn.password == "s@cret"


@pytest.mark.parametrize("content", ["", "\n"])
def test_an_empty_password_file_is_an_error(tmp_path: Path, content: str) -> None:
    settings = RedisSettings(password_file=_file(tmp_path, "pw", content))
    with pytest.raises(SettingsFileError, match="empty"):
        RedisConnection.of(settings)


def test_a_missing_password_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsFileError, match="cannot read"):
        RedisConnection.of(RedisSettings(password_file=tmp_path / "absent"))


def test_tls_always_verifies_against_the_ca_file(tmp_path: Path) -> None:
    ca = _file(tmp_path, "ca.crt", "PEM")
    conn = RedisConnection.of(RedisSettings(url="rediss://redis:6380/0", tls_ca_file=ca))
    assert conn.tls
    assert conn.tls_options() == {"ssl_cert_reqs": "required", "ssl_ca_certs": str(ca)}
    broker = broker_settings(conn)
    assert broker["broker_url"] == "rediss://redis:6380/0"
    assert broker["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(ca)}
    # Without a CA: the system CAs, still verified (kombu alone would not verify rediss://).
    plain = RedisConnection.of(RedisSettings(url="rediss://redis:6380/0"))
    assert broker_settings(plain)["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def test_the_broker_url_carries_the_password_percent_encoded(tmp_path: Path) -> None:
    settings = RedisSettings(
        url="redis://bob:inurl@[::1]:6379/2", password_file=_file(tmp_path, "pw", "a/b@c %:")
    )
    broker = broker_settings(RedisConnection.of(settings))
    assert broker["broker_url"] == "redis://bob:a%2Fb%40c%20%25%3A@[::1]:6379/2"
    assert broker["broker_use_ssl"] is False
    assert broker["transport_options"] == {}
    # kombu reads back exactly the password of the file.
    assert Connection(broker["broker_url"]).password == "a/b@c %:"


def test_sentinel_mode_for_the_clients_and_the_broker(tmp_path: Path) -> None:
    settings = RedisSettings(
        url="rediss://mymaster:6379/1",
        password_file=_file(tmp_path, "pw", "master-pw"),
        sentinels="s0.redis:26379, s1.redis:26380,[fd00::2]:26379",  # type: ignore[arg-type]
        sentinel_master="mymaster",
        sentinel_password_file=_file(tmp_path, "spw", "sentinel-pw\n"),
    )
    conn = RedisConnection.of(settings)
    assert conn.sentinels == (("s0.redis", 26379), ("s1.redis", 26380), ("fd00::2", 26379))
    assert conn.sentinel_kwargs()["password"] == "sentinel-pw"
    assert conn.sentinel_kwargs()["ssl"] is True  # the Sentinels speak the URL's TLS too
    assert "mymaster" in conn.describe() and "s1.redis:26380" in conn.describe()
    broker = broker_settings(conn)
    assert broker["broker_url"] == (
        "sentinel://:master-pw@s0.redis:26379/1;sentinel://:master-pw@s1.redis:26380/1;"
        "sentinel://:master-pw@[fd00::2]:26379/1"
    )
    # Failing over to the next Sentinel keeps the password (it is in every URL).
    failover = Connection(broker["broker_url"])
    failover.switch(broker["broker_url"].split(";")[1])
    assert failover.password == "master-pw"
    options = broker["transport_options"]
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "sentinel-pw"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sentinels": "a:1"}, "AGENT_REDIS_SENTINEL_MASTER"),
        ({"sentinels": "nohostport", "sentinel_master": "m"}, "host:port"),
        ({"admit_memory_percent": 96}, "below consume_memory_percent"),
    ],
)
def test_inconsistent_redis_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedisSettings.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pod_deletion_cost": True}, "AGENT_WORKER_POD_NAME"),
        ({"lease_seconds": 5, "reclaim_interval_seconds": 5}, "below lease_seconds"),
    ],
)
def test_inconsistent_worker_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkerSettings.model_validate(fields)
