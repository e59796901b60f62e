"""The pod-deletion-cost patcher against a fake Kubernetes API server over HTTPS: the request
it makes (token, CA, merge patch), and when it patches (changed counts, rate limited)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_service.worker.pod_cost import CostPolicy, PodDeletionCost, PodRef, patch_body
from tests.kube_api import FakeKubeApi
from tests.tls import make_certificates


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(tmp_path).start()
    yield api
    api.stop()


def test_the_patch_is_a_merge_patch_of_one_annotation() -> None:
    assert json.loads(patch_body(7)) == {
        "metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "7"}}
    }


def test_only_a_changed_count_is_patched_and_at_most_once_per_interval() -> None:
    policy = CostPolicy(interval=5)
    assert policy.due(0, now=0)
    policy.done(0, now=0)
    assert not policy.due(0, now=100)  # unchanged: never again
    assert not policy.due(3, now=4.9)  # changed, but too soon
    assert policy.due(3, now=5)
    policy.failed(now=5)
    assert not policy.due(3, now=60)  # a refused patch waits a minute
    assert policy.due(3, now=65)


async def test_the_worker_keeps_its_pods_annotation_equal_to_its_runs(kube: FakeKubeApi) -> None:
    runs = [0]
    pod = PodRef(kube.url, "agents", "worker-abc", kube.service_account_dir)
    patcher = PodDeletionCost(pod, lambda: runs[0], interval=0.0)
    try:
        await patcher.tick(now=1)
        assert kube.cost("agents", "worker-abc") == "0"
        runs[0] = 12
        await patcher.tick(now=2)
        await patcher.tick(now=3)  # unchanged: no second patch
        assert kube.cost("agents", "worker-abc") == "12"
        assert len(kube.patches) == 2
    finally:
        await patcher.stop()


async def test_a_refused_patch_is_logged_with_the_rbac_hint(
    kube: FakeKubeApi, caplog: pytest.LogCaptureFixture
) -> None:
    kube.refuse = 403
    pod = PodRef(kube.url, "agents", "worker-abc", kube.service_account_dir)
    patcher = PodDeletionCost(pod, lambda: 1, interval=0.0)
    try:
        await patcher.tick(now=1)
    finally:
        await patcher.stop()
    assert kube.cost("agents", "worker-abc") is None
    assert "403" in caplog.text and "`patch` on pods" in caplog.text


async def test_an_api_server_the_ca_did_not_sign_is_refused(
    kube: FakeKubeApi, tmp_path: Path
) -> None:
    account = tmp_path / "other-sa"
    account.mkdir()
    (account / "token").write_text(kube.token)
    (account / "ca.crt").write_bytes(make_certificates(tmp_path / "other-ca").ca.read_bytes())
    patcher = PodDeletionCost(PodRef(kube.url, "agents", "w", account), lambda: 1, interval=0.0)
    try:
        await patcher.tick(now=1)
    finally:
        await patcher.stop()
    assert kube.patches == []  # the token never reached a server it could not verify
