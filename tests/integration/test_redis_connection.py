"""Every Redis client of the service against a real redis-server with TLS and a password that
no URL could carry: the asyncio pool, the metrics reader and the Celery broker (kombu).

The password comes from a file (``AGENT_REDIS_PASSWORD_FILE``) and wins over one in the URL;
the server's certificate is checked against ``AGENT_REDIS_TLS_CA_FILE``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from agent_service.queue.celery_app import create_celery_app
from agent_service.queue.stats import QueueStatsReader
from agent_service.settings import RedisSettings, Settings
from agent_service.store.client import create_redis
from tests.procs import Proc, base_env, free_port, wait_redis
from tests.tls import Certificates, make_certificates

PASSWORD = "p w:@/#%?&=\"'\\x"  # every character a URL would need escaped, and spaces


class TlsRedis:
    def __init__(self, proc: Proc, port: int, tls_port: int, certs: Certificates) -> None:
        self.proc = proc
        self.port = port
        self.tls_port = tls_port
        self.certs = certs


@pytest.fixture(scope="module")
def tls_redis(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (the test command installs it)"
    work = tmp_path_factory.mktemp("redis-tls")
    certs = make_certificates(work / "certs")
    port, tls_port = free_port(), free_port()
    args = [
        binary,
        "--port",
        str(port),
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        str(certs.cert),
        "--tls-key-file",
        str(certs.key),
        "--tls-ca-cert-file",
        str(certs.ca),
        "--tls-auth-clients",
        "no",
        "--bind",
        "127.0.0.1",
        "--dir",
        str(work),
        "--save",
        "",
        "--requirepass",
        PASSWORD,
    ]
    proc = Proc(f"redis-tls-{tls_port}", args, base_env(), log_dir)
    try:
        wait_redis(port, proc, password=PASSWORD)
        yield TlsRedis(proc, port, tls_port, certs)
    finally:
        proc.stop()


def _settings(server: TlsRedis, tmp_path: Path, url: str, ca: bool = True) -> RedisSettings:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")  # as a Secret mounted from a file often ends
    return RedisSettings(
        url=url,
        password_file=password_file,
        tls_ca_file=server.certs.ca if ca else None,
        socket_timeout_seconds=3,
    )


async def test_the_asyncio_pool_speaks_tls_with_the_password_of_the_file(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    # The URL's own password is wrong: the file's wins.
    url = f"rediss://:wrong@127.0.0.1:{tls_redis.tls_port}/0"
    client = create_redis(_settings(tls_redis, tmp_path, url))
    try:
        assert await client.set("conn:test", "ok")
        assert await client.get("conn:test") == b"ok"
    finally:
        await client.aclose()


async def test_the_server_certificate_is_verified(tls_redis: TlsRedis, tmp_path: Path) -> None:
    url = f"rediss://127.0.0.1:{tls_redis.tls_port}/0"
    client = create_redis(_settings(tls_redis, tmp_path, url, ca=False))
    try:
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            await client.ping()
    finally:
        await client.aclose()


async def test_plain_tcp_with_the_password_file(tls_redis: TlsRedis, tmp_path: Path) -> None:
    client = create_redis(_settings(tls_redis, tmp_path, f"redis://127.0.0.1:{tls_redis.port}/2"))
    try:
        assert await client.ping()
    finally:
        await client.aclose()


def test_the_metrics_reader_and_the_celery_broker_use_the_same_settings(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    url = f"rediss://127.0.0.1:{tls_redis.tls_port}/1"
    settings = Settings(redis=_settings(tls_redis, tmp_path, url))
    settings.worker.queue = "conn-q"
    app = create_celery_app(settings, 60)
    assert app.conf.broker_use_ssl["ssl_ca_certs"] == str(tls_redis.certs.ca)
    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue("conn-q")
        queue.put({"hello": "broker"})
        reader = QueueStatsReader(settings.redis, ["conn-q"])
        try:
            (stats,) = reader.read()
            assert stats.depth == 1
        finally:
            reader.close()
        message = queue.get(timeout=5)
        assert message.payload == {"hello": "broker"}
        message.ack()
        queue.close()
