"""Run the chart's secret generator hook the way the cluster would, without a cluster.

The hook Job's command line (templates/secrets/generator.yaml) is parsed by the service's own
CLI parser and executed by the real ``generated_secrets.ensure_secrets`` against a fake store
holding the Secrets the chart renders (and any the test says already exist). What comes out is
what the pods would mount: the chart tests then read files back from pod volumes as the
service would (``materialize``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from agent_service.cli import build_parser
from agent_service.controller import generated_secrets
from tests.chart import manifests
from tests.chart.manifests import Manifest
from tests.controller.fakes import FakeSecretStore

JOB_SUFFIX = "-secret-generator"

Secrets = dict[str, dict[str, bytes]]


def job(rendered: list[Manifest]) -> dict[str, Any] | None:
    """The hook Job, or None when the chart generates nothing."""
    jobs = [m.obj for m in manifests.find(rendered, "Job") if m.name.endswith(JOB_SUFFIX)]
    assert len(jobs) <= 1, jobs
    return jobs[0] if jobs else None


def job_args(rendered: list[Manifest]) -> Any:
    """The hook container's arguments as `agent-service` parses them (None: no hook)."""
    found = job(rendered)
    if found is None:
        return None
    (container,) = found["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["agent-service", "ensure-secret"], command
    return build_parser().parse_args(command[1:])


def rendered_secrets(rendered: list[Manifest]) -> Secrets:
    return {
        m.name: {k: base64.b64decode(v) for k, v in (m.obj.get("data") or {}).items()}
        for m in manifests.find(rendered, "Secret")
    }


def run(rendered: list[Manifest], existing: Secrets | None = None) -> Secrets:
    """Every Secret after the hook ran: the rendered ones, ``existing`` and the generated ones."""
    store = FakeSecretStore()
    for name, data in {**rendered_secrets(rendered), **(existing or {})}.items():
        store.put(name, dict(data))
    args = job_args(rendered)
    if args is not None:
        assert generated_secrets.run(args, lambda _namespace: store) == 0
        assert args.namespace == manifests.NAMESPACE
    return {name: dict(secret.data) for name, secret in store.secrets.items()}


def materialize(
    spec: dict[str, Any], container: dict[str, Any], secrets: Secrets, root: Path
) -> dict[str, Path]:
    """Write the container's Secret-backed volumes (secret and projected) under ``root`` as the
    kubelet would, from ``secrets``; returns mountPath -> local directory. A volume naming a
    Secret that does not exist fails, as the pod would wait for it."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounted: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" in volume:
            sources = [{"secret": {"name": volume["secret"]["secretName"], **volume["secret"]}}]
        elif "projected" in volume:
            sources = volume["projected"]["sources"]
        else:
            continue
        directory = root / mount["name"]
        directory.mkdir(parents=True, exist_ok=True)
        for source in sources:
            secret = source["secret"]
            assert secret["name"] in secrets, f"{mount['name']}: no Secret {secret['name']}"
            data = secrets[secret["name"]]
            for item in secret.get("items") or [{"key": k, "path": k} for k in data]:
                assert item["key"] in data, f"Secret {secret['name']} has no key {item['key']}"
                (directory / item["path"]).write_bytes(data[item["key"]])
        mounted[mount["mountPath"]] = directory
    return mounted


def local_path(mounted: dict[str, Path], path: str) -> Path:
    """Where the container path ``path`` is in the materialized volumes."""
    for mount_path, directory in mounted.items():
        prefix = mount_path.rstrip("/") + "/"
        if path == mount_path:
            return directory
        if path.startswith(prefix):
            return directory / path.removeprefix(prefix)
    raise AssertionError(f"nothing mounted at {path}")
