"""Webhook retry policy: what follows each attempt, the backoff, the states the record shows,
and the secret a tenant's deliveries are signed with."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_service.agentconfig.model import AgentConfig, default_agent_config
from agent_service.domain.tasks import WebhookDelivery, WebhookState
from agent_service.settings import Settings
from agent_service.webhooks.policy import (
    Failure,
    Outcome,
    after_attempt,
    begin,
    decide,
    next_delay,
    target_refusal,
)
from agent_service.webhooks.tenant_secret import signing_secret

D, R, X = Outcome.DELIVERED, Outcome.RETRY, Outcome.DEAD


@pytest.mark.parametrize(
    ("status_code", "failure", "attempt", "max_attempts", "expected"),
    [
        (200, None, 1, 3, D),
        (204, None, 3, 3, D),  # the last attempt may still succeed
        (299, None, 1, 3, D),
        (500, None, 1, 3, R),
        (503, None, 2, 3, R),
        (503, None, 3, 3, X),  # attempts exhausted
        (500, None, 1, 1, X),
        (408, None, 1, 3, R),
        (425, None, 1, 3, R),
        (429, None, 1, 3, R),
        (400, None, 1, 3, X),  # the receiver refuses this body: it would refuse it again
        (401, None, 1, 3, X),
        (404, None, 1, 3, X),
        (410, None, 1, 3, X),
        (301, None, 1, 3, X),  # redirects are not followed
        (302, None, 1, 3, X),
        (101, None, 1, 3, X),
        (None, Failure.CONNECTION, 1, 3, R),
        (None, Failure.TIMEOUT, 2, 3, R),
        (None, Failure.TIMEOUT, 3, 3, X),
        (None, Failure.REFUSED, 1, 3, X),  # the SSRF guard's answer does not change
        (None, Failure.NO_SECRET, 1, 3, X),
        (None, Failure.INVALID, 1, 3, X),
    ],
)
def test_outcome_of_an_attempt(
    status_code: int | None,
    failure: Failure | None,
    attempt: int,
    max_attempts: int,
    expected: Outcome,
) -> None:
    assert decide(status_code, failure, attempt, max_attempts) is expected


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (1, 1.0, 2.0),
        (2, 1.0, 4.0),
        (3, 1.0, 8.0),
        (3, 0.5, 4.0),
        (3, 0.0, 0.0),  # full jitter: anywhere from no wait to the ceiling
        (9, 1.0, 300.0),  # 2 * 2**8 = 512, capped
        (500, 1.0, 300.0),  # no overflow far past the cap
    ],
)
def test_backoff_doubles_with_full_jitter_up_to_the_cap(
    attempt: int, rand: float, expected: float
) -> None:
    assert next_delay(attempt, 2.0, 300.0, rand=lambda: rand) == pytest.approx(expected)


def test_random_backoff_stays_within_its_ceiling() -> None:
    delays = [next_delay(4, 1.0, 60.0) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 100


def test_states_shown_by_the_record() -> None:
    state = WebhookState(url="https://example.com/hook")
    assert state.status == "pending"
    assert begin(state).status == "delivering"
    first = WebhookDelivery(attempt=1, at=1.0, status_code=500)
    retrying = after_attempt(begin(state), first, Outcome.RETRY)
    assert (retrying.status, retrying.attempts) == ("pending", [first])
    second = WebhookDelivery(attempt=2, at=2.0, status_code=200)
    done = after_attempt(begin(retrying), second, Outcome.DELIVERED)
    assert (done.status, done.attempts) == ("delivered", [first, second])
    assert after_attempt(state, first, Outcome.DEAD).status == "dead"
    assert state.attempts == []  # states are copies


@pytest.mark.parametrize(
    ("url", "allow_http", "hosts", "refused"),
    [
        ("https://hooks.example.com/x", False, [], None),
        ("http://hooks.example.com/x", False, [], "https"),
        ("http://hooks.example.com/x", True, [], None),
        ("ftp://hooks.example.com/x", True, [], "https"),
        ("https://hooks.example.com/x", False, ["*.example.com"], None),
        ("https://HOOKS.example.com/x", False, ["*.example.com"], None),
        ("https://example.org/x", False, ["*.example.com"], "not among the allowed"),
        ("https://[::1/x", False, [], "invalid"),
    ],
)
def test_worker_side_target_checks(
    url: str, allow_http: bool, hosts: list[str], refused: str | None
) -> None:
    reason = target_refusal(url, allow_http=allow_http, allowed_hosts=hosts)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def _config(tenants: list[dict[str, object]]) -> AgentConfig:
    base = default_agent_config("http://127.0.0.1:1/v1").model_dump(by_alias=True)
    return AgentConfig.model_validate({**base, "tenants": tenants})


def test_tenant_secret_wins_over_the_service_wide_file(tmp_path: Path) -> None:
    (tmp_path / "service").write_text("service-secret\n")
    (tmp_path / "team").write_text("team-secret\n")
    (tmp_path / "mounted" / "hooks").mkdir(parents=True)
    (tmp_path / "mounted" / "hooks" / "key").write_text("mounted-secret")
    config = _config(
        [
            {"name": "team", "webhookSecret": {"file": str(tmp_path / "team")}},
            {"name": "k8s", "webhookSecret": {"secretKeyRef": {"name": "hooks", "key": "key"}}},
            {"name": "broken", "webhookSecret": {"file": str(tmp_path / "missing")}},
            {"name": "limits-only", "rateLimits": {"requestsPerMinute": 5}},
        ]
    )
    settings = Settings(
        webhooks={"secret_file": tmp_path / "service"},
        config={"secrets_dir": tmp_path / "mounted"},
    )
    assert signing_secret(config, "team", settings) == "team-secret"
    assert signing_secret(config, "k8s", settings) == "mounted-secret"
    assert signing_secret(config, "limits-only", settings) == "service-secret"
    assert signing_secret(config, "unknown", settings) == "service-secret"
    # A tenant whose own secret is missing does not fall back: it would sign with another key.
    assert signing_secret(config, "broken", settings) is None


def test_no_secret_anywhere_or_an_empty_file_is_none(tmp_path: Path) -> None:
    config = _config([])
    assert signing_secret(config, "default", Settings()) is None
    (tmp_path / "empty").write_text("\n")
    empty = Settings(webhooks={"secret_file": tmp_path / "empty"})
    assert signing_secret(config, "default", empty) is None
