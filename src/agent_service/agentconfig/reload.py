"""Hot reload of the agent config file, in API and worker processes.

Started by the process runtime (``runtime.open_runtime``) on the event loop of the API and of
the worker. Every ``AGENT_CONFIG_RELOAD_INTERVAL_SECONDS`` the file is checked; a Kubernetes
ConfigMap update arrives as an atomic swap of the ``..data`` symlink, so the file's resolved
path, inode, size and mtime are compared, then its content hash. A changed, valid file is handed
to ``apply`` (the runtime swaps in a new config snapshot: new runs use it, runs in flight finish
with theirs). An invalid file keeps the last good config: ``agent_config_reloads_total
{result="rejected"}`` is incremented and the errors are logged once per distinct content, so a
broken ConfigMap does not flood the logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from agent_service.agentconfig.load import ConfigError, read_config_file
from agent_service.agentconfig.model import AgentConfig, ConfigVersion

log = logging.getLogger(__name__)

Adjust = Callable[[AgentConfig], AgentConfig]
"""Rewrites a parsed config before it is applied (the worker caps the run timeout)."""
Apply = Callable[[ConfigVersion], Awaitable[None]]
"""Puts a new config version in force (``runtime.ConfigHolder.apply``)."""
Count = Callable[[str], None]
"""Counts a reload by result, ``applied`` or ``rejected`` (``Metrics.config_reload``)."""


@dataclass(frozen=True)
class _FileState:
    resolved: str
    inode: int
    size: int
    mtime_ns: int


def _file_state(path: Path) -> _FileState | None:
    try:
        resolved = path.resolve(strict=True)
        stat = resolved.stat()
    except OSError:
        return None
    return _FileState(str(resolved), stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _content_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ConfigReloader:
    """Watches ``path`` and hands each valid new version of it to ``apply``.

    ``current`` is the version in force at start; ``adjust`` may rewrite a parsed config before
    it is applied (the worker caps the run timeout at what its broker visibility timeout
    allows); ``count`` hears each outcome.
    """

    def __init__(
        self,
        path: Path,
        *,
        current: ConfigVersion,
        apply: Apply,
        count: Count,
        interval: float,
        adjust: Adjust | None = None,
    ) -> None:
        self._path = path
        self._current = current
        self._apply = apply
        self._count = count
        self._interval = interval
        self._adjust = adjust
        self._state = _file_state(path)
        self._applied_hash = _content_hash(path)
        self._rejected_hash: str | None = None
        self._local_generation = current.generation

    async def run(self) -> None:
        """Check the file every interval until cancelled."""
        log.info(
            "config reload: watching %s every %g s (generation %d, hash %s)",
            self._path,
            self._interval,
            self._current.generation,
            self._current.hash,
        )
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:  # the watcher must outlive any surprise; the next tick retries
                log.exception("config reload: unexpected error while checking %s", self._path)

    async def check(self) -> str | None:
        """One check: ``"applied"``, ``"rejected"`` or None (unchanged or unreadable)."""
        state = _file_state(self._path)
        if state is None or state == self._state:
            return None
        self._state = state
        digest = _content_hash(self._path)
        if digest is None or digest in (self._applied_hash, self._rejected_hash):
            return None
        try:
            config, declared = read_config_file(self._path)
        except ConfigError as exc:
            self._rejected_hash = digest
            self._count("rejected")
            current = self._current
            log.error(
                "config reload: %s rejected, keeping generation %d (hash %s): %s",
                self._path,
                current.generation,
                current.hash,
                "; ".join(f"{where}: {reason}" for where, reason in exc.errors),
                extra={"config_errors": [f"{w}: {r}" for w, r in exc.errors]},
            )
            return "rejected"
        if self._adjust is not None:
            config = self._adjust(config)
        self._local_generation += 1
        generation = declared or self._local_generation
        version = ConfigVersion.of(config, generation)
        await self._apply(version)
        self._current = version
        self._applied_hash, self._rejected_hash = digest, None
        self._count("applied")
        log.info(
            "config reload: applied generation %d (hash %s, default model %s)",
            version.generation,
            version.hash,
            config.default_model,
        )
        return "applied"
