"""Prometheus and Alertmanager for the local stack (``agent-service up --with-monitoring``).

Runs the real binaries (Debian packages ``prometheus`` and ``prometheus-alertmanager``) with the
project's own rule files from ``alerts/``, scraping the local api and worker metrics ports.
The end-to-end tests use the same functions with short intervals.

Every target carries the labels the Helm chart's ServiceMonitors give theirs (``targetLabels``:
the Service's ``app.kubernetes.io/part-of`` and ``app.kubernetes.io/component``, as Prometheus
label names), because the alert rules select the service by them, never by job name.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ALERTMANAGER_BINARIES = ("alertmanager", "prometheus-alertmanager")
# The target labels the alert rules select on (charts/agent-service: ServiceMonitor targetLabels).
PART_OF_LABEL = "app_kubernetes_io_part_of"
COMPONENT_LABEL = "app_kubernetes_io_component"
PART_OF = "agent-service"


@dataclass(frozen=True)
class Target:
    """A metrics endpoint of ``component`` (api, worker); ``up_only`` keeps just its ``up``
    series (its samples are already exported by another target, e.g. a shared multiprocess
    directory)."""

    job: str
    address: str
    component: str
    up_only: bool = False

    def labels(self) -> dict[str, str]:
        return {PART_OF_LABEL: PART_OF, COMPONENT_LABEL: self.component}


def find_binaries() -> tuple[str, str] | None:
    """Paths of prometheus and alertmanager, or None when either is missing."""
    prometheus = shutil.which("prometheus")
    alertmanager = next((p for p in map(shutil.which, ALERTMANAGER_BINARIES) if p), None)
    if prometheus is None or alertmanager is None:
        return None
    return prometheus, alertmanager


def rule_files(alerts_dir: Path) -> list[Path]:
    return sorted(p for p in alerts_dir.glob("*.y*ml") if p.is_file())


def shorten_rules(sources: Iterable[Path], dest: Path, for_duration: str) -> list[Path]:
    """Copies of rule files with every ``for:`` set to ``for_duration`` (expressions untouched)."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        doc = yaml.safe_load(source.read_text())
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    rule["for"] = for_duration
        target = dest / source.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(target)
    return written


def prometheus_config(
    targets: Sequence[Target],
    rules: Sequence[Path],
    alertmanager_address: str,
    scrape_interval: str = "5s",
    evaluation_interval: str = "5s",
) -> dict[str, object]:
    scrape_configs: list[dict[str, object]] = []
    for target in targets:
        job: dict[str, object] = {
            "job_name": target.job,
            "static_configs": [{"targets": [target.address], "labels": target.labels()}],
        }
        if target.up_only:
            job["metric_relabel_configs"] = [
                {"source_labels": ["__name__"], "regex": ".+", "action": "drop"}
            ]
        scrape_configs.append(job)
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(p) for p in rules],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]},
        "scrape_configs": scrape_configs,
    }


ALERTMANAGER_CONFIG: dict[str, object] = {
    # Local use: alerts are visible in the UI and API; nothing is sent anywhere.
    "route": {
        "receiver": "local",
        "group_by": ["alertname"],
        "group_wait": "1s",
        "group_interval": "5s",
        "repeat_interval": "1h",
    },
    "receivers": [{"name": "local"}],
}


def start(
    workdir: Path,
    *,
    targets: Sequence[Target],
    rules: Sequence[Path],
    prometheus_port: int,
    alertmanager_port: int,
    intervals: tuple[str, str] = ("5s", "5s"),
    popen_kwargs: dict[str, object] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """Start Alertmanager then Prometheus; returns both processes (caller stops them)."""
    binaries = find_binaries()
    if binaries is None:
        raise FileNotFoundError(
            "prometheus and alertmanager are needed: sudo apt-get install prometheus "
            "prometheus-alertmanager"
        )
    prometheus, alertmanager = binaries
    workdir.mkdir(parents=True, exist_ok=True)
    am_config = workdir / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(ALERTMANAGER_CONFIG))
    prom_config = workdir / "prometheus.yml"
    am_address = f"127.0.0.1:{alertmanager_port}"
    config = prometheus_config(targets, rules, am_address, *intervals)
    prom_config.write_text(yaml.safe_dump(config, sort_keys=False))
    kwargs = popen_kwargs or {}
    am = subprocess.Popen(  # noqa: S603  # fixed binaries and arguments
        [
            alertmanager,
            f"--config.file={am_config}",
            f"--storage.path={workdir / 'am'}",
            f"--web.listen-address={am_address}",
            "--cluster.listen-address=",
        ],
        **kwargs,  # type: ignore[call-overload]
    )
    prom = subprocess.Popen(  # noqa: S603
        [
            prometheus,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            "--storage.tsdb.retention.time=1d",
        ],
        **kwargs,  # type: ignore[call-overload]
    )
    return [am, prom]
