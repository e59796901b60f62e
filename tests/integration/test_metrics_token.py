"""The metrics bearer token (``AGENT_AUTH_METRICS_TOKEN_FILE``) on real API and worker
processes: the separate metrics port of each, and the API's own ``/metrics`` route, refuse a
scrape without it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.stack import StackEnv
from tests.procs import free_port

TOKEN = "scrape-token-for-tests"


@pytest.fixture(scope="module")
def guarded(
    stack_env: StackEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    token_file = tmp_path_factory.mktemp("metrics-token") / "token"
    token_file.write_text(f"{TOKEN}\n", encoding="utf-8")  # a trailing newline, as Secrets have
    api_port, worker_port = free_port(), free_port()
    env = {"AGENT_AUTH_METRICS_TOKEN_FILE": str(token_file)}
    api, url = stack_env.start_api(AGENT_METRICS_PORT=str(api_port), **env)
    worker = stack_env.start_worker(AGENT_METRICS_PORT=str(worker_port), **env)
    yield {
        "api route": f"{url}/metrics",
        "api port": f"http://127.0.0.1:{api_port}/metrics",
        "worker port": f"http://127.0.0.1:{worker_port}/metrics",
    }
    worker.stop()
    api.stop()


@pytest.mark.parametrize("where", ["api route", "api port", "worker port"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_scrape_without_the_token_is_refused(
    guarded: dict[str, str], where: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    resp = httpx.get(guarded[where], headers=headers, timeout=10)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert "agent_build_info" not in resp.text
    if where == "api route":
        assert resp.json()["error"]["type"] == "unauthorized"


@pytest.mark.parametrize("where", ["api route", "api port", "worker port"])
def test_scrape_with_the_token_is_served(guarded: dict[str, str], where: str) -> None:
    resp = httpx.get(guarded[where], headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert resp.status_code == 200
    assert "agent_build_info" in resp.text


def test_the_rest_of_the_api_does_not_need_the_token(guarded: dict[str, str]) -> None:
    base = guarded["api route"].removesuffix("/metrics")
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200


def test_token_file_is_read_not_logged(stack_env: StackEnv, guarded: dict[str, str]) -> None:
    logs = "".join(p.read_text(errors="replace") for p in stack_env.log_dir.glob("*.log"))
    assert TOKEN not in logs
