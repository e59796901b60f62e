"""A private PostgreSQL server on this machine: for the local stack (``agent-service up``, when
``AGENT_HISTORY_URL`` is not set) and for the test suite.

Debian's ``postgresql`` package (binaries in ``/usr/lib/postgresql/<version>/bin``), data in a
temporary directory, on a free loopback port, no Unix socket, ``trust`` authentication for the
``postgres`` role: a throwaway server for one session, never a server to keep data in (it runs
with ``fsync=off``). Postgres refuses to run as root: as root, ``initdb`` and ``postgres`` run as
the ``postgres`` user, whose account the package creates, in a directory that user owns
(``server_account`` gives the ``subprocess`` arguments for that).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

POSTGRES_USER = "postgres"
INSTALL_HINT = "sudo apt-get install postgresql"
DEBIAN_ROOT = Path("/usr/lib/postgresql")


def find_bin_dir(debian_root: Path = DEBIAN_ROOT) -> Path | None:
    """Where ``initdb`` and ``postgres`` are: on PATH, else the newest of Debian's versioned
    directories under ``debian_root``; None when Postgres is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    versions = sorted(
        (p for p in debian_root.glob("*/bin/initdb") if (p.parent / "postgres").exists()),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def server_account() -> dict[str, Any]:
    """``subprocess`` arguments running a program as the server's user: the ``postgres``
    account when this process is root (``KeyError`` if it does not exist), else nothing."""
    if os.geteuid() != 0:
        return {}
    account = pwd.getpwnam(POSTGRES_USER)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@dataclass(frozen=True)
class LocalPostgres:
    """One server's data directory under ``root`` (owned by the server's user) and its port."""

    bin_dir: Path
    root: Path
    port: int

    @classmethod
    def prepare(cls, bin_dir: Path, port: int, parent: Path | None = None) -> LocalPostgres:
        """A new empty directory (under ``parent``, default the system's temporary directory)
        owned by the server's user; ``KeyError`` as root without a ``postgres`` account."""
        root = Path(tempfile.mkdtemp(prefix="agent-pg-", dir=parent))
        if os.geteuid() == 0:
            account = pwd.getpwnam(POSTGRES_USER)
            os.chown(root, account.pw_uid, account.pw_gid)
        return cls(bin_dir, root, port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def initdb_args(self) -> list[str]:
        return [
            str(self.bin_dir / "initdb"),
            "-D", str(self.data),
            "-U", POSTGRES_USER,
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        ]  # fmt: skip

    def server_args(self, max_connections: int = 100) -> list[str]:
        """The ``postgres`` command line: loopback only, no Unix socket; durability traded for
        speed, since the data dies with the session anyway."""
        return [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", f"max_connections={max_connections}",
        ]  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def ready(self) -> bool:
        """Whether the server accepts connections now."""
        try:
            psycopg.connect(self.url(), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def request_stop(self) -> None:
        """Ask the postmaster for a fast shutdown (sessions cut, data kept). Signalled
        directly: a ``runuser`` in between would not pass SIGINT on."""
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError, ProcessLookupError):
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
