"""A private PostgreSQL server for tests: Debian's ``postgresql``, on a free port, data in a
temporary directory, started and stopped like the other real processes of the suite.

Postgres refuses to run as root: as root, ``initdb`` and ``postgres`` run as the ``postgres``
user (``runuser``), in a directory that user owns; as anyone else, as that user. The server is
stopped by signalling the postmaster itself (``runuser`` does not pass SIGINT on).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.procs import Proc, base_env, free_port

POSTGRES_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: on PATH, else Debian's versioned directory."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _as_server_user() -> list[str]:
    """The command prefix running a program as the server's user (nothing unless root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root needs runuser (util-linux) to start Postgres")
    return [runuser, "-u", POSTGRES_USER, "--"]


class PostgresServer:
    """One ``postgres`` process over its own data directory; ``stop`` and ``start`` again keep
    the data and the port (a restart, as after an outage)."""

    def __init__(self, bin_dir: Path, log_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.log_dir = log_dir
        self.port = free_port()
        # Not under pytest's tmp dirs: their parents are private to root, and the server's
        # user must reach its data directory.
        self.root = Path(tempfile.mkdtemp(prefix="agent-test-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            account = pwd.getpwnam(POSTGRES_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.proc: Proc | None = None
        self._initdb()

    def _initdb(self) -> None:
        args = [
            *_as_server_user(),
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            POSTGRES_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        proc = Proc(f"initdb-{self.port}", args, base_env(), self.log_dir)
        if proc.popen.wait(timeout=60) != 0:
            raise RuntimeError(f"initdb failed:\n{proc.log()}")
        proc.stop()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> None:
        args = [
            *_as_server_user(),
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            # A test server: durability is not what is tested, speed on a shared machine is.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
        self.proc = Proc(f"postgres-{self.port}", args, base_env(), self.log_dir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if not self.proc.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start:\n{self.proc.log()}") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown: sessions are disconnected, the data kept."""
        if self.proc is None:
            return
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)
        self.proc.stop(timeout)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

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
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        return None
    server = PostgresServer(bin_dir, log_dir)
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
