"""API keys: who is calling, as a ``Caller`` (tenant and key id), for every /v1 route.

Keys are accepted as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. They are known
by their SHA-256 only: from the agent config (``apiKeys``, hot-reloaded with it) and from the
keys file (``AGENT_AUTH_KEYS_FILE``, a mounted Secret, re-read when it changes). The setting may
name a directory instead: every ``*.yaml`` file in it is a keys file (the Helm chart mounts the
client keys and the helm test key as two files of one projected volume). A presented key is
hashed and looked up, then compared with ``hmac.compare_digest``.

Keys file (YAML)::

    keys:
      - {tenant: team-a, sha256: 9f86d0...}      # preferred: only the hash
      - {tenant: team-b, key: ak_live_..., name: ci}
      - {tenant: ops, sha256: 2c26b4..., name: console, role: admin}   # reads every tenant

A key's ``role`` is ``tenant`` (default) or ``admin`` (``domain.callers``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent_service.agentconfig.model import ApiKeySpec
from agent_service.agentconfig.spec import NAME_PATTERN
from agent_service.domain.callers import Caller

log = logging.getLogger(__name__)

KEY_PREFIX = "ak_"
RECHECK_SECONDS = 1.0


def generate_key() -> str:
    """A new random API key (``ak_`` + 43 url-safe characters, 256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class _FileKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(pattern=NAME_PATTERN)
    key: str | None = Field(default=None, min_length=16)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    name: str | None = Field(default=None, max_length=128)
    role: Literal["tenant", "admin"] = "tenant"

    @model_validator(mode="after")
    def _one(self) -> _FileKey:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("set exactly one of key or sha256")
        return self


class _KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[_FileKey] = Field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    digest: str
    caller: Caller


def _entries(specs: Sequence[ApiKeySpec | _FileKey]) -> dict[str, _Entry]:
    table: dict[str, _Entry] = {}
    for spec in specs:
        digest = spec.sha256 or key_digest(spec.key or "")  # type: ignore[union-attr]
        table[digest] = _Entry(digest, Caller(spec.tenant, digest[:12], spec.name, spec.role))
    return table


def keys_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.yaml`` / ``*.yml`` files of the directory ``path`` (sorted;
    hidden entries such as a projected volume's ``..data`` are skipped)."""
    if not path.is_dir():
        return [path]
    return sorted(
        p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")
    )


def read_keys_file(path: Path) -> list[_FileKey]:
    """The keys of ``path`` (``ValueError`` with a reason if it is not a valid keys file)."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    try:
        return _KeysFile.model_validate(data).keys
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None


class KeyRing:
    """The keys in force: the config's (read through ``config_keys``) and the keys file's."""

    def __init__(
        self, keys_file: Path | None, config_keys: Callable[[], Sequence[ApiKeySpec]]
    ) -> None:
        self._file = keys_file
        self._config_keys = config_keys
        self._config_seen: Sequence[ApiKeySpec] | None = None
        self._config_table: dict[str, _Entry] = {}
        self._file_table: dict[str, _Entry] = {}
        self._file_state: tuple[tuple[str, int, int], ...] | None = None
        self._checked = 0.0
        self._refresh_file(force=True)

    @property
    def empty(self) -> bool:
        self._refresh()
        return not self._config_table and not self._file_table

    def lookup(self, presented: str) -> Caller | None:
        """The caller a presented key stands for, or None."""
        self._refresh()
        digest = key_digest(presented)
        entry = self._file_table.get(digest) or self._config_table.get(digest)
        if entry is None or not hmac.compare_digest(entry.digest, digest):
            return None
        return entry.caller

    def _refresh(self) -> None:
        current = self._config_keys()
        if current is not self._config_seen:  # a reloaded config is a new list
            self._config_table, self._config_seen = _entries(current), current
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            self._refresh_file(force=False)

    @staticmethod
    def _files_state(path: Path) -> tuple[tuple[str, int, int], ...]:
        """Identity of the keys files as they are now (a Secret update swaps a symlink)."""
        state = []
        for file in keys_files(path):
            resolved = file.resolve(strict=True)
            stat = resolved.stat()
            state.append((str(resolved), stat.st_ino, stat.st_mtime_ns))
        return tuple(state)

    def _refresh_file(self, force: bool) -> None:
        if self._file is None:
            return
        try:
            state = self._files_state(self._file)
        except OSError:
            if force:
                log.error("API keys file %s is missing: its keys are refused", self._file)
            self._file_table, self._file_state = {}, None
            return
        if state == self._file_state and not force:
            return
        self._file_state = state
        try:
            keys = [key for path in keys_files(self._file) for key in read_keys_file(path)]
            self._file_table = _entries(keys)
        except (ValueError, OSError) as exc:  # keep the previous keys: a broken Secret must
            # not lock everyone out
            log.error("API keys file rejected, keeping %d keys: %s", len(self._file_table), exc)
            return
        log.info("API keys file loaded: %d keys", len(self._file_table))


def presented_key(authorization: str | None, api_key_header: str | None) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key`` (None if neither)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if api_key_header and api_key_header.strip():
        return api_key_header.strip()
    return None
