"""File-based probes for the worker (no broker round trip, unlike ``celery inspect ping``).

* ready file: created when the worker is ready to consume, removed on shutdown (readiness);
* heartbeat file: touched every ``HEARTBEAT_SECONDS`` by a timer on the consumer's own event
  loop, so it stops when that loop is stuck (liveness: file younger than ~60 s).

Both are removed when the probes are installed, before the worker starts: the files live on an
emptyDir, which outlives a container restart, and a crashed worker's leftovers would pass the
startup and readiness probes of its successor before it consumes anything.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps, signals

HEARTBEAT_SECONDS = 10.0

log = logging.getLogger(__name__)


def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError:
        log.warning("cannot touch probe file %s", path, exc_info=True)


def reset_probe_files(*paths: Path | None) -> None:
    """Remove probe files a previous run of the container left behind."""
    for path in paths:
        if path is None:
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("cannot remove stale probe file %s", path, exc_info=True)


def install_probes(app: Celery, heartbeat_file: Path | None, ready_file: Path | None) -> None:
    """Reset the probe files, then wire them into ``app``'s worker (called before the worker
    starts)."""
    reset_probe_files(heartbeat_file, ready_file)
    if ready_file is not None:
        ready = ready_file

        def _ready(**_: object) -> None:
            _touch(ready)

        def _not_ready(**_: object) -> None:
            with contextlib.suppress(OSError):
                ready.unlink()

        signals.worker_ready.connect(_ready, weak=False)
        signals.worker_shutting_down.connect(_not_ready, weak=False)
    if heartbeat_file is not None:
        beat = heartbeat_file

        class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
            requires = ("celery.worker.consumer.tasks:Tasks",)

            def start(self, c: Any) -> None:
                _touch(beat)
                self._timer = c.timer.call_repeatedly(HEARTBEAT_SECONDS, _touch, (beat,))

            def stop(self, c: Any) -> None:
                timer = getattr(self, "_timer", None)
                if timer is not None:
                    timer.cancel()

        app.steps["consumer"].add(Heartbeat)
