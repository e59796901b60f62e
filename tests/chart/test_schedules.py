"""Scheduled runs in the chart: ``schedules:`` renders one CronJob per entry running
``agent-service submit`` (Forbid, an Idempotency-Key from the schedule and the Job's scheduled
time), the API key from a Secret, a NetworkPolicy letting those pods reach the API only; bad
entries fail at install with a message that says which."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.chart import manifests
from tests.chart.manifests import Manifest

PROFILE = "schedules"


def _cronjobs(rendered: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {m.name: m.obj for m in manifests.find(rendered, "CronJob")}


def _container(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return dict(container)


def test_each_schedule_is_a_forbid_cronjob_running_submit(
    rendered_profiles: dict[str, list[Manifest]],
) -> None:
    jobs = _cronjobs(rendered_profiles[PROFILE])
    assert set(jobs) == {"agent-service-nightly-report", "agent-service-hourly-ping"}
    nightly = jobs["agent-service-nightly-report"]
    spec = nightly["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["schedule"], spec["timeZone"]) == ("0 6 * * *", "Europe/Paris")
    assert spec["suspend"] is False
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 3 and job["template"]["spec"]["restartPolicy"] == "Never"
    container = _container(nightly)
    assert container["command"] == ["agent-service", "submit"]
    assert container["args"] == [
        "--idempotency-key", "$(AGENT_SCHEDULE_KEY)",
        "--agent", "orders",
        "--session", "nightly-report",
        "--wait",
        "--", "Summarise yesterday's orders",
    ]  # fmt: skip
    env = {e["name"]: e for e in container["env"]}
    # The key: the schedule's name and the Job's name, which the CronJob controller derives
    # from the scheduled time; declared after the variable it expands.
    names = [e["name"] for e in container["env"]]
    assert names.index("AGENT_SCHEDULED_JOB") < names.index("AGENT_SCHEDULE_KEY")
    assert env["AGENT_SCHEDULED_JOB"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-name']"
    )
    assert env["AGENT_SCHEDULE_KEY"]["value"] == "schedule:nightly-report:$(AGENT_SCHEDULED_JOB)"
    assert env["AGENT_API_URL"]["value"] == "http://agent-service-api:8000"
    assert env["AGENT_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "agent-service-nightly",
        "key": "api-key",
    }
    hourly = _container(jobs["agent-service-hourly-ping"])
    assert "--wait" not in hourly["args"] and "--agent" not in hourly["args"]
    shared = {e["name"]: e for e in hourly["env"]}["AGENT_API_KEY"]
    assert shared["valueFrom"]["secretKeyRef"] == {"name": "agent-service-scheduler", "key": "key"}


def test_schedule_pods_only_reach_the_api(rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles[PROFILE]
    policy = manifests.one(rendered, "NetworkPolicy", "agent-service-schedule")["spec"]
    selector = policy["podSelector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "schedule"
    assert policy["ingress"] == []
    dns, api = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    target = api["to"][0]["podSelector"]["matchLabels"]
    assert target["app.kubernetes.io/component"] == "api"
    # The api's own policy admits the release's pods, schedule pods among them.
    pods = manifests.find(rendered, "CronJob")[0].obj["spec"]["jobTemplate"]["spec"]["template"]
    labels = pods["metadata"]["labels"]
    api_policy = manifests.one(rendered, "NetworkPolicy", "agent-service-api")["spec"]
    admitted = api_policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert admitted.items() <= labels.items()


def test_no_schedules_render_no_cronjob() -> None:
    rendered = manifests.render_profile("default")
    assert manifests.find(rendered, "CronJob") == []
    assert manifests.find(rendered, "NetworkPolicy", "agent-service-schedule") == []


def _render(schedules: list[dict[str, Any]], **values: Any) -> list[Manifest]:
    return manifests.render_profile("default", {"schedules": schedules, **values})


def test_a_schedule_without_a_key_fails_when_keys_are_required() -> None:
    entry = {"name": "nightly", "schedule": "@daily", "message": "hi"}
    with pytest.raises(helm_python.HelmError, match=r"nightly.*needs an API key"):
        _render([entry])
    # With authentication off no key is needed, and none is sent.
    rendered = _render([entry], clientAuth={"enabled": False})
    env = {
        e["name"]
        for e in _container(manifests.one(rendered, "CronJob", "agent-service-nightly"))["env"]
    }
    assert "AGENT_API_KEY" not in env


@pytest.mark.parametrize(
    ("schedules", "error"),
    [
        (
            [{"name": "a", "schedule": "@daily", "message": "x", "apiKeySecret": "k"}] * 2,
            "used twice",
        ),
        ([{"name": "Bad_Name", "schedule": "@daily", "message": "x"}], "/schedules/0/name"),
        ([{"name": "a", "schedule": "every day", "message": "x"}], "/schedules/0/schedule"),
        ([{"name": "a", "schedule": "@daily", "message": ""}], "/schedules/0/message"),
        ([{"name": "a", "schedule": "@daily"}], "message"),
        ([{"name": "a", "schedule": "@daily", "message": "x", "every": 1}], "every"),
    ],
)
def test_bad_schedules_fail_the_render(schedules: list[dict[str, Any]], error: str) -> None:
    with pytest.raises(helm_python.HelmError, match=error):
        _render(schedules, scheduleJobs={"apiKeySecret": "shared"})


def test_a_cronjob_name_over_52_characters_fails() -> None:
    entry = {"name": "a" * 30, "schedule": "@daily", "message": "x", "apiKeySecret": "k"}
    with pytest.raises(helm_python.HelmError, match="longer than 52"):
        _render([entry], fullnameOverride="a-release-name-that-is-long")
