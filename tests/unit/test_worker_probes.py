"""The worker's probe files start from nothing: a restarted container's leftovers are removed
before the worker runs, so its startup and readiness probes wait for the new process."""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from agent_service.worker.probes import install_probes, reset_probe_files


def test_stale_probe_files_are_removed(tmp_path: Path) -> None:
    heartbeat, ready = tmp_path / "heartbeat", tmp_path / "ready"
    heartbeat.touch()
    ready.touch()
    reset_probe_files(heartbeat, None, ready)
    assert not heartbeat.exists() and not ready.exists()
    reset_probe_files(heartbeat, ready)  # absent files are fine


def test_installing_the_probes_resets_the_heartbeat(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()
    app = Celery("probes-test")
    install_probes(app, heartbeat, None)  # no ready file: no global signal is connected
    assert not heartbeat.exists(), "a crashed worker's heartbeat would pass the startup probe"
    assert any(step.__name__ == "Heartbeat" for step in app.steps["consumer"])
