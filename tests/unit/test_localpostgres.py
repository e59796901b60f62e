"""Finding a Postgres to run locally (``agent_service.localpostgres``) and what ``up`` says
without one; the server itself is started by the test suite (tests/postgres.py) and ``up``
(tests/e2e/test_up.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent_service import launcher, localpostgres


def _install(root: Path, version: str, *, server: bool = True) -> Path:
    bin_dir = root / version / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "initdb").touch()
    if server:
        (bin_dir / "postgres").touch()
    return bin_dir


def test_the_newest_debian_install_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no initdb on PATH
    assert localpostgres.find_bin_dir(tmp_path) is None
    _install(tmp_path, "9")
    newest = _install(tmp_path, "15")
    _install(tmp_path, "16", server=False)  # a client-only leftover
    assert localpostgres.find_bin_dir(tmp_path) == newest


def test_initdb_and_postgres_on_path_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = tmp_path / "path"
    on_path.mkdir()
    for name in ("initdb", "postgres"):
        (on_path / name).touch()
        (on_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    _install(tmp_path / "debian", "15")
    assert localpostgres.find_bin_dir(tmp_path / "debian") == on_path


def test_server_arguments_and_url(tmp_path: Path) -> None:
    server = localpostgres.LocalPostgres(Path("/pg/bin"), tmp_path, 5999)
    args = server.server_args(max_connections=50)
    assert args[:3] == ["/pg/bin/postgres", "-D", str(tmp_path / "data")]
    assert "listen_addresses=127.0.0.1" in args and "unix_socket_directories=" in args
    assert "max_connections=50" in args
    assert server.url("db") == "postgresql://postgres@127.0.0.1:5999/db"
    assert "trust" in server.initdb_args() and "--no-sync" in server.initdb_args()
    if os.geteuid() == 0:
        assert localpostgres.server_account()["user"] != 0
    else:
        assert localpostgres.server_account() == {}


def test_up_without_postgres_says_so_in_one_line_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(localpostgres, "find_bin_dir", lambda: None)
    env: dict[str, str] = {}
    assert launcher._start_postgres(launcher._Stack(), tmp_path, env) is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "PostgreSQL not found" in lines[0] and "apt-get install postgresql" in lines[0]
    assert "AGENT_HISTORY_URL" in lines[0] and "history is off" in lines[0]
    assert env == {}
