"""A private PostgreSQL server for tests (``agent_service.localpostgres``: Debian's
``postgresql``, on a free port, data in a temporary directory, as the ``postgres`` user when
the suite runs as root), started and stopped like the other real processes of the suite.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from agent_service.localpostgres import LocalPostgres, find_bin_dir, server_account
from tests.procs import Proc, base_env, free_port


class PostgresServer:
    """One ``postgres`` process over its own data directory; ``stop`` and ``start`` again keep
    the data and the port (a restart, as after an outage)."""

    def __init__(self, bin_dir: Path, log_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.log_dir = log_dir
        # Not under pytest's tmp dirs: their parents are private to root, and the server's
        # user must reach its data directory.
        self.local = LocalPostgres.prepare(bin_dir, free_port())
        self.port = self.local.port
        self.data = self.local.data
        self.proc: Proc | None = None
        self._initdb()

    def _initdb(self) -> None:
        proc = Proc(
            f"initdb-{self.port}",
            self.local.initdb_args(),
            base_env(),
            self.log_dir,
            account=server_account(),
        )
        if proc.popen.wait(timeout=60) != 0:
            raise RuntimeError(f"initdb failed:\n{proc.log()}")
        proc.stop()

    def url(self, database: str = "postgres") -> str:
        return self.local.url(database)

    def start(self, timeout: float = 30.0) -> None:
        self.proc = Proc(
            f"postgres-{self.port}",
            self.local.server_args(max_connections=200),
            base_env(),
            self.log_dir,
            account=server_account(),
        )
        deadline = time.monotonic() + timeout
        while not self.local.ready():
            if not self.proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start:\n{self.proc.log()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown: sessions are disconnected, the data kept."""
        if self.proc is None:
            return
        self.local.request_stop()
        self.proc.stop(timeout)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        self.local.remove()

    def execute(self, sql: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql.encode())

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for one test (its URL); dropped afterwards."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.execute(f"CREATE DATABASE {name}")
        try:
            yield self.url(name)
        finally:
            if self.proc is not None and self.proc.alive():
                self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_postgres(log_dir: Path) -> PostgresServer | None:
    """A running private server, or None when Postgres is not installed."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return None
    server = PostgresServer(bin_dir, log_dir)
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
