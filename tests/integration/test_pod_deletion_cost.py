"""A real worker keeps its pod's deletion cost equal to its runs in progress, through a fake
Kubernetes API server (HTTPS, service-account token and CA, as in a pod)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import submit_many, wait_terminal, wait_until
from tests.integration.stack import StackEnv
from tests.kube_api import FakeKubeApi

RUNS = 3


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(tmp_path).start()
    yield api
    api.stop()


def _costs(kube: FakeKubeApi) -> list[int]:
    return [
        int(p["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"])
        for p in kube.patches
    ]


def test_the_annotation_follows_the_runs_in_progress(
    stack_env: StackEnv, client: httpx.Client, kube: FakeKubeApi
) -> None:
    worker = stack_env.start_worker(
        AGENT_WORKER_POD_DELETION_COST="true",
        AGENT_WORKER_POD_NAME="worker-7d9f",
        AGENT_WORKER_POD_NAMESPACE="agents",
        AGENT_WORKER_KUBE_API_URL=kube.url,
        AGENT_WORKER_SERVICE_ACCOUNT_DIR=str(kube.service_account_dir),
        AGENT_WORKER_POD_DELETION_COST_INTERVAL_SECONDS="0.5",
    )
    try:
        wait_until(lambda: kube.cost("agents", "worker-7d9f") == "0", "the idle cost", 20)
        ids = submit_many(client, RUNS, "cost {i}", model="slow")  # 2 s each
        wait_until(lambda: RUNS in _costs(kube), f"the cost of {RUNS} runs", 20)
        wait_terminal(client, ids, timeout=30)
        wait_until(lambda: kube.cost("agents", "worker-7d9f") == "0", "the cost back to 0", 20)
    finally:
        worker.stop()
    costs = _costs(kube)
    assert all(a != b for a, b in itertools.pairwise(costs)), costs  # only changes
    assert max(costs) == RUNS
